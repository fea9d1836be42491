"""Polycom phone log parser: raw lines in, a timeline and findings out (SPEC §10).

Pure and streaming: the caller feeds one physical line at a time (bytes, as
read) and calls ``finish()``; memory stays bounded whatever the log's size
(the timeline keeps the last ``timeline_limit`` entries, findings are capped).

The entry format is the one the SoundPoint IP / SoundStation IP administrator
guides define ("Event Logging"; the same text in the CX5100 and UC Software
guides): "Each event in the log contains the following fields separated by the
| character: time or time/date stamp; 1-5 character component identifier (such
as "so"); event class; cumulative log events missed due to excessive CPU load;
free form text - the event description", with their example
``011511.006|so |2|00|soCoreAudioTermChg: chassis -> idle``. The event class is
a digit, or ``*`` for a message logged whatever the level (Feature Profile
37148's saved.log: ``0531130928|tls |*|03|Saving new ...``); the missed count
is two digits; the stamp is one of three styles (see ``stamps``).

A line without a header continues the entry above it: the phone wraps long
messages (TB 52609 and FP 37148 print ``...|curl |3|00| subject: ..., OU=polycom,``
then ``CN=Server A.qaad.local``). Lines before the first header, or copied
without any (a support ticket, a forum post), are entries of their own and
still get their findings.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from phoneprov.protocols.phonelog.findings import Finding, FindingBuilder
from phoneprov.protocols.phonelog.kinds import FindingKind, Observation, Signal
from phoneprov.protocols.phonelog.rules import observe
from phoneprov.protocols.phonelog.stamps import (
    BOOT,
    SECONDS,
    Stamp,
    Style,
    parse_stamp,
    wall_styles,
)

TIMELINE_LIMIT = 1000
# One entry's folded text is capped: a runaway continuation (a pasted PEM bundle,
# garbage without newlines) must not grow without bound.
MAX_MESSAGE_CHARS = 4096
# How much of a file's start decides "this is not text" (see ``binary_reason``).
SNIFF_BYTES = 8192

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_KINDS = frozenset(str(kind) for kind in FindingKind)
_MODULE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class LogEntry(NamedTuple):
    """One event: a header line and its folded continuation lines.

    A NamedTuple rather than a frozen dataclass: one is built per entry of
    logs with millions of lines, and tuple construction is several times cheaper.
    """

    line: int  # first physical line, 1-based
    last_line: int
    stamp: Stamp | None  # None for a line without a header
    module: str | None
    event_class: str | None  # "0".."9", or "*" (logged whatever the level)
    missed: int | None  # events missed under CPU load, as the phone counted them
    message: str
    boot: int  # 1 for the first boot in the log, +1 at each reboot seen
    kinds: tuple[str, ...]  # finding kinds this entry contributed to

    @property
    def time_text(self) -> str:
        """The stamp for display: ``07-27 21:03:09``, or ``01:15:11.006`` since boot."""
        return "" if self.stamp is None else self.stamp.text

    def to_json(self) -> dict[str, Any]:
        """The entry for ``--format json``: stamps decoded (``011511.006`` -> 4511.006 s)."""
        data: dict[str, Any] = {
            "line": self.line,
            "last_line": self.last_line,
            "boot": self.boot,
            "module": self.module,
            "event_class": self.event_class,
            "missed": self.missed,
            "message": self.message,
            "findings": list(self.kinds),
        }
        if self.stamp is not None:
            data.update(self.stamp.to_json())
        return data


class Header(NamedTuple):
    stamp: Stamp
    module: str
    event_class: str
    missed: int
    message: str


def parse_header(text: str, prefer: Style = SECONDS) -> Header | None:
    """Return the parsed header when ``text`` starts an entry, else None.

    ``stamp|module|class|missed|text``: a real stamp (see ``stamps``), a 1-5
    character module name padded with spaces, a digit or ``*``, two digits.
    Anything else is not a header (it continues the previous entry).
    """
    # Every stamp style is 10 characters: a cheap test that skips the split for
    # continuation lines, most of a large log.
    if len(text) < 11 or text[10] != "|" or not text[0].isdigit():
        return None
    parts = text.split("|", 4)
    if len(parts) != 5:
        return None
    raw, field, event_class, missed, message = parts
    module = field.rstrip(" ")
    if not (
        0 < len(module) <= 5
        and len(field) <= 8
        and _MODULE_CHARS.issuperset(module)
        and len(event_class) == 1
        and (event_class == "*" or event_class.isdigit())
        and len(missed) == 2
        and missed.isascii()
        and missed.isdigit()
    ):
        return None
    stamp = parse_stamp(raw, prefer)
    if stamp is None:
        return None
    return Header(stamp, module, event_class, int(missed), message)


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
        self._last_style: Style | None = None
        self._last_order: dict[Style, float] = {}
        self._styles: dict[Style, None] = {}
        self._wall: Style | None = None
        self._missed = 0
        self._first_stamp: Stamp | None = None
        self._last_stamp: Stamp | None = None

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
        header = parse_header(text.lstrip(), self._wall or SECONDS)
        if header is not None and self._wall is None and header.stamp.style != BOOT:
            # The first stamp that is a date and time in only one wall style settles the log's.
            styles = wall_styles(header.stamp.raw)
            if len(styles) == 1:
                self._wall = styles[0]
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
                stamp=header.stamp if header is not None else None,
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
                module=header.module if header else None,
                event_class=header.event_class if header else None,
                missed=header.missed if header else None,
                message=message,
                boot=max(self._boot, 1),
                kinds=kinds,
            )
        )

    def _track_boot(self, header: Header) -> None:
        """Count boots: a reboot message, the since-boot clock starting again, the
        Updater's since-boot clock after the application's wall clock, or the wall
        clock jumping back by over an hour (an unset clock after reboot)."""
        stamp = header.stamp
        style, order = stamp.style, stamp.order
        previous = self._last_order.get(style)
        restarted = (
            (style == BOOT and previous is not None and order < previous)
            or (style == BOOT and self._last_style not in (None, BOOT))
            or (style != BOOT and previous is not None and order < previous - 3600)
        )
        if restarted or self._new_boot:
            self._boot += 1
            self._new_boot = False
            self._last_order.clear()
        self._last_order[style] = order
        self._last_style = style
        self._styles[style] = None
        self._missed = max(self._missed, header.missed)
        if self._first_stamp is None:
            self._first_stamp = stamp
        self._last_stamp = stamp

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
        clocks = {"boot" if style == BOOT else "wall" for style in self._styles}
        clock = "none" if not clocks else "mixed" if len(clocks) > 1 else next(iter(clocks))
        summary: dict[str, Any] = {
            "lines": self._lines,
            "entries": self._entries,
            "stray_lines": self._stray,
            "boots": self._boot,
            "clock": clock,
            "stamp_styles": list(self._styles),
            "first_stamp": None if self._first_stamp is None else self._first_stamp.to_json(),
            "last_stamp": None if self._last_stamp is None else self._last_stamp.to_json(),
            "missed_events": self._missed,
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

    def to_json(self, *, timeline: bool = False) -> dict[str, Any]:
        """Return ``{"findings": [...], "summary": {...}}``, plus the kept ``timeline``
        when asked for."""
        data: dict[str, Any] = {
            "findings": [f.to_json() for f in self.findings],
            "summary": dict(self.summary),
        }
        if timeline:
            data["timeline"] = [entry.to_json() for entry in self.timeline]
        return data


def analyze_lines(lines: Iterable[bytes | str], timeline_limit: int = TIMELINE_LIMIT) -> LogReport:
    """Analyse a whole in-memory log (tests, small inputs); see ``LogAnalyzer``."""
    analyzer = LogAnalyzer(timeline_limit)
    for item in lines:
        analyzer.feed_line(item.encode("utf-8") if isinstance(item, str) else item)
    return analyzer.finish()
