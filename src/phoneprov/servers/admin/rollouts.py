"""Fleet action and rollout routes: resync and restart phones, a phone's REST port and
its requests, firmware rollouts (plan, start, check, halt, resume, abort), compliance.
Thin over ``provisioning.fleet_actions``, ``rollouts`` and ``compliance``."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from phoneprov.model import MacAddress
from phoneprov.protocols.phonerest import Action
from phoneprov.protocols.polycom import ResourceKind
from phoneprov.protocols.rollout_plan import DEFAULT_WAVES, Plan
from phoneprov.provisioning import rollouts
from phoneprov.provisioning.admin_api import NotFound
from phoneprov.provisioning.compliance import firmware_compliance
from phoneprov.provisioning.fleet_actions import send_action, set_rest_port
from phoneprov.servers.admin.call import Call, json
from phoneprov.servers.admin.fleet import Conflict
from phoneprov.servers.admin.models import Strict
from phoneprov.servers.admin.table import MANAGE, VIEW, Param, Route

FLEET = ResourceKind.FLEET


class FleetActionRequest(Strict):
    """The phones to ask: MAC addresses, a group, or every known or discovered phone."""

    macs: list[str] = Field(default_factory=list, max_length=50_000)
    group: str = Field("", max_length=64)
    all: bool = False


class FleetActionResult(BaseModel):
    mac: str
    action: str
    outcome: str = Field(
        description="accepted, refused, busy, unreachable, cert-mismatch, behind-nat, "
        "no-address or no-password"
    )
    detail: str
    attempts: int


class PhoneAction(BaseModel):
    id: int
    time: float
    action: str
    outcome: str
    detail: str
    confirmed: float | None = Field(description="When the phone fetched its files afterwards.")


class RestPort(Strict):
    port: int | None = Field(None, ge=1, le=65535, description="null: [fleet] rest_port.")


class RolloutPlanBody(Strict):
    """``phoneprov rollout plan``."""

    name: str = Field(min_length=1, max_length=64)
    version: str = Field(min_length=1, max_length=32)
    models: list[str] = Field(default_factory=list, max_length=64)
    groups: list[str] = Field(default_factory=list, max_length=256)
    sites: list[str] = Field(default_factory=list, max_length=256)
    canary_group: str = Field("", max_length=64)
    waves: list[str] = Field(default_factory=lambda: list(DEFAULT_WAVES), max_length=32)
    window: str = Field("always", max_length=16)
    deadline: float = Field(0.0, ge=0, description="Seconds; 0: [fleet] report_deadline.")
    max_failures: int = Field(0, ge=0)


class RolloutReason(Strict):
    reason: str = Field("", max_length=200)


class WaveProgress(BaseModel):
    wave: int
    waiting: int
    moved: int
    healthy: int
    failed: int
    held: int


class RolloutPhone(BaseModel):
    mac: str
    wave: int
    previous: str = Field(description="The version it was offered before the rollout.")
    state: str = Field(description="waiting, moved, healthy, failed or held")
    detail: str


class Rollout(BaseModel):
    name: str
    version: str
    state: str = Field(description="planned, running, halted, completed or aborted")
    wave: int = Field(description="The wave in progress (0: none started yet).")
    waves: int
    wave_started: float | None
    reason: str
    created: float
    finished: float | None
    checked: float | None
    plan: dict[str, Any]
    progress: list[WaveProgress]
    phones: list[RolloutPhone]

    @classmethod
    def of(cls, view: rollouts.RolloutView) -> Rollout:
        return cls.model_validate(view.to_json())


class Compliance(BaseModel):
    summary: list[dict[str, Any]] = Field(description="Per model and group.")
    phones: list[dict[str, Any]]


async def _act(call: Call, action: Action) -> web.Response:
    body = await call.body(FleetActionRequest)
    macs = [MacAddress.parse(m) for m in body.macs]
    results = await call.run(
        send_action, call.services.settings, action, macs, group=body.group, everyone=body.all
    )
    return json(
        [
            FleetActionResult(
                mac=r.mac.value,
                action=r.action.value,
                outcome=r.outcome.value,
                detail=r.detail,
                attempts=r.attempts,
            )
            for r in results
        ]
    )


async def resync(call: Call) -> web.Response:
    return await _act(call, Action.RESYNC)


async def restart(call: Call) -> web.Response:
    return await _act(call, Action.RESTART)


async def phone_actions(call: Call) -> web.Response:
    mac = call.mac()
    await call.run(call.services.device, mac)
    found = await call.run(
        call.services.store.fleet_actions.actions, mac, limit=call.integer("limit", 100, 1, 1000)
    )
    return json(
        [
            PhoneAction(
                id=a.id,
                time=a.time,
                action=a.action,
                outcome=a.outcome,
                detail=a.detail,
                confirmed=a.confirmed,
            )
            for a in found
        ]
    )


async def rest_port(call: Call) -> web.Response:
    mac = call.mac()
    body = await call.body(RestPort)
    await call.run(set_rest_port, call.services.settings, mac, body.port)
    return web.Response(status=204)


async def _named(call: Call) -> str:
    name = call.request.match_info["name"]
    if await call.run(call.services.store.fleet_actions.rollout, name) is None:
        raise NotFound(f"no rollout named {name!r}", "List them with GET /api/v1/rollouts.")
    return name


async def list_rollouts(call: Call) -> web.Response:
    views = await call.run(rollouts.list_rollouts, call.services.settings)
    return json([Rollout.of(v) for v in views])


async def plan_rollout(call: Call) -> web.Response:
    body = await call.body(RolloutPlanBody)
    if await call.run(call.services.store.fleet_actions.rollout, body.name) is not None:
        raise Conflict(f"a rollout named {body.name!r} exists already", "Choose another name.")
    plan = Plan(
        version=body.version,
        models=tuple(body.models),
        groups=tuple(body.groups),
        sites=tuple(body.sites),
        canary_group=body.canary_group,
        waves=tuple(body.waves),
        window=body.window,
        deadline=body.deadline,
        max_failures=body.max_failures,
    )
    view = await call.run(rollouts.plan_rollout, call.services.settings, body.name, plan)
    return json(Rollout.of(view), 201)


async def get_rollout(call: Call) -> web.Response:
    name = await _named(call)
    return json(Rollout.of(await call.run(rollouts.rollout_status, call.services.settings, name)))


async def _command(call: Call, work: Any, *, reason: bool = False) -> web.Response:
    name = await _named(call)
    args: tuple[str, ...] = ((await call.body(RolloutReason)).reason,) if reason else ()
    view = await call.run(work, call.services.settings, name, *args)
    return json(Rollout.of(view))


async def start_rollout(call: Call) -> web.Response:
    return await _command(call, rollouts.start_rollout)


async def check_rollout(call: Call) -> web.Response:
    return await _command(call, rollouts.check_rollout)


async def halt_rollout(call: Call) -> web.Response:
    return await _command(call, rollouts.halt_rollout, reason=True)


async def resume_rollout(call: Call) -> web.Response:
    return await _command(call, rollouts.resume_rollout)


async def abort_rollout(call: Call) -> web.Response:
    return await _command(call, rollouts.abort_rollout, reason=True)


async def compliance(call: Call) -> web.Response:
    report = await call.run(firmware_compliance, call.services.settings)
    return json(Compliance.model_validate(report.to_json()))


async def compliance_csv(call: Call) -> web.Response:
    report = await call.run(firmware_compliance, call.services.settings)
    phones = call.query("phones") in ("1", "true")
    return web.Response(text=report.to_csv(phones=phones), content_type="text/csv")


def _rollout_command(verb: str, summary: str, handler: Any, body: Any = None) -> Route:
    return Route(
        "POST",
        f"/api/v1/rollouts/{{name}}/{verb}",
        f"{verb}Rollout",
        summary,
        handler,
        MANAGE,
        FLEET,
        body=body,
        response=Rollout,
        tag="rollouts",
    )


ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/api/v1/devices/resync",
        "resyncDevices",
        "Make phones fetch their configuration now (their REST API)",
        resync,
        MANAGE,
        FLEET,
        body=FleetActionRequest,
        response=list[FleetActionResult],
    ),
    Route(
        "POST",
        "/api/v1/devices/restart",
        "restartDevices",
        "Restart phones once no call is up (their REST API)",
        restart,
        MANAGE,
        FLEET,
        body=FleetActionRequest,
        response=list[FleetActionResult],
    ),
    Route(
        "GET",
        "/api/v1/devices/{mac}/actions",
        "deviceActions",
        "The phone's resync and restart requests, newest first, and whether it came back",
        phone_actions,
        VIEW,
        FLEET,
        response=list[PhoneAction],
        query=(Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Rows."),),
    ),
    Route(
        "PUT",
        "/api/v1/devices/{mac}/rest-port",
        "setRestPort",
        "The port of the phone's web server, when not [fleet] rest_port",
        rest_port,
        MANAGE,
        FLEET,
        body=RestPort,
        status=204,
    ),
    Route(
        "GET",
        "/api/v1/rollouts",
        "listRollouts",
        "Firmware rollouts, oldest first",
        list_rollouts,
        VIEW,
        FLEET,
        response=list[Rollout],
        tag="rollouts",
    ),
    Route(
        "POST",
        "/api/v1/rollouts",
        "planRollout",
        "Plan a rollout: its phones and waves (nothing is offered until start)",
        plan_rollout,
        MANAGE,
        FLEET,
        body=RolloutPlanBody,
        response=Rollout,
        status=201,
        tag="rollouts",
        errors=frozenset({409}),
    ),
    Route(
        "GET",
        "/api/v1/rollouts/{name}",
        "getRollout",
        "A rollout as its last check left it, per wave and per phone",
        get_rollout,
        VIEW,
        FLEET,
        response=Rollout,
        tag="rollouts",
    ),
    _rollout_command("start", "Start a planned rollout", start_rollout),
    _rollout_command("check", "Judge the wave in progress now, as the server does", check_rollout),
    _rollout_command(
        "halt",
        "Stop a running rollout; later waves stay on their old version",
        halt_rollout,
        RolloutReason,
    ),
    _rollout_command("resume", "Continue a halted rollout", resume_rollout),
    _rollout_command(
        "abort", "End a rollout: phones get their old version again", abort_rollout, RolloutReason
    ),
    Route(
        "GET",
        "/api/v1/firmware/compliance",
        "firmwareCompliance",
        "Which version each phone runs against what it is assigned, per model and group",
        compliance,
        VIEW,
        FLEET,
        response=Compliance,
        tag="firmware",
    ),
    Route(
        "GET",
        "/api/v1/firmware/compliance.csv",
        "firmwareComplianceCsv",
        "The compliance report as CSV: per model and group, or per phone",
        compliance_csv,
        VIEW,
        FLEET,
        response="text/csv",
        query=(Param("phones", {"type": "boolean"}, "One line per phone."),),
        tag="firmware",
    ),
)
