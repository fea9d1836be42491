"""Handlers of the phone routes: thin over ``provisioning`` (devices, admin_api)."""

from __future__ import annotations

import io

from aiohttp import web

from phoneprov.errors import InputError
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.policy import Action
from phoneprov.protocols.polycom import ResourceKind
from phoneprov.provisioning import devices
from phoneprov.provisioning.trail import MASK
from phoneprov.records import DeviceQuery
from phoneprov.servers.admin.call import Call, json
from phoneprov.servers.admin.models import (
    Device,
    DeviceChange,
    DeviceCreate,
    DeviceDetail,
    DeviceEvent,
    DevicePage,
    ImportReport,
    Line,
    RenderedFile,
    StatusChange,
)

SORTS = ("mac", "status", "model", "firmware", "group", "label", "ip", "last_seen")


async def list_devices(call: Call) -> web.Response:
    sort = call.query("sort") or "mac"
    if sort not in SORTS:
        raise InputError(f"sort={sort!r} is not a column", f"Sort by one of: {', '.join(SORTS)}.")
    order = call.query("order") or "asc"
    if order not in ("asc", "desc"):
        raise InputError(f"order={order!r} is neither asc nor desc", "Use order=asc or order=desc.")
    status = call.query("status")
    if status is not None and status not in {s.value for s in DeviceStatus}:
        raise InputError(
            f"status={status!r} is not a standing",
            f"Use one of: {', '.join(s.value for s in DeviceStatus)}.",
        )
    query = DeviceQuery(
        status=status,
        model=call.query("model"),
        group=call.query("group"),
        site=call.query("site"),
        firmware=call.query("firmware"),
        text=call.query("q"),
        sort=sort,
        descending=order == "desc",
        limit=call.integer("limit", 100, 1, 1000),
    )
    page = await call.run(call.services.devices, query, call.query("cursor"))
    return json(DevicePage(items=[Device.of(r) for r in page.devices], next=page.next))


async def get_device(call: Call) -> web.Response:
    mac = call.mac()
    record = await call.run(call.services.device, mac)
    details = await call.run(devices.show_device, call.services.settings, mac)
    secrets = call.may(Action.VIEW, ResourceKind.SECRETS)
    lines = [
        Line(
            index=ln.index,
            ext=ln.ext,
            user=ln.user,
            server=ln.server,
            password=ln.password if secrets or not ln.password else MASK,
        )
        for ln in details.entry.lines
    ]
    device = Device.of(record).model_dump()
    return json(DeviceDetail(**device, lines=lines, overrides=dict(details.overrides)))


async def _changed(call: Call, status: int = 200) -> web.Response:
    mac = call.mac()
    record = await call.run(call.services.device, mac)
    return json(Device.of(record), status)


async def create_device(call: Call) -> web.Response:
    body = await call.body(DeviceCreate)
    mac = MacAddress.parse(body.mac)
    if await call.run(call.services.store.inventory.entry, mac) is not None:
        raise Conflict(
            f"device {mac} is already in the inventory",
            f"Change it with PATCH /api/v1/devices/{mac}.",
        )
    await call.run(
        devices.add_device,
        call.services.settings,
        mac,
        model=body.model,
        site=body.site,
        group=body.group,
        label=body.label,
        lines=body.lines,
    )
    return json(Device.of(await call.run(call.services.device, mac)), 201)


async def update_device(call: Call) -> web.Response:
    mac = call.mac()
    body = await call.body(DeviceChange)
    await call.run(call.services.device, mac)
    await call.run(
        devices.add_device,
        call.services.settings,
        mac,
        model=body.model,
        site=body.site,
        group=body.group,
        label=body.label,
        lines=body.lines,
    )
    return await _changed(call)


async def delete_device(call: Call) -> web.Response:
    mac = call.mac()
    await call.run(call.services.device, mac)
    await call.run(devices.remove_device, call.services.settings, mac)
    return web.Response(status=204)


async def approve_device(call: Call) -> web.Response:
    mac = call.mac()
    await call.run(call.services.device, mac)
    done = await call.run(devices.approve_device, call.services.settings, mac)
    return json(
        StatusChange(
            mac=mac.value,
            previous=done.previous.value,
            status="known",
            released=list(done.released),
        )
    )


async def quarantine_device(call: Call) -> web.Response:
    mac = call.mac()
    await call.run(call.services.device, mac)
    previous = await call.run(devices.quarantine_device, call.services.settings, mac)
    return json(StatusChange(mac=mac.value, previous=previous.value, status="pending"))


async def device_events(call: Call) -> web.Response:
    events = await call.run(call.services.events, call.mac(), call.integer("limit", 100, 1, 1000))
    return json([DeviceEvent.of(e) for e in events])


async def device_files(call: Call) -> web.Response:
    files = await call.run(call.services.rendered, call.mac())
    return json([RenderedFile(name=name, body=body) for name, body in files])


async def import_devices(call: Call) -> web.Response:
    if call.request.content_type not in ("text/csv", "text/plain"):
        raise InputError(
            f"the body is {call.request.content_type}, not CSV",
            "Send the CSV `phoneprov device export` writes, with Content-Type: text/csv.",
        )
    text = (await call.request.read()).decode("utf-8-sig", errors="replace")
    dry_run = call.query("dry_run") in ("1", "true")
    try:
        result = await call.run(
            devices.import_devices,
            call.services.settings,
            io.StringIO(text),
            "the request body",
            skip_bad=call.query("skip_bad") in ("1", "true"),
            dry_run=dry_run,
        )
    except devices.BadRowsError as error:
        raise BadRows(str(error), error.hint, [str(p) for p in error.problems]) from None
    saved = result.saved
    return json(
        ImportReport(
            rows=result.plan.rows,
            created=saved.created if saved else 0,
            updated=saved.updated if saved else 0,
            problems=[str(p) for p in result.plan.problems],
            dry_run=dry_run,
        )
    )


async def export_devices(call: Call) -> web.Response:
    passwords = call.query("passwords") in ("1", "true")
    if passwords and not call.may(Action.VIEW, ResourceKind.SECRETS):
        raise Forbidden(
            "your role may not read SIP passwords",
            "Export without passwords=true, or ask an administrator with the admin role.",
        )
    text = await call.run(call.services.export_csv, passwords)
    return web.Response(text=text, content_type="text/csv")


class Conflict(InputError):
    """HTTP 409."""


class Forbidden(InputError):
    """HTTP 403."""


class BadRows(InputError):
    """HTTP 400 listing every bad row."""

    def __init__(self, message: str, hint: str, errors: list[str]) -> None:
        super().__init__(message, hint)
        self.errors = errors
