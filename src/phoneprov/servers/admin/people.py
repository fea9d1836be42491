"""Administrator routes: add and remove administrators (the admin role only; the
list is ``GET /api/v1/admins``). Thin over ``provisioning.admins``."""

from __future__ import annotations

from aiohttp import web

from phoneprov.protocols.polycom import ResourceKind
from phoneprov.provisioning import admins
from phoneprov.provisioning.admin_api import NotFound
from phoneprov.servers.admin.bodies import AdministratorCreate
from phoneprov.servers.admin.call import Call, json
from phoneprov.servers.admin.fleet import Conflict
from phoneprov.servers.admin.models import Administrator
from phoneprov.servers.admin.table import MANAGE, Route

ADMINISTRATORS = ResourceKind.ADMINISTRATORS


async def add_admin(call: Call) -> web.Response:
    body = await call.body(AdministratorCreate)
    if await call.run(call.services.store.admin.get_admin, body.name) is not None:
        raise Conflict(
            f"administrator {body.name!r} already exists",
            f"Remove it first (DELETE /api/v1/admins/{body.name}), or choose another name.",
        )
    record = await call.run(
        admins.add_admin, call.services.settings, body.name, body.role, body.password
    )
    return json(Administrator(name=record.name, role=record.role, created=record.created), 201)


async def remove_admin(call: Call) -> web.Response:
    name = call.request.match_info["name"]
    if await call.run(call.services.store.admin.get_admin, name) is None:
        raise NotFound(f"no administrator is named {name!r}", "List them with GET /api/v1/admins.")
    await call.run(admins.remove_admin, call.services.settings, name)
    return web.Response(status=204)


ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/api/v1/admins",
        "addAdmin",
        "Add an administrator who logs in to the console with a password",
        add_admin,
        MANAGE,
        ADMINISTRATORS,
        body=AdministratorCreate,
        response=Administrator,
        status=201,
        errors=frozenset({409}),
        tag="access",
    ),
    Route(
        "DELETE",
        "/api/v1/admins/{name}",
        "removeAdmin",
        "Remove an administrator (API tokens are separate: revoke them)",
        remove_admin,
        MANAGE,
        ADMINISTRATORS,
        status=204,
        tag="access",
    ),
)
