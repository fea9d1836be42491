"""Turn observations from many log entries into findings (kind, severity, lines, cause, fix).

Pure and bounded: a finding keeps at most ``MAX_LINES`` line numbers (and
counts the rest), and at most ``MAX_FINDINGS`` distinct findings are kept, so a
log of any size costs the same memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from phoneprov.protocols.phonelog.advice import advice_for, render
from phoneprov.protocols.phonelog.kinds import (
    SEVERITY_RANK,
    Detail,
    FindingKind,
    Observation,
    Severity,
    Signal,
)
from phoneprov.protocols.phonelog.rules import (
    is_firmware_check,
    is_firmware_file,
    is_optional_file,
)
from phoneprov.protocols.phonelog.session import TlsSession
from phoneprov.protocols.phonelog.stamps import Stamp

MAX_LINES = 50
MAX_FINDINGS = 500
# A status line without a file name belongs to the download named on a
# neighbouring entry: the phone logs the transfer error and the "Download of
# '...' failed" line next to each other, in either order.
_NEIGHBOUR = 5
_FIRMWARE_EVENTS = 50

_HTTP_KINDS = {401: FindingKind.HTTP_401, 403: FindingKind.HTTP_403, 404: FindingKind.HTTP_404}


@dataclass(frozen=True, slots=True)
class Finding:
    """One diagnosis: what happened, where (line numbers), why, and what to do."""

    kind: FindingKind
    severity: Severity
    lines: tuple[int, ...]
    cause: str
    fix: str
    occurrences: int
    detail: Detail
    first_seen: Stamp | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form: kind, severity, lines, cause, fix (+ occurrences, detail,
        and ``first_seen``: the stamp of its first line, decoded)."""
        data: dict[str, Any] = {
            "kind": str(self.kind),
            "severity": self.severity,
            "lines": list(self.lines),
            "cause": self.cause,
            "fix": self.fix,
        }
        if self.occurrences > len(self.lines):
            data["occurrences"] = self.occurrences
        if self.detail:
            data["detail"] = dict(self.detail)
        if self.first_seen is not None:
            data["first_seen"] = self.first_seen.to_json()
        return data


@dataclass(slots=True)
class _Acc:
    kind: FindingKind
    detail: Detail
    lines: list[int] = field(default_factory=list)
    occurrences: int = 0
    first_seen: Stamp | None = None

    def add(self, line: int, detail: Detail, stamp: Stamp | None = None) -> None:
        self.occurrences += 1
        if self.first_seen is None:
            self.first_seen = stamp
        if len(self.lines) < MAX_LINES and line not in self.lines[-3:]:
            self.lines.append(line)
        for key, value in detail.items():
            self.detail.setdefault(key, value)


@dataclass(slots=True)
class _Pending:
    detail: Detail
    line: int
    index: int


class FindingBuilder:
    """Accumulates observations entry by entry; ``findings()`` returns the diagnosis."""

    def __init__(self) -> None:
        self._accs: dict[tuple[FindingKind, str], _Acc] = {}
        self.dropped = 0
        self._recent_failed: tuple[str, int] | None = None
        self._pending: list[_Pending] = []
        self._succeeded: set[str] = set()
        self._sntp_only = True
        self._firmware_last_boot = 0
        self._firmware_boot_count = 0
        self._firmware_events: list[tuple[int, str]] = []
        self._session = TlsSession()
        self._saving = ""
        self._stamp: Stamp | None = None

    def _acc(self, kind: FindingKind, key: str, detail: Detail) -> _Acc | None:
        acc = self._accs.get((kind, key))
        if acc is None:
            if len(self._accs) >= MAX_FINDINGS:
                self.dropped += 1
                return None
            acc = self._accs[(kind, key)] = _Acc(kind, dict(detail))
        return acc

    def _record(self, kind: FindingKind, key: str, line: int, detail: Detail) -> None:
        acc = self._acc(kind, key, detail)
        if acc is not None:
            acc.add(line, detail, self._stamp)

    @property
    def waiting(self) -> bool:
        """True while a status line waits for its file: every entry must be added."""
        return bool(self._pending)

    def add(
        self,
        observations: list[Observation],
        *,
        line: int,
        index: int,
        boot: int,
        stamp: Stamp | None,
    ) -> None:
        """Record what entry ``index`` (first line ``line``, in boot ``boot``, stamped
        ``stamp``) says."""
        self._stamp = stamp
        for obs in observations:
            kind = obs.kind
            if kind is FindingKind.DOWNLOAD_OK:
                self._download_ok(obs.detail, line, index, boot)
            elif kind is FindingKind.DOWNLOAD_FAILED:
                self._download_failed(obs.detail, line, index)
            elif kind is Signal.HTTP_STATUS:
                self._http_status(obs.detail, line, index)
            elif kind is Signal.SNTP_FAILED:
                self._record(FindingKind.CLOCK_NOT_SET, "", line, {})
            elif kind is FindingKind.CLOCK_NOT_SET:
                self._sntp_only = False
                wall = stamp is not None and stamp.since_boot is None
                clock = {"clock": stamp.text} if stamp is not None and wall else {}
                self._record(kind, "", line, {**obs.detail, **clock})
            elif kind is Signal.FIRMWARE_UPDATE:
                self._firmware(line, boot, f"version {obs.detail['version']}")
            elif isinstance(kind, Signal):
                self._signal(obs, line)
            elif kind is FindingKind.TLS_SERVER_VERIFIED and not obs.detail:
                self._record(kind, str(self._session.host or ""), line, self._session.facts())
            else:
                self._record(kind, _key(kind, obs.detail), line, obs.detail)
        self._expire_pending(index)

    def _signal(self, obs: Observation, line: int) -> None:
        """The trace and certificate steps that make a finding together with others."""
        kind, detail = obs.kind, obs.detail
        if kind is Signal.CONNECTION:
            self._session = TlsSession(str(detail["host"]), int(detail["port"]))
        elif kind is Signal.CIPHER:
            self._session.cipher = str(detail["cipher"])
        elif kind is Signal.HANDSHAKE:
            done = self._session.step(str(detail["step"]), line)
            if done is not None:
                mutual = FindingKind.MTLS_ESTABLISHED
                acc = self._acc(mutual, str(done.get("host", "")), done)
                for step_line in self._session.lines:
                    if acc is not None:
                        acc.add(step_line, done, self._stamp)
        elif kind is Signal.CERT_SAVING:
            self._saving = str(detail["slot"])
            self._record(FindingKind.CUSTOM_CERT_SAVED, self._saving, line, detail)
        elif kind in (Signal.CERT_IDENTITY, Signal.CERT_NO_PREVIOUS):
            self._record(FindingKind.CUSTOM_CERT_SAVED, self._saving, line, detail)

    def _download_ok(self, detail: Detail, line: int, index: int, boot: int) -> None:
        name = str(detail["file"])
        if len(self._succeeded) < MAX_FINDINGS:
            self._succeeded.add(name)
        acc = self._acc(FindingKind.DOWNLOAD_OK, name, detail)
        if acc is not None:
            acc.add(line, {}, self._stamp)
            if "attempt" in detail:
                acc.detail["attempt"] = detail["attempt"]
        if is_firmware_file(name):
            self._firmware(line, boot, name)

    def _download_failed(self, detail: Detail, line: int, index: int) -> None:
        name = str(detail["file"])
        self._recent_failed = (name, index)
        acc = self._acc(FindingKind.DOWNLOAD_FAILED, name, detail)
        if acc is None:
            return
        acc.add(line, {}, self._stamp)
        attempt = detail.get("attempt")
        if isinstance(attempt, int):
            acc.detail["attempt"] = max(attempt, int(acc.detail.get("attempt", 0)))
        acc.detail["failures"] = acc.occurrences
        for pending in self._pending:
            self._emit_status(pending.detail, name, pending.line)
        self._pending.clear()

    def _http_status(self, detail: Detail, line: int, index: int) -> None:
        named = detail.get("file")
        if isinstance(named, str):
            self._emit_status(detail, named, line)
        else:
            self._pending.append(_Pending(detail, line, index))

    def _emit_status(self, detail: Detail, name: str, line: int) -> None:
        status = detail["status"]
        kind = _HTTP_KINDS[int(status)]
        self._record(kind, name, line, {**detail, "file": name})
        failed = self._accs.get((FindingKind.DOWNLOAD_FAILED, name))
        if failed is not None:
            failed.detail.setdefault("status", status)

    def _expire_pending(self, index: int) -> None:
        while self._pending and index - self._pending[0].index > _NEIGHBOUR:
            self._resolve_backward(self._pending.pop(0))

    def _resolve_backward(self, pending: _Pending) -> None:
        """No failed download followed the status line: it belongs to the failed
        download just before it, if any, else to an unknown file."""
        name = "unknown"
        if self._recent_failed is not None:
            failed_name, failed_index = self._recent_failed
            if 0 <= pending.index - failed_index <= _NEIGHBOUR:
                name = failed_name
        self._emit_status(pending.detail, name, pending.line)

    def _firmware(self, line: int, boot: int, what: str) -> None:
        if boot != self._firmware_last_boot:
            self._firmware_last_boot = boot
            self._firmware_boot_count += 1
        if len(self._firmware_events) < _FIRMWARE_EVENTS:
            self._firmware_events.append((line, what))

    def findings(self, *, complete: bool, last_line: int) -> list[Finding]:
        """Return the findings, errors first, then by first line number.

        ``complete`` is False when the log ends mid-line (a cut-off upload).
        """
        for pending in self._pending:
            self._resolve_backward(pending)
        self._pending.clear()
        result = [self._finish(acc) for acc in self._accs.values()]
        if self._firmware_boot_count >= 2:
            result.append(self._firmware_loop())
        if not complete:
            advice = advice_for(FindingKind.LOG_TRUNCATED)
            result.append(
                Finding(
                    FindingKind.LOG_TRUNCATED,
                    advice.severity,
                    (last_line,),
                    advice.cause,
                    advice.fix,
                    1,
                    {},
                    self._stamp,
                )
            )
        result.sort(key=lambda f: (SEVERITY_RANK[f.severity], f.lines[0] if f.lines else 0))
        return result

    def _finish(self, acc: _Acc) -> Finding:
        detail = acc.detail
        variant = ""
        name = str(detail.get("file", ""))
        if acc.kind is FindingKind.DOWNLOAD_FAILED:
            detail["recovered"] = name in self._succeeded
            missing = detail.get("status", 404) == 404
            # A missing optional file is normal; a refused one (401/403) is not.
            if name in self._succeeded:
                variant = "recovered"
            elif missing and is_optional_file(name):
                variant = "optional"
            elif missing and is_firmware_check(name):
                variant = "firmware"
        elif acc.kind is FindingKind.HTTP_404 and is_optional_file(name):
            variant = "optional"
        elif acc.kind is FindingKind.HTTP_404 and is_firmware_check(name):
            variant = "firmware"
        elif acc.kind is FindingKind.CLOCK_NOT_SET and self._sntp_only:
            variant = "sntp"
        advice = advice_for(acc.kind, variant)
        return Finding(
            acc.kind,
            advice.severity,
            tuple(acc.lines),
            render(advice.cause, detail),
            render(advice.fix, detail),
            acc.occurrences,
            detail,
            acc.first_seen,
        )

    def _firmware_loop(self) -> Finding:
        whats = [what for _, what in self._firmware_events]
        detail: Detail = {"boots": self._firmware_boot_count, "what": ", ".join(whats[:6])}
        advice = advice_for(FindingKind.FIRMWARE_LOOP)
        return Finding(
            FindingKind.FIRMWARE_LOOP,
            advice.severity,
            tuple(line for line, _ in self._firmware_events),
            render(advice.cause, detail),
            render(advice.fix, detail),
            len(self._firmware_events),
            detail,
        )


def _key(kind: FindingKind, detail: Detail) -> str:
    """Return what makes two observations of ``kind`` the same finding: for the
    certificates at boot, one finding per certificate (its facts come one per line)."""
    if kind in (FindingKind.DEVICE_CERT_PRESENT, FindingKind.DEVICE_CERT_ABSENT):
        return f"{detail.get('which', '')}|{detail.get('slot', '')}"
    parts = ("host", "slot", "cn", "fingerprint", "which", "file")
    return "|".join(str(detail.get(part, "")) for part in parts)
