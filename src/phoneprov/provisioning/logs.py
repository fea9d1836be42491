"""Read phone logs from a file or from a phone's uploads, and analyse them.

The file is streamed line by line with a bounded line length, so a 1 GB log or
a file without newlines costs the same memory as a small one; the parsing
and the diagnosis are ``protocols.phonelog``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from phoneprov.config import load_settings
from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.protocols.phonelog.parser import SNIFF_BYTES, LogAnalyzer, LogReport, binary_reason
from phoneprov.protocols.polycom import UploadKind

# A phone log line is a few hundred bytes; a longer "line" is garbage or a
# file without newlines. The rest of such a line is skipped, not buffered.
MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class AnalyzedLog:
    """One log file and its report."""

    path: Path
    report: LogReport


def analyze_stream(stream: BinaryIO, timeline_limit: int) -> LogReport:
    """Analyse a binary stream positioned at its start; return the report.

    Raises nothing on content: unknown or garbled lines are kept in the timeline.
    """
    analyzer = LogAnalyzer(timeline_limit)
    complete = True
    while True:
        raw = stream.readline(MAX_LINE_BYTES)
        if not raw:
            break
        cut = False
        if not raw.endswith(b"\n") and len(raw) == MAX_LINE_BYTES:
            cut = _skip_rest_of_line(stream)
        elif not raw.endswith(b"\n"):
            complete = False
        analyzer.feed_line(raw, cut=cut)
    return analyzer.finish(complete=complete)


def _skip_rest_of_line(stream: BinaryIO) -> bool:
    """Consume the remainder of an over-long line in bounded chunks; return True."""
    while True:
        chunk = stream.readline(MAX_LINE_BYTES)
        if not chunk or chunk.endswith(b"\n"):
            return True


def analyze_file(path: Path, timeline_limit: int) -> AnalyzedLog:
    """Analyse one log file.

    Raises InputError (exit 2) when the file is missing, unreadable, a
    directory, or binary (a core dump or firmware image, not a log).
    """
    try:
        with path.open("rb") as stream:
            reason = binary_reason(stream.read(SNIFF_BYTES))
            if reason is not None:
                raise InputError(
                    f"{path} is not a phone log: {reason}",
                    "Give a text log: <mac>-app.log or <mac>-boot.log from the boot server's "
                    "logs folder, or a serial console capture saved as text. Core files "
                    "(<mac>-core.gz) and firmware images cannot be analysed; a capture saved "
                    'as UTF-16 (Windows "Unicode") must be saved again as UTF-8.',
                )
            stream.seek(0)
            return AnalyzedLog(path, analyze_stream(stream, timeline_limit))
    except IsADirectoryError:
        raise InputError(
            f"{path} is a directory, not a log file",
            "Name a log file inside it, or give a MAC address with --site.",
        ) from None
    except FileNotFoundError:
        raise InputError(
            f"no such log file: {path}",
            "Check the path, or give the phone's MAC address (e.g. 0004f2abcdef) with --site "
            "to read the logs it uploaded.",
        ) from None
    except PermissionError:
        raise InputError(
            f"cannot read {path}: permission denied",
            "Run as a user that may read it, or copy the file somewhere readable.",
        ) from None


def uploaded_logs(site: Path, mac: MacAddress) -> list[Path]:
    """Return the phone's uploaded logs (boot log first, then application log).

    Raises ConfigError when ``site`` is not a phoneprov site, and InputError
    (exit 2) naming every path looked at when the phone uploaded no log.
    """
    settings = load_settings(site)
    candidates = [
        settings.boot_dir / settings.policy.folders[UploadKind.BOOT_LOG] / f"{mac}-boot.log",
        settings.boot_dir / settings.policy.folders[UploadKind.APP_LOG] / f"{mac}-app.log",
    ]
    found = [path for path in candidates if path.is_file()]
    if not found:
        looked = ", ".join(str(path) for path in candidates)
        raise InputError(
            f"phone {mac} has uploaded no logs to site {site} (looked in {looked})",
            "Phones upload <mac>-boot.log at the end of the Updater stage and <mac>-app.log "
            "after the application starts: reboot the phone (or wait for it to boot) and check "
            "that it reaches this server; or analyse a log file by giving its path.",
        )
    return found


@dataclass(frozen=True, slots=True)
class Analysis:
    """What ``analyze_target`` read: one file, or the uploaded logs of one phone."""

    logs: list[AnalyzedLog]
    mac: MacAddress | None = None

    @property
    def has_errors(self) -> bool:
        return any(log.report.has_errors for log in self.logs)

    def to_json(self, *, timeline: bool = False) -> dict[str, Any]:
        """Return ``{"findings": [...], "summary": {...}}`` (and ``"timeline": [...]``
        when asked for: the kept entries, stamps decoded).

        For a file, the summary names it in ``file``. For a MAC, each finding and
        timeline entry names its ``log`` and the summary lists each file's counts
        in ``files``.
        """
        if self.mac is None:
            data = self.logs[0].report.to_json(timeline=timeline)
            data["summary"] = {"file": str(self.logs[0].path), **data["summary"]}
            return data
        findings: list[dict[str, Any]] = []
        files: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        for log in self.logs:
            for finding in log.report.findings:
                findings.append({**finding.to_json(), "log": log.path.name})
            files.append({"file": str(log.path), **log.report.summary})
            if timeline:
                entries.extend({**e.to_json(), "log": log.path.name} for e in log.report.timeline)
        summary: dict[str, Any] = {
            "mac": str(self.mac),
            "errors": sum(f["errors"] for f in files),
            "warnings": sum(f["warnings"] for f in files),
            "infos": sum(f["infos"] for f in files),
            "files": files,
        }
        data = {"findings": findings, "summary": summary}
        if timeline:
            data["timeline"] = entries
        return data


def analyze_target(target: str, site: Path, timeline_limit: int) -> Analysis:
    """Analyse ``target``: an existing file path, else a MAC address whose uploads are read.

    Raises InputError when the target is neither a readable log nor a MAC with
    uploaded logs, and ConfigError when a MAC is given but ``site`` is no site.
    """
    path = Path(target)
    if path.exists():
        return Analysis([analyze_file(path, timeline_limit)])
    mac = _mac_or_none(target)
    if mac is None:
        raise InputError(
            f"no such log file: {target} (and it is not a MAC address)",
            "Give the path of a log file, or a phone's MAC address (e.g. 0004f2abcdef) with "
            "--site to read the logs it uploaded.",
        )
    found = uploaded_logs(site, mac)
    return Analysis([analyze_file(path, timeline_limit) for path in found], mac)


def _mac_or_none(text: str) -> MacAddress | None:
    try:
        return MacAddress.parse(text)
    except InputError:
        return None
