"""What the web console shows: the fleet, one phone's story, certificates, firmware, setup.

Read-only calls, one per page, taking ``Settings`` and plain values and
returning frozen records, like the services the CLI calls. The fleet's
filtering, sorting, paging and counting run in the database
(``Store.fleet``); a phone's story reads its record, its events, the logs it
uploaded (held ones too, for a phone waiting for approval) with their
findings, the files it gets (secrets masked), its certificates and the audit
entries that name it.
"""

from __future__ import annotations

import os
import time
from contextlib import closing
from dataclasses import dataclass

from cryptography import x509
from cryptography.fernet import Fernet

from phoneprov.config import Settings
from phoneprov.errors import InputError, PhoneprovError
from phoneprov.model import MacAddress
from phoneprov.pki.files import write_private
from phoneprov.pki.index import CertRecord
from phoneprov.protocols.phonelog.findings import Finding
from phoneprov.protocols.polycom import UploadKind
from phoneprov.provisioning.certificates import (
    CertificateFacts,
    issued_certificates,
)
from phoneprov.provisioning.logs import analyze_file
from phoneprov.provisioning.preview import preview_files
from phoneprov.records import (
    Activity,
    AuditEntry,
    Event,
    FleetFilter,
    FleetPage,
    FleetRow,
    InventoryEntry,
    Line,
)
from phoneprov.store import open_store

STALE_DAYS = 7  # a phone not seen for this long counts as stale on the fleet page
CHART_MINUTES = 24 * 60
STORY_EVENTS = 200
STORY_AUDIT = 50
LOG_TIMELINE = 200  # log lines kept per uploaded log for the boot timeline
SESSION_KEY_FILE = "console-session.key"
MASK = "********"


def stale_after(days: int = STALE_DAYS) -> float:
    return days * 86400.0


def fleet_page(settings: Settings, query: FleetFilter) -> FleetPage:
    """One page of phones with their state, the number matching, and counts per state."""
    with closing(open_store(settings)) as store:
        return store.fleet.page(query)


def fleet_activity(settings: Settings, now: float | None = None) -> Activity:
    """What the charts draw over the last 24 hours."""
    with closing(open_store(settings)) as store:
        return store.fleet.activity(time.time() if now is None else now, CHART_MINUTES)


@dataclass(frozen=True, slots=True)
class StoryLog:
    """One log the phone uploaded: where it is, whether it waits for approval, its findings."""

    name: str
    held: bool
    findings: tuple[Finding, ...]
    lines: tuple[tuple[str, str], ...]  # (time as written, message), the last boot's


@dataclass(frozen=True, slots=True)
class StoryFile:
    name: str
    body: str | None  # None: served from the boot directory as is, not rendered
    layer: str
    error: str = ""


@dataclass(frozen=True, slots=True)
class StoryCert:
    serial: str
    kind: str
    subject: str
    not_after: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class PhoneStory:
    row: FleetRow
    entry: InventoryEntry | None
    events: tuple[Event, ...]  # newest first
    logs: tuple[StoryLog, ...]
    files: tuple[StoryFile, ...]
    certificates: tuple[StoryCert, ...]
    audit: tuple[AuditEntry, ...]


def phone_story(settings: Settings, mac: MacAddress, now: float | None = None) -> PhoneStory:
    """Everything the phone page shows; InputError when the server never heard of ``mac``."""
    when = time.time() if now is None else now
    with closing(open_store(settings)) as store:
        row = store.fleet.row(mac.value, when, stale_after())
        if row is None:
            raise InputError(
                f"phone {mac} is not in the inventory and was never seen",
                "Check the MAC address, or add the phone with `phoneprov device add`.",
            )
        entry = store.inventory.entry(mac)
        events = tuple(store.events_for(mac, limit=STORY_EVENTS))
        audit = tuple(store.admin.audit(target=mac.value, limit=STORY_AUDIT))
    if entry is not None:
        entry = InventoryEntry(
            entry.mac,
            entry.model,
            entry.site,
            entry.group,
            entry.label,
            tuple(
                Line(line.index, line.ext, line.user, MASK if line.password else "", line.server)
                for line in entry.lines
            ),
        )
    return PhoneStory(
        row,
        entry,
        events,
        tuple(_logs(settings, mac)),
        tuple(_files(settings, mac)) if entry is not None else (),
        _certificates(settings, mac),
        audit,
    )


def _logs(settings: Settings, mac: MacAddress) -> list[StoryLog]:
    folders = settings.policy.folders
    found: list[StoryLog] = []
    for kind, suffix in ((UploadKind.BOOT_LOG, "boot"), (UploadKind.APP_LOG, "app")):
        name = f"{mac}-{suffix}.log"
        for root, held in ((settings.boot_dir, False), (settings.site_dir / "held", True)):
            path = root / folders[kind] / name
            if not path.is_file():
                continue
            try:
                analyzed = analyze_file(path, LOG_TIMELINE)
            except InputError as error:
                found.append(StoryLog(name, held, (), (("", str(error)),)))
                continue
            report = analyzed.report
            last = max((entry.boot for entry in report.timeline), default=0)
            lines = tuple(
                (entry.time_text, entry.message) for entry in report.timeline if entry.boot == last
            )
            found.append(StoryLog(name, held, report.findings, lines))
    return found


def _files(settings: Settings, mac: MacAddress) -> list[StoryFile]:
    files: list[StoryFile] = []
    try:
        for preview in preview_files(settings, mac, masked=True):
            body = None if preview.body is None else preview.body.decode("utf-8", "replace")
            files.append(StoryFile(preview.name, body, preview.layer))
    except PhoneprovError as error:
        files.append(StoryFile("", None, "", f"{error} ({error.hint})"))
    return files


def certificate_records(settings: Settings) -> tuple[CertRecord, ...]:
    """Every certificate the site CA issued, newest first (none when the CA is unreadable)."""
    try:
        return tuple(reversed(issued_certificates(settings)))
    except PhoneprovError:
        return ()


def _certificates(settings: Settings, mac: MacAddress) -> tuple[StoryCert, ...]:
    records = certificate_records(settings)
    return tuple(
        StoryCert(r.serial_hex, str(r.kind), r.subject, r.not_after.date().isoformat(), r.revoked)
        for r in records
        if r.mac == mac.value
    )


def audit_trail(settings: Settings, limit: int = 100) -> list[AuditEntry]:
    """The newest changes made through the CLI, the API or the console."""
    with closing(open_store(settings)) as store:
        return store.admin.audit(limit=limit)


def ca_facts(settings: Settings) -> list[tuple[str, CertificateFacts]]:
    """The site CA and the server certificates, by file name (missing ones left out)."""
    found: list[tuple[str, CertificateFacts]] = []
    for name in ("ca.pem", "server-ec.pem", "server-rsa.pem", "legacy/ca.pem"):
        path = settings.pki_dir / name
        if path.is_file():
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            found.append((name, CertificateFacts.of(cert)))
    return found


def csr_queue(settings: Settings) -> list[tuple[str, MacAddress | None]]:
    """CSRs phones uploaded that wait for ``phoneprov ca sign-csr`` (name, phone)."""
    folder = settings.boot_dir / settings.policy.folders[UploadKind.CSR]
    if not folder.is_dir():
        return []
    return [
        (path.name, MacAddress.maybe(path.name[:12]))
        for path in sorted(folder.glob("*.csr"))
        if path.is_file()
    ]


def csr_bytes(settings: Settings, name: str) -> tuple[bytes, MacAddress | None]:
    """The bytes of a queued CSR by its name (no path parts), and the phone it names."""
    for queued, mac in csr_queue(settings):
        if queued == name:
            folder = settings.boot_dir / settings.policy.folders[UploadKind.CSR]
            return (folder / queued).read_bytes(), mac
    raise InputError(f"no CSR named {name!r} is waiting", "Reload the certificates page.")


def session_key(settings: Settings) -> bytes:
    """The site's console cookie key (Fernet), made on first use, readable by the owner only."""
    path = settings.pki_dir / SESSION_KEY_FILE
    if not path.is_file():
        write_private(path, Fernet.generate_key())
    data = path.read_bytes().strip()
    if len(data) != 44:
        raise InputError(
            f"{path} is not a console session key",
            f"Remove it; phoneprov makes a new one (everyone logged in logs in again). "
            f"Its mode should be 0600, owner uid {os.getuid()}.",
        )
    return data
