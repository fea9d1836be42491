"""Drive one phone's boot: run the plan's stages over a transport, keep the trace.

The Updater boots from the URL given (DHCP option 160/66); when the bootstrap
config's ``device.prov.*`` settings name another server, the application stage
boots from there (HTTP digest -> HTTPS mutual TLS, SPEC §3).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from phoneprov.errors import InputError
from phoneprov.protocols.polycom import Stage
from phoneprov.sim import trace
from phoneprov.sim.endpoint import Endpoint, parse_endpoint
from phoneprov.sim.filetransfer import FtpTransport, TftpTransport
from phoneprov.sim.phone import Phone
from phoneprov.sim.plan import Note, Outcome, Severity, StagePlan, StageResult, Step
from phoneprov.sim.plan import application as application_plan
from phoneprov.sim.plan import updater as updater_plan
from phoneprov.sim.registrations import Registration, registrations
from phoneprov.sim.transport import HttpTransport, client_context

StageChoice = Literal["updater", "application", "both"]
RETRY_PAUSE = 0.2  # seconds between attempts after a transport failure


class Client(Protocol):
    can_head: bool
    tls_version: str | None

    async def request(self, step: Step, body: bytes = b"") -> Outcome: ...


@dataclass(frozen=True)
class BootOptions:
    url: str
    phone: Phone
    stage: StageChoice = "both"
    user: str | None = None  # digest / FTP user; default: from the URL, else PlcmSpIp
    password: str | None = None
    cafile: str | None = None  # verifies the server (the CA initial.cfg installs)
    certfile: str | None = None  # device certificate for mutual TLS
    keyfile: str | None = None
    verify_server: bool = True
    app_url: str | None = None  # overrides where the application stage boots from
    attempts: int = 3
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class RequestRecord:
    stage: Stage
    method: str
    path: str
    status: int
    attempt: int
    seconds: float
    error: str = ""


@dataclass
class BootReport:
    mac: str
    stages: list[StageResult] = field(default_factory=list)
    records: list[RequestRecord] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def notes(self) -> list[Note]:
        return [note for stage in self.stages for note in stage.notes]

    @property
    def ok(self) -> bool:
        return (
            bool(self.stages)
            and not any(stage.failed for stage in self.stages)
            and all(stage.master is not None for stage in self.stages)
        )

    @property
    def failures(self) -> list[Note]:
        return [note for note in self.notes if note.severity is Severity.FAILURE]

    @property
    def warnings(self) -> list[Note]:
        return [note for note in self.notes if note.severity is Severity.WARNING]

    @property
    def registrations(self) -> tuple[Registration, ...]:
        """The lines the phone registers with the parameters its application stage read."""
        applied = [stage for stage in self.stages if stage.stage is Stage.APPLICATION]
        return registrations(applied[-1].params) if applied else ()


def make_client(endpoint: Endpoint, options: BootOptions, user_agent: str) -> Client:
    """The transport for ``endpoint``'s scheme; InputError when HTTPS lacks what it needs."""
    if endpoint.scheme == "ftp":
        return FtpTransport(
            endpoint, user=options.user, password=options.password, timeout=options.timeout
        )
    if endpoint.scheme == "tftp":
        return TftpTransport(endpoint)
    context = None
    if endpoint.scheme == "https":
        if options.verify_server and options.cafile is None:
            raise InputError(
                f"{endpoint.url} is HTTPS but no CA was given to verify the server",
                "Pass --ca FILE (the CA initial.cfg installs on phones) or --site DIR.",
            )
        context = client_context(
            cafile=options.cafile,
            certfile=options.certfile,
            keyfile=options.keyfile,
            verify=options.verify_server,
        )
    user = options.user if options.user is not None else (endpoint.user or "PlcmSpIp")
    password = (
        options.password if options.password is not None else (endpoint.password or "PlcmSpIp")
    )
    return HttpTransport(
        endpoint,
        user_agent=user_agent,
        ssl_context=context,
        user=user,
        password=password,
        timeout=options.timeout,
    )


class Boot:
    """One phone booting; ``on_line`` sees each trace line as it is written."""

    def __init__(self, options: BootOptions, on_line: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.on_line = on_line
        self.report = BootReport(options.phone.mac.value)
        self._started = time.monotonic()
        self._tls_logged = False
        self._host = ""
        self._stage_start = 0  # the first trace line of the stage running
        self._sent: dict[str, int] = {}  # log path -> trace lines the server has

    def _log_body(self, step: Step) -> tuple[bytes, int]:
        """The lines of this stage's log the server does not have yet, and where they end."""
        start = max(self._sent.get(step.path, 0), self._stage_start)
        end = len(self.report.lines)
        lines = self.report.lines[start:end]
        return ("".join(f"{line}\n" for line in lines)).encode(), end

    def _log(self, stage: Stage, level: int, message: str) -> None:
        if stage is Stage.UPDATER:
            stamp = trace.boot_stamp(time.monotonic() - self._started)
        else:
            stamp = trace.wall_stamp(dt.datetime.now())
        module = "copy" if message.startswith(("Download", "Upload", "Size")) else "prov"
        text = trace.line(stamp, module, level, message)
        self.report.lines.append(text)
        if self.on_line is not None:
            self.on_line(text)

    async def _send(self, client: Client, stage: Stage, step: Step) -> Outcome:
        body, end = self._log_body(step) if step.upload_log else (b"", 0)
        attempt = 1
        while True:
            began = time.perf_counter()
            outcome = await client.request(step, body)
            self.report.records.append(
                RequestRecord(
                    stage,
                    step.method,
                    step.path,
                    outcome.status,
                    attempt,
                    time.perf_counter() - began,
                    outcome.error,
                )
            )
            if not self._tls_logged and client.tls_version is not None:
                self._tls_logged = True
                self._log(
                    stage,
                    trace.INFO,
                    trace.tls_up(
                        self._host, self.options.certfile is not None, self.options.phone.mac.value
                    ),
                )
            size = len(body) if step.method == "PUT" else (outcome.size or 0)
            level, message = trace.transfer(step, outcome, attempt, size)
            self._log(stage, level, message)
            if step.upload_log and outcome.ok:
                self._sent[step.path] = end
            if outcome.status != 0 or attempt >= self.options.attempts:
                return outcome
            attempt += 1
            await asyncio.sleep(RETRY_PAUSE)

    async def _run(
        self, plan: StagePlan, client: Client, stage: Stage, endpoint: Endpoint
    ) -> StageResult:
        self._tls_logged = False
        self._host = endpoint.host
        self._stage_start = len(self.report.lines) - 1  # from the stage's first line
        try:
            step = next(plan)
            while True:
                outcome = await self._send(client, stage, step)
                step = plan.send(outcome)
        except StopIteration as done:
            result: StageResult = done.value
        self.report.stages.append(result)
        return result

    async def run(self) -> BootReport:
        """Boot through the chosen stages; the report says whether the boot is complete."""
        options = self.options
        phone = options.phone
        endpoint = parse_endpoint(options.url)
        app_url = options.app_url or options.url
        if options.stage in ("updater", "both"):
            client = make_client(endpoint, options, phone.user_agent(Stage.UPDATER))
            self._log(
                Stage.UPDATER,
                trace.INFO,
                trace.stage_start("Updater", options.url, phone.user_agent(Stage.UPDATER)),
            )
            result = await self._run(
                updater_plan(
                    phone,
                    endpoint.url,
                    master_name=endpoint.master_name,
                    tolerate_upload_refusal=endpoint.scheme == "tftp",
                ),
                client,
                Stage.UPDATER,
                endpoint,
            )
            if result.failed or result.master is None:
                self.report.seconds = time.monotonic() - self._started
                return self.report
            if result.installed is not None:
                # The Updater installed the image it fetched: the application runs it.
                phone = dataclasses.replace(phone, app_version=result.installed)
            if result.next_url is not None and options.app_url is None:
                app_url = result.next_url
                self._log(Stage.UPDATER, trace.INFO, trace.server_moved(app_url))
        if options.stage in ("application", "both"):
            app_endpoint = parse_endpoint(app_url)
            client = make_client(app_endpoint, options, phone.user_agent(Stage.APPLICATION))
            self._log(
                Stage.APPLICATION,
                trace.INFO,
                trace.stage_start("Application", app_url, phone.user_agent(Stage.APPLICATION)),
            )
            await self._run(
                application_plan(
                    phone,
                    master_name=app_endpoint.master_name,
                    can_head=client.can_head,
                    tolerate_upload_refusal=app_endpoint.scheme == "tftp",
                ),
                client,
                Stage.APPLICATION,
                app_endpoint,
            )
        self.report.seconds = time.monotonic() - self._started
        return self.report


async def boot(options: BootOptions, on_line: Callable[[str], None] | None = None) -> BootReport:
    """Boot one simulated phone; see ``Boot``."""
    return await Boot(options, on_line).run()
