"""Handlers of the site routes: audit trail, administrators, tokens, accounts, firmware,
certificates, health and metrics. Thin over ``provisioning``."""

from __future__ import annotations

from aiohttp import web

from phoneprov.provisioning import admins, phone_accounts
from phoneprov.provisioning.certificates import issued_certificates
from phoneprov.provisioning.firmware import list_firmware
from phoneprov.provisioning.metrics import CONTENT_TYPE
from phoneprov.servers.admin.call import Call, json
from phoneprov.servers.admin.keys import BOUND
from phoneprov.servers.admin.models import (
    Account,
    Administrator,
    AuditRecord,
    Health,
    Token,
    TokenCreate,
    TokenSecret,
)


async def audit_trail(call: Call) -> web.Response:
    before = call.query("before")
    entries = await call.run(
        call.services.audit_entries,
        limit=call.integer("limit", 100, 1, 1000),
        before=int(before) if before and before.isdigit() else None,
        actor=call.query("actor"),
        target=call.query("target"),
        action=call.query("action"),
    )
    return json([AuditRecord.of(e) for e in entries])


async def list_admins(call: Call) -> web.Response:
    records = await call.run(admins.list_admins, call.services.settings)
    return json([Administrator(name=r.name, role=r.role, created=r.created) for r in records])


async def list_tokens(call: Call) -> web.Response:
    tokens = await call.run(admins.list_tokens, call.services.settings)
    return json([Token.of(t) for t in tokens])


async def create_token(call: Call) -> web.Response:
    body = await call.body(TokenCreate)
    made = await call.run(
        admins.create_token, call.services.settings, body.name, body.role, body.expires
    )
    record = made.record
    return json(
        TokenSecret(name=record.name, role=record.role, expires=record.expires, token=made.secret),
        201,
    )


async def revoke_token(call: Call) -> web.Response:
    name = call.request.match_info["name"]
    await call.run(admins.revoke_token, call.services.settings, name)
    return web.Response(status=204)


async def list_accounts(call: Call) -> web.Response:
    accounts = await call.run(phone_accounts.list_accounts, call.services.settings)
    return json(
        [Account(username=a.username, kind=a.kind, mac=a.mac, realm=a.realm) for a in accounts]
    )


async def firmware(call: Call) -> web.Response:
    listing = await call.run(list_firmware, call.services.settings)
    images = [
        {
            "version": i.version,
            "part": i.part,
            "models": list(i.models),
            "sha256": i.sha256,
            "size": i.size,
        }
        for i in listing.images
    ]
    assignments = [
        {"scope": a.scope, "target": a.target, "version": a.version} for a in listing.assignments
    ]
    return web.json_response({"images": images, "assignments": assignments})


async def certificates(call: Call) -> web.Response:
    records = await call.run(issued_certificates, call.services.settings)
    return web.json_response(
        [
            {
                "serial": r.serial_hex,
                "kind": str(r.kind),
                "mac": r.mac,
                "subject": r.subject,
                "not_after": r.not_after.isoformat(),
                "revoked": r.revoked_at.isoformat() if r.revoked_at else None,
            }
            for r in records
        ]
    )


async def healthz(call: Call) -> web.Response:
    return json(Health(status="ok"))


async def readyz(call: Call) -> web.Response:
    bound = call.request.app[BOUND]
    problems = await call.run(call.services.problems, bound)
    return json(
        Health(status="ready" if not problems else "not ready", problems=problems),
        200 if not problems else 503,
    )


async def metrics(call: Call) -> web.Response:
    assert call.services.metrics is not None
    body = await call.run(call.services.metrics.render)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
