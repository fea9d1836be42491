"""A phone's past as the admin API shows it: its timeline, the files it uploaded, and
what the log analyser found in its logs.

The timeline merges the phone's events (requests the recorder noted, uploads,
CSRs, refusals, fleet actions) with the audit entries that name it (who
approved, quarantined or changed it), newest first. Uploads are listed from the
boot directory and from ``<site>/held`` (uploads kept aside for a quarantined
phone, decisions/0008), never their bytes: an override file can carry a
password. Findings are the phonelog analyser's (``provisioning/logs.py``).
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.protocols.phonelog.findings import Finding
from phoneprov.protocols.polycom import UploadKind, upload_kind_of
from phoneprov.provisioning.logs import analyze_file
from phoneprov.store import open_store

LOG_KINDS = (UploadKind.BOOT_LOG, UploadKind.APP_LOG)
TIMELINE_LINES = 0  # log lines kept per analysed log: the API returns findings only


@dataclass(frozen=True, slots=True)
class Moment:
    """One line of a phone's timeline: an event the server recorded, or an audit entry."""

    time: float
    source: str  # "event" or "audit"
    kind: str  # the event's kind (upload, csr-queued...) or the audit action
    detail: str
    actor: str  # who made the change ("" for events: the phone itself)


@dataclass(frozen=True, slots=True)
class Upload:
    """A file the phone uploaded, where it is, and whether it waits for approval."""

    name: str
    kind: UploadKind
    path: str  # relative to the boot directory (or to <site>/held when held)
    size: int
    modified: float
    held: bool
    location: Path


@dataclass(frozen=True, slots=True)
class LogFindings:
    """One uploaded log and what the analyser found in it (``error`` when it could not read it)."""

    upload: Upload
    findings: tuple[Finding, ...]
    lines: int
    error: str = ""


def timeline(settings: Settings, mac: MacAddress, limit: int = 100) -> list[Moment]:
    """The phone's events and the audit entries naming it, newest first, at most ``limit``."""
    with closing(open_store(settings)) as store:
        events = store.events_for(mac, limit=limit)
        audit = store.admin.audit(target=mac.value, limit=limit)
    moments = [Moment(e.time, "event", e.kind, e.detail, "") for e in events]
    moments += [Moment(a.time, "audit", a.action, _changes(a.changes), a.actor) for a in audit]
    moments.sort(key=lambda m: m.time, reverse=True)
    return moments[:limit]


def _changes(changes: dict[str, list[object]]) -> str:
    return ", ".join(f"{field}: {pair[0]!r} -> {pair[-1]!r}" for field, pair in changes.items())


def uploads(settings: Settings, mac: MacAddress) -> list[Upload]:
    """Every file the phone uploaded that the site still keeps, boot directory first."""
    found: list[Upload] = []
    roots = ((settings.boot_dir, False), (settings.site_dir / "held", True))
    for root, held in roots:
        for folder in sorted(set(settings.policy.folders.values())):
            base = root / folder if folder else root
            if not base.is_dir():
                continue
            for path in sorted(base.iterdir()):
                owned = upload_kind_of(path.name)
                if owned is None or owned[1] != mac or not path.is_file():
                    continue
                if settings.policy.folders[owned[0]] != folder:
                    continue
                stat = path.stat()
                found.append(
                    Upload(
                        path.name,
                        owned[0],
                        path.relative_to(root).as_posix(),
                        stat.st_size,
                        stat.st_mtime,
                        held,
                        path,
                    )
                )
    return found


def log_findings(settings: Settings, mac: MacAddress) -> list[LogFindings]:
    """The analyser's findings for each boot and application log the phone uploaded."""
    results: list[LogFindings] = []
    for upload in uploads(settings, mac):
        if upload.kind not in LOG_KINDS:
            continue
        try:
            report = analyze_file(upload.location, TIMELINE_LINES).report
        except InputError as error:
            results.append(LogFindings(upload, (), 0, f"{error} ({error.hint})"))
            continue
        results.append(LogFindings(upload, report.findings, int(report.summary.get("lines", 0))))
    return results
