"""The boot sequence of a Polycom phone, as a pure plan (SPEC §2, research §2).

Each stage is a generator: it yields the next ``Step`` (method, path, why),
receives the ``Outcome`` the server gave, and returns a ``StageResult``. No
sockets, no clock: the runner sends the requests and feeds the answers back,
so the same plan drives HTTP, HTTPS, FTP and TFTP and unit tests drive it with
canned answers.

Order (real request logs, research §2.2):
- Updater: ``<mac>.cfg`` then ``000000000000.cfg`` on 404; the firmware check
  (``sip.ver``, then ``<part>.sip.ld``, then ``sip.ld``); the ``CONFIG_FILES``
  for the ``device.*`` settings the Updater applies (the bootstrap's
  ``device.prov.serverName`` moves the phone to HTTPS); ``PUT <mac>-boot.log``
  into ``LOG_FILE_DIRECTORY`` at the end (the VVX 500 log shows the Updater's PUT
  right before the application's first GET).
- Application: the master file again, then its firmware check with the
  Application User-Agent (the VVX 500 log: ``GET <mac>.cfg`` then
  ``GET 3111-44500-001...sip.ld``), ``CONFIG_FILES`` left to right, the optional
  files (404 is normal), then the log append: ``HEAD <mac>-app.log`` for the
  size of the server's copy and a ``PUT`` with ``Content-Range: bytes
  FIRST-LAST/*`` carrying only the new lines (a plain PUT when there is no copy
  yet), once at the end of the boot and once more when the upload period comes
  round (``log.render.file.upload.period``; SPEC §6, docs/decisions/0012).
"""

from __future__ import annotations

import enum
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Literal

from phoneprov.protocols.polycom import MASTER_FILE, Stage
from phoneprov.sim.configfiles import (
    MasterFile,
    NotXml,
    merge_first_wins,
    parse_master,
    parse_parameters,
    provisioning_url,
    substitute,
)
from phoneprov.sim.phone import Phone

Method = Literal["GET", "HEAD", "PUT"]


class Purpose(enum.StrEnum):
    MASTER = "master"  # <mac>.cfg / 000000000000.cfg
    FIRMWARE = "firmware"  # sip.ver, <part>.sip.ld, sip.ld
    CONFIG = "config"  # a CONFIG_FILES entry
    OPTIONAL = "optional"  # overrides, licenses, contacts, call lists
    LOG_PROBE = "log-probe"  # HEAD of the app log
    LOG_UPLOAD = "log-upload"  # PUT of a log


@dataclass(frozen=True, slots=True)
class Step:
    """One request. ``upload_log``: the body is the phone's log lines not uploaded yet
    (the runner fills it); ``append_from``: append them at this byte of the server's copy."""

    method: Method
    path: str  # relative to the boot server URL, no leading slash
    purpose: Purpose
    upload_log: bool = False
    append_from: int | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What came back: an HTTP-style status (FTP/TFTP mapped), or 0 and an error."""

    status: int
    body: bytes = b""
    error: str = ""
    size: int | None = None  # bytes received; for HEAD the Content-Length

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def missing(self) -> bool:
        return self.status == 404


class Severity(enum.StrEnum):
    OK = "ok"
    WARNING = "warning"  # the phone carries on (a config file missing, a log refused over TFTP)
    FAILURE = "failure"  # the boot is not complete


@dataclass(frozen=True, slots=True)
class Note:
    """A judgement on one step, for the verdict."""

    severity: Severity
    path: str
    reason: str  # short, stable key for grouping: "http-403", "tls", "missing-config"
    text: str


@dataclass
class StageResult:
    stage: Stage
    notes: list[Note] = field(default_factory=list)
    master: MasterFile | None = None
    next_url: str | None = None  # where device.prov.* sends the phone, when it changed
    installed: str | None = None  # the firmware version the stage downloaded and installed
    params: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(note.severity is Severity.FAILURE for note in self.notes)


StagePlan = Generator[Step, Outcome, StageResult]

OPTIONAL_FILES: tuple[tuple[str, str], ...] = (
    # (directory attribute, name): research §2.4; <mac>-directory.xml before the seed file.
    ("OVERRIDES_DIRECTORY", "[PHONE_MAC_ADDRESS]-phone.cfg"),
    ("OVERRIDES_DIRECTORY", "[PHONE_MAC_ADDRESS]-web.cfg"),
    ("LICENSE_DIRECTORY", "000000000000-license.cfg"),
    ("LICENSE_DIRECTORY", "[PHONE_MAC_ADDRESS]-license.cfg"),
    ("CALL_LISTS_DIRECTORY", "[PHONE_MAC_ADDRESS]-calls.xml"),
    ("CONTACTS_DIRECTORY", "[PHONE_MAC_ADDRESS]-directory.xml"),
)
SEED_DIRECTORY = "000000000000-directory.xml"


def _failure(step: Step, outcome: Outcome) -> Note:
    if outcome.status == 0:
        reason = outcome.error.split(":", 1)[0] or "transport"
        return Note(Severity.FAILURE, step.path, reason, outcome.error or "no answer")
    return Note(
        Severity.FAILURE,
        step.path,
        f"http-{outcome.status}",
        f"{step.method} {step.path}: status {outcome.status}",
    )


def _judge(result: StageResult, step: Step, outcome: Outcome) -> None:
    """Record what a non-2xx answer means for this step (404 on optional files is normal)."""
    if outcome.ok:
        return
    if outcome.missing and step.purpose in (Purpose.OPTIONAL, Purpose.LOG_PROBE, Purpose.FIRMWARE):
        return
    if outcome.missing and step.purpose is Purpose.CONFIG:
        result.notes.append(
            Note(
                Severity.WARNING,
                step.path,
                "missing-config",
                f"config file {step.path} is missing; the phone boots without it",
            )
        )
        return
    result.notes.append(_failure(step, outcome))


def _master(phone: Phone, result: StageResult, master_name: str | None) -> StagePlan:
    """``<mac>.cfg``, then ``000000000000.cfg`` on 404 (research §1.1)."""
    names = [master_name] if master_name else [f"{phone.mac.value}.cfg", MASTER_FILE]
    for index, name in enumerate(names):
        last = index == len(names) - 1
        step = Step("GET", name, Purpose.MASTER)
        outcome = yield step
        if outcome.status == 403 and not last:
            # Some servers refuse a per-phone file instead of answering "not found"
            # (phoneprov's TFTP listener: access violation). Carry on like a 404, but say so.
            result.notes.append(
                Note(
                    Severity.WARNING,
                    name,
                    "refused-not-missing",
                    f"{name} was refused (403 / access violation), not reported "
                    "missing; a phone that falls back only on 'not found' stops "
                    "here",
                )
            )
            continue
        if outcome.missing and not last:
            continue
        if not outcome.ok:
            result.notes.append(_failure(step, outcome))
            return result
        try:
            result.master = parse_master(outcome.body, phone.model)
        except NotXml as error:
            result.notes.append(
                Note(
                    Severity.FAILURE, name, "bad-master", f"{name} is not well-formed XML: {error}"
                )
            )
        return result
    return result


def _firmware(phone: Phone, master: MasterFile, result: StageResult) -> StagePlan:
    """Version file first; the image only when the version differs (research §2.3)."""
    image = substitute(master.app_file_path, phone.mac, phone.part_number)
    folder, _, base = image.rpartition("/")
    prefix = f"{folder}/" if folder else ""
    stem = base[:-3] if base.endswith(".ld") else base
    version = yield Step("GET", f"{prefix}{stem}.ver", Purpose.FIRMWARE)
    _judge(result, Step("GET", f"{prefix}{stem}.ver", Purpose.FIRMWARE), version)
    offered = version.body.decode("ascii", "replace").strip() if version.ok else ""
    if offered == phone.app_version:
        return result
    candidates = [f"{prefix}{phone.part_number}.{base}"] if phone.part_number else []
    candidates.append(image)
    for path in candidates:
        step = Step("GET", path, Purpose.FIRMWARE)
        outcome = yield step
        _judge(result, step, outcome)
        if outcome.ok and offered:
            result.installed = offered
        if not outcome.missing:
            break
    return result


def _config_files(phone: Phone, master: MasterFile, result: StageResult) -> StagePlan:
    for entry in master.config_files:
        step = Step("GET", substitute(entry, phone.mac, phone.part_number), Purpose.CONFIG)
        outcome = yield step
        _judge(result, step, outcome)
        if outcome.ok:
            try:
                merge_first_wins(result.params, parse_parameters(outcome.body))
            except NotXml as error:
                result.notes.append(
                    Note(
                        Severity.FAILURE,
                        step.path,
                        "bad-config",
                        f"{step.path} is not well-formed XML: {error}",
                    )
                )
    return result


def _upload(step: Step, outcome: Outcome, result: StageResult, *, tolerant: bool) -> None:
    if outcome.ok:
        return
    if tolerant and outcome.status in (403, 404, 405, 501):
        result.notes.append(
            Note(
                Severity.WARNING,
                step.path,
                "upload-refused",
                f"{step.path} upload refused (status {outcome.status}); the phone carries on",
            )
        )
        return
    result.notes.append(_failure(step, outcome))


def updater(
    phone: Phone,
    current_url: str,
    *,
    master_name: str | None = None,
    tolerate_upload_refusal: bool = False,
) -> StagePlan:
    """The Updater/bootROM stage. ``current_url`` is the server it boots from, so the
    result says whether the bootstrap's ``device.prov.*`` settings point elsewhere."""
    result = StageResult(Stage.UPDATER)
    yield from _master(phone, result, master_name)
    master = result.master
    if master is None:
        return result
    yield from _firmware(phone, master, result)
    yield from _config_files(phone, master, result)
    target = provisioning_url(result.params)
    if target is not None and target.rstrip("/") != current_url.rstrip("/"):
        result.next_url = target
    step = Step(
        "PUT",
        f"{master.folder('LOG_FILE_DIRECTORY')}{phone.mac.value}-boot.log",
        Purpose.LOG_UPLOAD,
        upload_log=True,
    )
    outcome = yield step
    _upload(step, outcome, result, tolerant=tolerate_upload_refusal)
    return result


def application(
    phone: Phone,
    *,
    master_name: str | None = None,
    can_head: bool = True,
    tolerate_upload_refusal: bool = False,
) -> StagePlan:
    """The application stage. ``can_head``: the transport has HEAD (TFTP has not)."""
    result = StageResult(Stage.APPLICATION)
    yield from _master(phone, result, master_name)
    master = result.master
    if master is None:
        return result
    yield from _firmware(phone, master, result)
    yield from _config_files(phone, master, result)
    for attribute, name in OPTIONAL_FILES:
        step = Step(
            "GET", master.folder(attribute) + substitute(name, phone.mac, ""), Purpose.OPTIONAL
        )
        outcome = yield step
        _judge(result, step, outcome)
        if name.endswith("-directory.xml") and outcome.missing:
            # The seed directory is used only when the phone has none of its own.
            seed = Step("GET", master.folder(attribute) + SEED_DIRECTORY, Purpose.OPTIONAL)
            _judge(result, seed, (yield seed))
    log = f"{master.folder('LOG_FILE_DIRECTORY')}{phone.mac.value}-app.log"
    for _ in range(LOG_UPLOADS):
        yield from _append_log(log, result, can_head=can_head, tolerant=tolerate_upload_refusal)
    return result


LOG_UPLOADS = 2  # at the end of the boot, and when the upload period comes round


def _append_log(log: str, result: StageResult, *, can_head: bool, tolerant: bool) -> StagePlan:
    """``HEAD`` for the size of the server's copy, then ``PUT`` only the new lines.

    The phone appends at the size HEAD gave (``Content-Range``); with no copy yet
    (404) it sends its log whole. A HEAD answer without a Content-Length leaves it
    nothing to append at: it says so and sends the whole log, which replaces the
    server's copy (inferred: the Polycom documents name the message, not what follows).
    """
    offset = None
    if can_head:
        probe = Step("HEAD", log, Purpose.LOG_PROBE)
        found = yield probe
        _judge(result, probe, found)
        if found.ok and found.size is None:
            result.notes.append(
                Note(
                    Severity.WARNING,
                    log,
                    "no-content-length",
                    f"HEAD {log} gave no Content-Length: the phone cannot set the "
                    "Content-Range header to append, and sends its whole log",
                )
            )
        elif found.ok:
            offset = found.size
    step = Step("PUT", log, Purpose.LOG_UPLOAD, upload_log=True, append_from=offset)
    outcome = yield step
    if offset is not None and outcome.status in (400, 501):
        # RFC 9110 §14.4: a server that does not take Content-Range on PUT refuses it
        # (nginx's WebDAV answers 501). The log stays on the phone; the boot goes on.
        result.notes.append(
            Note(
                Severity.WARNING,
                log,
                "append-refused",
                f"{log}: the server refused the append (status {outcome.status}); it does "
                "not take Content-Range on PUT, so the phone's log stays on the phone",
            )
        )
        return result
    _upload(step, outcome, result, tolerant=tolerant)
    return result
