"""The console's pages (GET): fleet, phone, certificates, firmware, setup.

Each handler asks one read-only service for its data (``console_views``,
``firmware``, ``doctor``, the audit trail) in a thread and returns what the
template shows. Query strings only filter and sort; nothing here changes the
site.
"""

from __future__ import annotations

import time
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from phoneprov.errors import InputError
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.protocols.dhcp.options import OptionRequest, build_options
from phoneprov.protocols.dhcp.snippet import SnippetFormat, render
from phoneprov.protocols.rollout_plan import PhoneState
from phoneprov.provisioning import console_views as views
from phoneprov.provisioning.doctor.checks import check_site
from phoneprov.provisioning.firmware import list_firmware
from phoneprov.provisioning.rollouts import list_rollouts
from phoneprov.records import FleetFilter, FleetState
from phoneprov.servers.console import charts
from phoneprov.servers.console.app import SETTINGS, blocking, page

PER_PAGE = 50
FILTERS = ("state", "status", "model", "group", "firmware", "stage", "cert", "q")
STATE_TITLES = {
    FleetState.OK: "OK",
    FleetState.STUCK: "Stuck before phase 2",
    FleetState.REFUSED: "Refused",
    FleetState.MISMATCH: "Firmware mismatch",
    FleetState.STALE: f"Not seen for {views.STALE_DAYS} days",
}
STAGES = {
    "none": "not seen booting",
    "updater": "bootROM / Updater",
    "application": "application",
    "config": "configuration over mutual TLS",
}
routes = web.RouteTableDef()


def when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _int(query: MultiMapping[str], name: str, default: int) -> int:
    try:
        return max(1, int(query.get(name, default)))
    except ValueError:
        return default


def fleet_filter(query: MultiMapping[str], now: float) -> FleetFilter:
    text = query.get("q", "").strip()
    with suppress(InputError):
        text = MacAddress.parse(text).value if text else ""
    return FleetFilter(
        now=now,
        stale_after=views.stale_after(),
        state=query.get("state", ""),
        status=query.get("status", ""),
        model=query.get("model", ""),
        group=query.get("group", ""),
        firmware=query.get("firmware", ""),
        stage=query.get("stage", ""),
        cert=query.get("cert", ""),
        text=text[:100],
        sort=query.get("sort", "mac"),
        descending=query.get("dir") == "desc",
        page=_int(query, "page", 1),
        per_page=PER_PAGE,
    )


@routes.get("/")
@page("fleet.html")
async def fleet(request: web.Request) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    query = fleet_filter(request.query, time.time())
    result = await blocking(views.fleet_page, settings, query)
    kept = {k: request.query[k] for k in FILTERS if request.query.get(k)}
    pages = max(1, -(-result.total // PER_PAGE))
    return {
        "title": "Fleet",
        "result": result,
        "query": query,
        "kept": kept,
        "pages": pages,
        "states": STATE_TITLES,
        "stages": STAGES,
        "statuses": [s.value for s in DeviceStatus],
        "when": when,
    }


@routes.get("/activity")
@page("activity.html")
async def activity(request: web.Request) -> dict[str, Any]:
    data = await blocking(views.fleet_activity, request.app[SETTINGS])
    return {
        "title": "Activity",
        "boots": charts.columns(
            "Boots per minute, last 24 hours", data.since, data.boots_per_minute
        ),
        "failures": charts.bars(
            "Failures by reason, last 24 hours", list(data.failures.items()), "events"
        ),
        "firmware": charts.bars("Firmware versions", list(data.firmware.items())),
        "stages": charts.bars(
            "Phones by boot stage", [(STAGES.get(k, k), v) for k, v in data.stages.items()]
        ),
    }


@routes.get("/phones/{mac}")
@page("phone.html")
async def phone(request: web.Request) -> dict[str, Any]:
    try:
        mac = MacAddress.parse(request.match_info["mac"])
    except InputError as error:
        raise web.HTTPNotFound(text=f"{error} ({error.hint})") from None
    try:
        story = await blocking(views.phone_story, request.app[SETTINGS], mac)
    except InputError as error:
        raise web.HTTPNotFound(text=f"{error} ({error.hint})") from None
    return {
        "title": f"Phone {mac}",
        "story": story,
        "mac": mac.value,
        "states": STATE_TITLES,
        "stages": STAGES,
        "when": when,
        "statuses": DeviceStatus,
    }


@routes.get("/certificates")
@page("certificates.html")
async def certificates(request: web.Request) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    records = await blocking(views.certificate_records, settings)
    return {
        "title": "Certificates",
        "authorities": await blocking(views.ca_facts, settings),
        "issued": records,
        "queue": await blocking(views.csr_queue, settings),
        "now": datetime.now(UTC),
    }


@routes.get("/firmware")
@page("firmware.html")
async def firmware(request: web.Request) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    listing = await blocking(list_firmware, settings)
    data = await blocking(views.fleet_activity, settings)
    groups: dict[str, dict[str, int]] = {}
    for (group, version), count in sorted(data.groups.items()):
        groups.setdefault(group, {})[version] = count
    return {
        "title": "Firmware",
        "listing": listing,
        "groups": groups,
        "share": charts.bars("Firmware versions", list(data.firmware.items())),
        "rollouts": await blocking(list_rollouts, settings),
        "phone_states": [state.value for state in PhoneState],
        "when": when,
    }


@routes.get("/setup")
@page("setup.html")
async def setup(request: web.Request) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    options = build_options(OptionRequest(provisioning_url=settings.http_url()))
    snippets = {fmt.value: render(fmt, options) for fmt in SnippetFormat}
    doctor = None
    if request.query.get("doctor"):
        doctor = await blocking(check_site, settings, now=datetime.now(UTC), timeout=2.0)
    return {
        "title": "Setup",
        "options": options,
        "snippets": snippets,
        "doctor": doctor,
        "audit": await blocking(views.audit_trail, settings),
        "when": when,
    }


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_routes(routes)
