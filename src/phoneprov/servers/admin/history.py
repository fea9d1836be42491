"""A phone's history routes: its timeline, the files it uploaded, and the log
analyser's findings in its boot and application logs. Thin over
``provisioning.phone_history``."""

from __future__ import annotations

from aiohttp import web

from phoneprov.protocols.polycom import ResourceKind
from phoneprov.provisioning import phone_history
from phoneprov.servers.admin.bodies import LogReport, TimelineEntry, UploadedFile
from phoneprov.servers.admin.call import Call, json
from phoneprov.servers.admin.table import LIMIT, VIEW, Route

FLEET = ResourceKind.FLEET


async def timeline(call: Call) -> web.Response:
    mac = call.mac()
    await call.run(call.services.device, mac)
    limit = call.integer("limit", 100, 1, 1000)
    moments = await call.run(phone_history.timeline, call.services.settings, mac, limit)
    return json([TimelineEntry.of(m) for m in moments])


async def uploads(call: Call) -> web.Response:
    mac = call.mac()
    await call.run(call.services.device, mac)
    found = await call.run(phone_history.uploads, call.services.settings, mac)
    return json([UploadedFile.of(u) for u in found])


async def findings(call: Call) -> web.Response:
    mac = call.mac()
    await call.run(call.services.device, mac)
    reports = await call.run(phone_history.log_findings, call.services.settings, mac)
    return json([LogReport.of(r) for r in reports])


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/v1/devices/{mac}/timeline",
        "deviceTimeline",
        "A phone's events and the changes administrators made to it, newest first",
        timeline,
        VIEW,
        FLEET,
        response=list[TimelineEntry],
        query=(LIMIT,),
    ),
    Route(
        "GET",
        "/api/v1/devices/{mac}/uploads",
        "deviceUploads",
        "Files the phone uploaded (logs, overrides, contacts, CSRs), held ones too",
        uploads,
        VIEW,
        FLEET,
        response=list[UploadedFile],
    ),
    Route(
        "GET",
        "/api/v1/devices/{mac}/findings",
        "deviceFindings",
        "What the log analyser found in the phone's uploaded boot and application logs",
        findings,
        VIEW,
        FLEET,
        response=list[LogReport],
    ),
)
