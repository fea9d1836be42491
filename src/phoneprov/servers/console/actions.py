"""The console's actions (POST): approve, quarantine, move group, resync, restart, revoke,
sign a CSR.

The session middleware has checked the CSRF token; each handler checks the
role with ``policy.decide`` (403 when the role may not), then calls the same
service function the CLI and the admin API call, as the administrator
(``trail.acting_as``), so the change lands in the audit trail under their
name. A refused input comes back as the page with the message and its fix.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from phoneprov.errors import PhoneprovError
from phoneprov.model import MacAddress
from phoneprov.policy import Action
from phoneprov.protocols.phonerest import Action as PhoneAction
from phoneprov.protocols.polycom import ResourceKind
from phoneprov.provisioning import certificates, devices, fleet_actions
from phoneprov.provisioning import console_views as views
from phoneprov.servers.console.app import PREFIX, SETTINGS, admin_of, blocking, may, session_of

routes = web.RouteTableDef()


def _allowed(request: web.Request, kind: ResourceKind) -> str:
    """The actor the change is recorded under; 403 when the session's role may not."""
    session = session_of(request)
    if not may(request, Action.MANAGE, kind):
        raise web.HTTPForbidden(text=f"The {session.role} role may not do this.")
    return admin_of(session).actor


def _back(location: str, message: str = "", error: str = "") -> web.HTTPSeeOther:
    query = urlencode({k: v for k, v in (("done", message), ("error", error)) if v})
    return web.HTTPSeeOther(f"{location}?{query}" if query else location)


def _mac(request: web.Request) -> MacAddress:
    try:
        return MacAddress.parse(request.match_info["mac"])
    except PhoneprovError:
        raise web.HTTPNotFound(text="No such phone.") from None


@routes.post("/phones/{mac}/approve")
async def approve(request: web.Request) -> web.StreamResponse:
    actor = _allowed(request, ResourceKind.FLEET)
    mac = _mac(request)
    where = f"{PREFIX}/phones/{mac}"
    try:
        done = await blocking(devices.approve_device, request.app[SETTINGS], mac, actor=actor)
    except PhoneprovError as error:
        raise _back(where, error=f"{error} {error.hint}") from None
    released = f"; released {', '.join(done.released)}" if done.released else ""
    raise _back(where, f"Approved (was {done.previous.value}){released}.")


@routes.post("/phones/{mac}/quarantine")
async def quarantine(request: web.Request) -> web.StreamResponse:
    actor = _allowed(request, ResourceKind.FLEET)
    mac = _mac(request)
    where = f"{PREFIX}/phones/{mac}"
    try:
        await blocking(devices.quarantine_device, request.app[SETTINGS], mac, actor=actor)
    except PhoneprovError as error:
        raise _back(where, error=f"{error} {error.hint}") from None
    raise _back(where, "Quarantined: it gets no configuration until approved.")


@routes.post("/phones/{mac}/group")
async def move_group(request: web.Request) -> web.StreamResponse:
    actor = _allowed(request, ResourceKind.FLEET)
    mac = _mac(request)
    group = str((await request.post()).get("group", "")).strip()
    where = f"{PREFIX}/phones/{mac}"
    try:
        await blocking(devices.add_device, request.app[SETTINGS], mac, group=group, actor=actor)
    except PhoneprovError as error:
        raise _back(where, error=f"{error} {error.hint}") from None
    raise _back(where, f"Moved to group {group or '(none)'}.")


@routes.post("/phones/{mac}/{action:resync|restart}")
async def ask_phone(request: web.Request) -> web.StreamResponse:
    """Resync or restart the phone through its REST API, as `phoneprov device resync` does;
    the outcome (accepted, or why it was not asked) is on its timeline too."""
    actor = _allowed(request, ResourceKind.FLEET)
    mac = _mac(request)
    action = PhoneAction(request.match_info["action"])
    where = f"{PREFIX}/phones/{mac}"
    try:
        results = await blocking(
            fleet_actions.send_action, request.app[SETTINGS], action, [mac], actor=actor
        )
    except PhoneprovError as error:
        raise _back(where, error=f"{error} {error.hint}") from None
    result = results[0]
    message = f"{action.value.capitalize()}: {result.outcome.value}: {result.detail}"
    raise _back(where, message) if result.ok else _back(where, error=message)


@routes.post("/certificates/revoke")
async def revoke(request: web.Request) -> web.StreamResponse:
    actor = _allowed(request, ResourceKind.CERTIFICATES)
    serial = str((await request.post()).get("serial", ""))
    where = f"{PREFIX}/certificates"
    try:
        await blocking(
            certificates.revoke_certificates, request.app[SETTINGS], serial=serial, actor=actor
        )
    except PhoneprovError as error:
        raise _back(where, error=f"{error} {error.hint}") from None
    raise _back(where, f"Revoked {serial}; the CRL was rewritten.")


@routes.post("/certificates/sign")
async def sign(request: web.Request) -> web.StreamResponse:
    actor = _allowed(request, ResourceKind.CERTIFICATES)
    name = str((await request.post()).get("csr", ""))
    settings = request.app[SETTINGS]
    where = f"{PREFIX}/certificates"
    try:
        csr, mac = await blocking(views.csr_bytes, settings, name)
        signed = await blocking(
            certificates.sign_device_csr,
            settings,
            csr,
            mac=mac,
            slot=settings.policy.csr_slot,
            actor=actor,
        )
    except PhoneprovError as error:
        raise _back(where, error=f"{error} {error.hint}") from None
    raise _back(where, f"Signed {name}: serial {signed.facts.serial_hex}.")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_routes(routes)
