"""Polycom phone log parser: raw lines in, a timeline and findings out (SPEC §10).

Pure and streaming: the caller feeds one physical line at a time (bytes, as
read) and calls ``finish()``; memory stays bounded whatever the log's size
(the timeline keeps the last ``timeline_limit`` entries, findings are capped).

Entry format, as the phone writes ``<mac>-app.log``, ``<mac>-boot.log`` and its
serial console: ``MMDDhhmmss|module|level|marker|message`` (wall clock) or
``000005.930|module|level|marker|message`` (seconds since boot, before the
clock is set: the bootROM/Updater). A line that does not start with a
timestamp continues the previous entry (PEM blocks, multi-line config
errors); lines before the first entry (bootloader chatter in a serial capture)
are kept as entries of their own.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from phoneprov.protocols.phonelog.findings import Finding, FindingBuilder, wall_text
from phoneprov.protocols.phonelog.rules import FindingKind, Observation, Signal, observe

Clock = Literal["wall", "boot"]

TIMELINE_LIMIT = 1000
# One entry's folded text is capped: a runaway continuation (a pasted PEM bundle,
# garbage without newlines) must not grow without bound.
MAX_MESSAGE_CHARS = 4096
# How much of a file's start decides "this is not text" (see ``binary_reason``).
SNIFF_BYTES = 8192

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_KINDS = frozenset(str(kind) for kind in FindingKind)


class LogEntry(NamedTuple):
    """One event: a header line and its folded continuation lines.

    A NamedTuple rather than a frozen dataclass: one is built per entry of
    logs with millions of lines, and tuple construction is several times cheaper.
    """

    line: int  # first physical line, 1-based
    last_line: int
    stamp: str | None  # as written: "0727210309" or "000005.930"; None for a stray line
    clock: Clock | None
    module: str | None
    level: int | None
    marker: str | None
    message: str
    boot: int  # 1 for the first boot in the log, +1 at each reboot seen
    kinds: tuple[str, ...]  # finding kinds this entry contributed to

    @property
    def time_text(self) -> str:
        """Return the stamp for display: ``07-27 21:03:09`` or ``+5.930s``."""
        if self.stamp is None:
            return ""
        if self.clock == "boot":
            return f"+{float(self.stamp):.3f}s"
        return wall_text(self.stamp)


class Header(NamedTuple):
    stamp: str
    clock: Clock
    order: float  # comparable within one clock kind
    module: str
    level: int
    marker: str
    message: str


def parse_header(text: str) -> Header | None:
    """Return the parsed header when ``text`` starts an entry, else None.

    A wall-clock stamp must be a real month/day/time; anything else is not a
    header (it continues the previous entry).
    """
    # Both stamp forms are 10 characters ("0727210309", "000005.930"): a cheap
    # test that skips the regex for continuation lines, most of a large log.
    if len(text) < 11 or text[10] != "|" or not text[0].isdigit():
        return None
    parts = text.split("|", 4)
    if len(parts) != 5:
        return None
    stamp, module, level, marker, message = parts
    if not (
        level.isascii()
        and level.isdigit()
        and len(level) <= 2
        and marker.isascii()
        and marker.isalnum()
        and len(marker) <= 4
        and 0 < len(module) <= 16
    ):
        return None
    digits = stamp[:6] + stamp[7:] if stamp[6] == "." else stamp
    if not (digits.isascii() and digits.isdigit()):
        return None
    if stamp[6] == ".":
        clock: Clock = "boot"
        order = float(stamp)
    else:
        value = int(stamp)
        value, second = divmod(value, 100)
        value, minute = divmod(value, 100)
        value, hour = divmod(value, 100)
        month, day = divmod(value, 100)
        if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
            return None
        clock = "wall"
        order = float((((month * 32 + day) * 24 + hour) * 60 + minute) * 60 + second)
    return Header(stamp, clock, order, module.strip(), int(level), marker, message)


def binary_reason(head: bytes) -> str | None:
    """Return why the first bytes of a file are not a text log (None when they are text).

    Phone logs are ASCII/UTF-8 text; a NUL byte or many control or undecodable
    bytes at the start means a core dump, a firmware image or a compressed file.
    """
    sample = head[:SNIFF_BYTES]
    if not sample:
        return None
    nul = sample.find(b"\x00")
    if nul >= 0:
        return f"it contains a NUL byte at offset {nul}"
    controls = sum(1 for b in sample if b < 0x20 and b not in b"\t\n\r\x0c\x1b")
    decoded = sample.decode("utf-8", errors="replace")
    # The last character may be cut in half by the sample boundary: not counted.
    bad = decoded[:-1].count("\ufffd")
    if (controls + bad) * 10 > len(sample):
        share = (controls + bad) * 100 // len(sample)
        return f"{share}% of its first {len(sample)} bytes are control or undecodable bytes"
    return None


def _timeline_kind(observation: Observation) -> str:
    """The finding kind an entry is marked with in the timeline ("" for none)."""
    if observation.kind is Signal.HTTP_STATUS:
        return f"http-{observation.detail['status']}"
    return str(observation.kind) if observation.kind in _KINDS else ""


class _Open:
    """The entry being built: header seen, continuation lines may follow."""

    __slots__ = ("clipped", "header", "last_line", "line", "parts", "size")

    def __init__(self, line: int, header: Header | None, text: str) -> None:
        self.line = line
        self.last_line = line
        self.header = header
        self.parts = [header.message if header else text]
        self.size = len(self.parts[0])
        self.clipped = False

    def fold(self, line: int, text: str) -> None:
        self.last_line = line
        if self.size + len(text) + 1 > MAX_MESSAGE_CHARS:
            self.clipped = True
            return
        self.parts.append(text)
        self.size += len(text) + 1


class LogAnalyzer:
    """Feed lines with ``feed_line``; ``finish`` returns the ``LogReport``."""

    def __init__(self, timeline_limit: int = TIMELINE_LIMIT) -> None:
        self.timeline_limit = timeline_limit
        self._timeline: deque[LogEntry] = deque(maxlen=timeline_limit)
        self._builder = FindingBuilder()
        self._open: _Open | None = None
        self._lines = 0
        self._entries = 0
        self._stray = 0
        self._undecodable = 0
        self._nul = 0
        self._cut = 0
        self._clipped = 0
        self._boot = 0
        self._new_boot = True
        self._last_clock: Clock | None = None
        self._last_order: dict[Clock, float] = {}
        self._clocks: set[Clock] = set()
        self._first_stamp: str | None = None
        self._last_stamp: str | None = None

    def feed_line(self, raw: bytes, *, cut: bool = False) -> None:
        """Take one physical line (terminator optional); ``cut`` marks a line that was
        longer than the reader's limit and arrives shortened."""
        self._lines += 1
        if cut:
            self._cut += 1
        if b"\x00" in raw:
            self._nul += 1
            raw = raw.replace(b"\x00", b"")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._undecodable += 1
            text = raw.decode("utf-8", errors="replace")
        if "\x1b" in text:
            text = _ANSI.sub("", text)
        text = text.rstrip("\r\n").strip("\r")
        header = parse_header(text.lstrip())
        if header is not None:
            self._close()
            self._open = _Open(self._lines, header, text)
        elif not text.strip():
            return
        elif self._open is not None and self._open.header is not None:
            self._open.fold(self._lines, text.strip())
        else:
            self._close()
            self._stray += 1
            self._open = _Open(self._lines, None, text.strip())

    def _close(self) -> None:
        current = self._open
        if current is None:
            return
        self._open = None
        header = current.header
        if header is not None:
            self._track_boot(header)
        elif self._boot == 0:
            self._boot = 1
        message = "\n".join(current.parts)
        if current.clipped:
            self._clipped += 1
        observations = observe(message)
        if observations or self._builder.waiting:
            self._builder.add(
                observations,
                line=current.line,
                index=self._entries,
                boot=self._boot,
                stamp=header.stamp if header is not None and header.clock == "wall" else "",
            )
        self._entries += 1
        kinds: tuple[str, ...] = ()
        if observations:
            kinds = tuple(dict.fromkeys(_timeline_kind(o) for o in observations))
            kinds = tuple(kind for kind in kinds if kind)
            if any(o.kind is Signal.REBOOT for o in observations):
                self._new_boot = True
        self._timeline.append(
            LogEntry(
                line=current.line,
                last_line=current.last_line,
                stamp=header.stamp if header else None,
                clock=header.clock if header else None,
                module=header.module if header else None,
                level=header.level if header else None,
                marker=header.marker if header else None,
                message=message,
                boot=max(self._boot, 1),
                kinds=kinds,
            )
        )

    def _track_boot(self, header: Header) -> None:
        """Count boots: a reboot message, the seconds-since-boot clock starting
        again, the Updater's boot clock after the application's wall clock, or
        the wall clock jumping back by over an hour (an unset clock after reboot)."""
        previous = self._last_order.get(header.clock)
        restarted = (
            (header.clock == "boot" and previous is not None and header.order < previous)
            or (header.clock == "boot" and self._last_clock == "wall")
            or (header.clock == "wall" and previous is not None and header.order < previous - 3600)
        )
        if restarted or self._new_boot:
            self._boot += 1
            self._new_boot = False
            self._last_order.clear()
        self._last_order[header.clock] = header.order
        self._last_clock = header.clock
        self._clocks.add(header.clock)
        if self._first_stamp is None:
            self._first_stamp = header.stamp
        self._last_stamp = header.stamp

    def finish(self, *, complete: bool = True) -> LogReport:
        """Close the last entry and return the report.

        ``complete`` is False when the input ended without a final newline
        (a cut-off upload): the report then carries a log-truncated finding.
        """
        self._close()
        findings = self._builder.findings(
            complete=complete or self._lines == 0, last_line=self._lines
        )
        counts = {"error": 0, "warning": 0, "info": 0}
        for finding in findings:
            counts[finding.severity] += 1
        clock = (
            "none"
            if not self._clocks
            else "mixed"
            if len(self._clocks) > 1
            else next(iter(self._clocks))
        )
        summary: dict[str, Any] = {
            "lines": self._lines,
            "entries": self._entries,
            "stray_lines": self._stray,
            "boots": self._boot,
            "clock": clock,
            "first_stamp": self._first_stamp,
            "last_stamp": self._last_stamp,
            "errors": counts["error"],
            "warnings": counts["warning"],
            "infos": counts["info"],
            "complete": complete,
            "undecodable_lines": self._undecodable,
            "nul_lines": self._nul,
            "long_lines_cut": self._cut,
            "entries_clipped": self._clipped,
            "findings_dropped": self._builder.dropped,
            "timeline_kept": len(self._timeline),
            "timeline_limit": self.timeline_limit,
            "timeline_truncated": self._entries > len(self._timeline),
        }
        return LogReport(tuple(findings), tuple(self._timeline), summary)


@dataclass(frozen=True, slots=True)
class LogReport:
    """Findings (errors first), the kept timeline, and counts about the input."""

    findings: tuple[Finding, ...]
    timeline: tuple[LogEntry, ...]
    summary: dict[str, Any]

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        """Return ``{"findings": [...], "summary": {...}}``."""
        return {
            "findings": [f.to_json() for f in self.findings],
            "summary": dict(self.summary),
        }


def analyze_lines(lines: Iterable[bytes | str], timeline_limit: int = TIMELINE_LIMIT) -> LogReport:
    """Analyse a whole in-memory log (tests, small inputs); see ``LogAnalyzer``."""
    analyzer = LogAnalyzer(timeline_limit)
    for item in lines:
        analyzer.feed_line(item.encode("utf-8") if isinstance(item, str) else item)
    return analyzer.finish()
