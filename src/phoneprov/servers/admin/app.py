"""The admin aiohttp application: authentication, the role check, problem documents.

Authentication is a list of methods (``keys.AUTHENTICATORS``): the bearer token
here, the web console's session cookie later; each yields the same ``Admin``.
Every route of ``routes.ROUTES`` then asks ``policy.decide`` for the caller's
role. Every error is an RFC 9457 problem document.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from phoneprov.errors import InputError, PhoneprovError
from phoneprov.provisioning.admin_api import AdminServices, NotFound, Refusal
from phoneprov.provisioning.admins import Admin
from phoneprov.reasons import Reason
from phoneprov.servers.admin import fleet, openapi
from phoneprov.servers.admin.call import MAX_BODY, Call
from phoneprov.servers.admin.keys import (
    AUTHENTICATORS,
    BOUND,
    METRICS_ALLOW,
    SERVICES,
    Authenticator,
)
from phoneprov.servers.admin.problems import problem
from phoneprov.servers.admin.routes import BY_NAME, ROUTES
from phoneprov.servers.admin.table import Route
from phoneprov.servers.console import mount_console

CALLER = "phoneprov.admin"  # the request's Admin, set by ``dispatch`` (None: no credential)
_STATUS: dict[type[InputError], int] = {fleet.Conflict: 409, fleet.Forbidden: 403, NotFound: 404}


async def bearer(request: web.Request, services: AdminServices) -> Admin | Refusal | None:
    """``Authorization: Bearer TOKEN``; None when the header is absent."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Refusal(Reason.BAD_TOKEN)
    found: Admin | Refusal = await asyncio.to_thread(
        services.authenticate_token, token.strip(), request.remote or ""
    )
    return found


def _allowed_address(request: web.Request) -> bool:
    """The caller's address is in ``[admin] metrics_allow``."""
    try:
        address = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net) for net in request.app[METRICS_ALLOW])


async def _caller(request: web.Request, route: Route) -> Admin | web.Response | None:
    services = request.app[SERVICES]
    for method in request.app[AUTHENTICATORS]:
        found = await method(request, services)
        if isinstance(found, Admin):
            return found
        if isinstance(found, Refusal):
            if found.reason is Reason.LOCKED_OUT:
                seconds = str(found.retry_after or 1)
                return problem(
                    429,
                    "too many bad credentials from this address",
                    f"Wait {seconds} s, then use a valid token.",
                    headers={"Retry-After": seconds},
                )
            return problem(
                401,
                "the token is unknown, expired or revoked",
                "Create one with `phoneprov admin token create NAME --role ROLE`.",
                headers={"WWW-Authenticate": 'Bearer realm="phoneprov"'},
            )
    if route.name == "metrics" and _allowed_address(request):
        return None
    return problem(
        401,
        "this route needs an API token",
        "Send `Authorization: Bearer TOKEN`; create one with `phoneprov admin token create`.",
        headers={"WWW-Authenticate": 'Bearer realm="phoneprov"'},
    )


@web.middleware
async def dispatch(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Authenticate, check the role, run the route; every error becomes a problem document."""
    route = BY_NAME.get(request.match_info.route.name or "")
    try:
        if route is None:
            return await handler(request)
        admin: Admin | None = None
        if route.action is not None and route.resource is not None:
            found = await _caller(request, route)
            if isinstance(found, web.Response):
                return found
            admin = found
            if admin is not None:
                decision = request.app[SERVICES].decide(admin, route.action, route.resource)
                if not decision.allowed:
                    return problem(
                        403,
                        f"role {admin.role} may not {route.action.value} {route.resource.value}"
                        f" ({decision.reason.value})",
                        "Ask an administrator with a role that may (docs/admin-api.md, roles).",
                    )
        request[CALLER] = admin
        return await handler(request)
    except fleet.BadRows as error:
        return problem(400, str(error), error.hint, errors=error.errors)
    except InputError as error:
        return problem(_STATUS.get(type(error), 400), str(error), error.hint)
    except PhoneprovError as error:
        return problem(500, str(error), error.hint)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return problem(error.status, error.reason, "See /api/v1/openapi.json for the routes.")


async def _openapi(request: web.Request) -> web.Response:
    return web.Response(text=request.app[DOCUMENT], content_type="application/json")


DOCUMENT = web.AppKey("openapi", str)


def build_app(
    services: AdminServices,
    *,
    bound: Callable[[], bool],
    metrics_allow: frozenset[str],
    authenticators: list[Authenticator] | None = None,
) -> web.Application:
    """The admin application: ``ROUTES`` plus the OpenAPI document."""
    app = web.Application(middlewares=[dispatch], client_max_size=MAX_BODY)
    app[SERVICES] = services
    methods: list[Authenticator] = [bearer] if authenticators is None else authenticators
    app[AUTHENTICATORS] = methods
    app[BOUND] = bound
    app[METRICS_ALLOW] = metrics_allow
    app[DOCUMENT] = json.dumps(openapi.document())
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _runner(route), name=route.name)
    app.router.add_get("/api/v1/openapi.json", _openapi, name="openapi")
    mount_console(app, services)  # the web console under /console/ (servers/console/)
    return app


def _runner(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler of ``route``: its handler, given the caller ``dispatch`` found."""

    async def run(request: web.Request) -> web.StreamResponse:
        return await route.handler(Call(request, request.get(CALLER), request.app[SERVICES]))

    return run
