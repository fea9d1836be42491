"""Access and security logs.

One access line per request and one security line per refusal: a UTC time, a
fixed prefix, then ``key=value`` fields, so fail2ban (contrib/fail2ban/) and
other tools can match them::

    2026-11-22T10:00:00Z phoneprov-security refused ip=192.0.2.7 proto=https \
identity=device-cert:0004f2000001 reason=not-yours path="0004f2000002.cfg"

Most values come from the network (user names, certificate common names,
paths, template errors that quote them), so none is written as it came: a
value is bare when it is a plain token (letters, digits and ``._:@+/%,~-``)
and otherwise double-quoted with every other character written as ``\\xHH``,
one escape per UTF-8 byte: spaces, ``=``, quotes, backslashes and control
characters included. A line therefore holds no space, ``=`` or line break
but those phoneprov put there, and nothing a client sends can forge a second
field or a second line (docs/security.md describes the format for parsers).
``path`` and ``detail`` are always quoted. Values are cut at ``MAX_VALUE``
characters and then end in ``...``.

Secrets never reach these lines: identities are kinds, user names and MACs.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Protocol

ACCESS_LOGGER = "phoneprov.access"
SECURITY_LOGGER = "phoneprov.security"
MAX_VALUE = 256  # characters of one value; a path or user name is far shorter
HELD_LINES = 10_000  # lines per log kept in memory while its disk is full (about 2.5 MB)

_TOKEN = re.compile(r"[A-Za-z0-9._:@+/%,~-]+")
# Printable ASCII but space, '"', '=' and '\' stands for itself inside quotes.
_KEEP = frozenset(chr(c) for c in range(0x21, 0x7F)) - set('"=\\')
_ALWAYS_QUOTED = frozenset({"path", "detail"})


def _hex(ch: str) -> str:
    """``\\xHH`` for each UTF-8 byte of ``ch``; a byte the FTP server decoded with
    surrogateescape (not UTF-8 on the wire) is written as the byte it was."""
    try:
        data = ch.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = ch.encode("utf-8", "replace")
    return "".join(f"\\x{b:02x}" for b in data)


def escape(value: object, *, quote: bool = False) -> str:
    """``value`` as one log field value: a bare token, or quoted with ``\\xHH`` escapes."""
    text = str(value)
    cut = len(text) > MAX_VALUE
    text = text[:MAX_VALUE]
    if not quote and not cut and _TOKEN.fullmatch(text):
        return text
    body = "".join(ch if ch in _KEEP else _hex(ch) for ch in text)
    return f'"{body}..."' if cut else f'"{body}"'


def _line(head: str, fields: list[tuple[str, object]], quoted: frozenset[str]) -> str:
    """``<time> <head> key=value ...``, every value escaped: the one way lines are built."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = " ".join(f"{key}={escape(value, quote=key in quoted)}" for key, value in fields)
    return f"{stamp} {head} {body}"


class Observer(Protocol):
    """Told of every access and refusal line (the Prometheus counters, provisioning/metrics.py)."""

    def access(self, protocol: str, method: str, status: int | str, size: int) -> None: ...
    def refused(self, protocol: str, reason: str) -> None: ...


class Audit:
    """Writes the two logs through stdlib logging (handlers set by ``configure``)."""

    def __init__(self, observer: Observer | None = None) -> None:
        self.access_log = logging.getLogger(ACCESS_LOGGER)
        self.security_log = logging.getLogger(SECURITY_LOGGER)
        self.observer = observer

    def access(
        self,
        *,
        protocol: str,
        ip: str,
        identity: str,
        method: str,
        path: str,
        status: int | str,
        size: int,
        duration: float,
    ) -> None:
        fields: list[tuple[str, object]] = [
            ("proto", protocol),
            ("ip", ip),
            ("identity", identity),
            ("method", method),
            ("path", path),
            ("status", status),
            ("bytes", size),
            ("ms", f"{duration * 1000.0:.1f}"),
        ]
        self.access_log.info("%s", _line("phoneprov-access", fields, _ALWAYS_QUOTED))
        if self.observer is not None:
            self.observer.access(protocol, method, status, size)

    def refused(
        self,
        *,
        protocol: str,
        ip: str,
        identity: str,
        reason: str,
        path: str = "",
        detail: str = "",
    ) -> None:
        # ip comes first: the fail2ban filter anchors on "refused ip=" (contrib/fail2ban/).
        fields: list[tuple[str, object]] = [
            ("ip", ip),
            ("proto", protocol),
            ("identity", identity),
            ("reason", reason),
            ("path", path),
        ]
        if detail:
            fields.append(("detail", detail))
        self.security_log.warning("%s", _line("phoneprov-security refused", fields, _ALWAYS_QUOTED))
        if self.observer is not None:
            self.observer.refused(protocol, reason)

    def template_error(
        self,
        *,
        ip: str,
        protocol: str,
        identity: str,
        path: str,
        template: str,
        line: int | None,
        detail: str,
    ) -> None:
        """A template failed for a phone: an error line, not a refusal (fail2ban must not ban)."""
        fields: list[tuple[str, object]] = [
            ("ip", ip),
            ("proto", protocol),
            ("identity", identity),
            ("path", path),
            ("template", template),
            ("line", line or "-"),
            ("detail", detail),
        ]
        self.security_log.error(
            "%s", _line("phoneprov-security template-error", fields, _ALWAYS_QUOTED)
        )


class HoldingFileHandler(logging.Handler):
    """Appends lines to a file; lines the disk refuses are held in memory, not lost.

    While writing fails (a full disk: ENOSPC, a quota: EDQUOT, or any other
    error), up to ``HELD_LINES`` lines are kept (later ones are counted as
    dropped) and stderr (the service journal) says so once. The next line
    logged after the disk has room first writes the held ones, in order and
    with their own times, then a ``log-delayed`` line saying how many were late
    and how many were dropped. Closing writes what is still held to stderr.
    Each line is one ``write(2)`` on an ``O_APPEND`` descriptor, so the worker
    processes of one server append whole lines and logrotate's copytruncate
    keeps working.
    """

    def __init__(self, path: Path, head: str, mode: int = 0o666) -> None:
        super().__init__()
        self.path = path
        self.head = head  # "phoneprov-security": the prefix of this file's lines
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        self._fd: int | None = os.open(path, flags, mode)
        self._held: collections.deque[bytes] = collections.deque()
        self._delayed = 0  # lines held since the first failure
        self._dropped = 0  # lines past HELD_LINES, lost
        self._since = ""  # when writing first failed
        self._error = ""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
        except Exception:
            self.handleError(record)
            return
        if self._held:
            self._drain()
        rest = line if self._held else self._write(line)
        if rest:
            self._hold(rest)

    def _write(self, data: bytes) -> bytes:
        """Write ``data``; return what the file refused (b"" when all of it was written).

        A short write leaves the start of a line in the file; its rest is held."""
        while data and self._fd is not None:
            try:
                data = data[os.write(self._fd, data) :]
            except OSError as error:
                if not self._since:
                    self._since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    self._error = error.strerror or str(error)
                    sys.stderr.write(
                        f"phoneprov: cannot write {self.path}: {self._error}; holding up to "
                        f"{HELD_LINES} lines in memory until it can be written again\n"
                    )
                return data
        return data

    def _hold(self, line: bytes) -> None:
        if len(self._held) >= HELD_LINES:
            self._dropped += 1
            return
        self._held.append(line)
        self._delayed += 1

    def _drain(self) -> None:
        """Write the held lines, then a ``log-delayed`` line; stop at the first refusal."""
        while self._held:
            rest = self._write(self._held[0])
            if rest:
                self._held[0] = rest
                return
            self._held.popleft()
        fields: list[tuple[str, object]] = [
            ("file", self.path.name),
            ("lines", self._delayed),
            ("dropped", self._dropped),
            ("since", self._since),
            ("error", self._error),
        ]
        sys.stderr.write(
            f"phoneprov: {self.path} written again: {self._delayed} held line(s) written "
            f"late, {self._dropped} dropped\n"
        )
        self._delayed = self._dropped = 0
        self._since = self._error = ""
        report = _line(f"{self.head} log-delayed", fields, frozenset({"error"})) + "\n"
        rest = self._write(report.encode())
        if rest:
            self._hold(rest)

    def close(self) -> None:
        """Write what is held (to stderr when the file still refuses it), then close."""
        with self.lock if self.lock is not None else contextlib.nullcontext():
            if self._held:
                self._drain()
            if self._held:
                sys.stderr.write(f"phoneprov: {len(self._held)} line(s) of {self.path} lost:\n")
                for data in self._held:
                    sys.stderr.write(data.decode("utf-8", "replace"))
                self._held.clear()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        super().close()


def configure(log_dir: Path | None, *, console: bool = True) -> list[logging.Handler]:
    """Send access and security lines to files in ``log_dir`` (and the console).

    Returns the handlers added, so a caller (tests) can remove them.
    """
    handlers: list[logging.Handler] = []
    plain = logging.Formatter("%(message)s")
    for name, filename in ((ACCESS_LOGGER, "access.log"), (SECURITY_LOGGER, "security.log")):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            # A plain append-mode file: WatchedFileHandler stats the file for every line,
            # a measurable cost per request. Rotate with logrotate's copytruncate.
            head = "phoneprov-access" if name == ACCESS_LOGGER else "phoneprov-security"
            handler: logging.Handler = HoldingFileHandler(log_dir / filename, head)
            handler.setFormatter(plain)
            logger.addHandler(handler)
            handlers.append(handler)
        if console:
            stream = logging.StreamHandler()
            stream.setFormatter(plain)
            logger.addHandler(stream)
            handlers.append(stream)
    return handlers
