"""What each phone of a rollout's wave did, for ``rollout_plan.judge``.

When a wave starts, each of its phones gets a baseline: the image it fetched
last (version, fetch count, first fetch) and the error findings of its
uploaded logs (``<mac>-boot.log``, ``<mac>-app.log``) per kind. Afterwards the
phone is observed from its device record (the application version it reports,
the stage and time of its last request), its fetches of the target image since
the baseline (a firmware loop: ``firmware.LOOP_THRESHOLD`` of them), and the
error kinds whose count rose in its logs since (a log changed after the wave
started is analysed again; each analysis is kept per file size and time).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cachetools import LRUCache

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.protocols.polycom import UploadKind
from phoneprov.protocols.rollout_plan import Observed
from phoneprov.provisioning.logs import analyze_file
from phoneprov.store import Store

LOG_FILES = ((UploadKind.BOOT_LOG, "-boot.log"), (UploadKind.APP_LOG, "-app.log"))
TIMELINE = 10  # timeline entries kept per analysis: only the findings count here
_CACHE: LRUCache[tuple[str, int, int], dict[str, int]] = LRUCache(4096)
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Baseline:
    """A phone when its wave started: its last image fetch and its log errors per kind."""

    version: str = ""
    fetches: int = 0
    first: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "fetches": self.fetches,
                "first": self.first,
                "errors": self.errors,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Baseline:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            str(data["version"]), int(data["fetches"]), float(data["first"]), dict(data["errors"])
        )


def log_paths(settings: Settings, mac: str) -> list[Path]:
    """The phone's uploaded logs that exist."""
    folders = settings.policy.folders
    paths = [settings.boot_dir / folders[kind] / f"{mac}{suffix}" for kind, suffix in LOG_FILES]
    return [path for path in paths if path.is_file()]


def error_counts(paths: Sequence[Path]) -> dict[str, int]:
    """Occurrences of each error finding kind in these logs (unreadable ones count nothing)."""
    total: dict[str, int] = {}
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        key = (str(path), st.st_size, st.st_mtime_ns)
        with _CACHE_LOCK:
            found = _CACHE.get(key)
        if found is None:
            try:
                report = analyze_file(path, TIMELINE).report
            except InputError:  # gone meanwhile, or not a text log: no findings to judge
                continue
            found = {}
            for finding in report.findings:
                if finding.severity == "error":
                    found[str(finding.kind)] = found.get(str(finding.kind), 0) + max(
                        finding.occurrences, 1
                    )
            with _CACHE_LOCK:
                _CACHE[key] = found
        for kind, count in found.items():
            total[kind] = total.get(kind, 0) + count
    return total


def baselines(store: Store, settings: Settings, macs: Sequence[str]) -> dict[str, Baseline]:
    """Each phone's baseline, now."""
    downloads = store.fleet_actions.download_counts(macs)
    result: dict[str, Baseline] = {}
    for mac in macs:
        version, fetches, first = downloads.get(mac, ("", 0, 0.0))
        result[mac] = Baseline(version, fetches, first, error_counts(log_paths(settings, mac)))
    return result


def observe(
    store: Store,
    settings: Settings,
    macs: Sequence[str],
    target: str,
    started: float,
    bases: dict[str, Baseline],
) -> dict[str, Observed]:
    """What each phone did since its baseline was taken (at ``started``)."""
    downloads = store.fleet_actions.download_counts(macs)
    seen: dict[str, Observed] = {}
    for mac in macs:
        base = bases.get(mac, Baseline())
        record = store.get_device(MacAddress(mac))
        version, fetches, first = downloads.get(mac, ("", 0, 0.0))
        if version != target:
            loop = 0
        elif base.version == version and base.first == first:
            loop = fetches - base.fetches
        else:
            loop = fetches
        paths = log_paths(settings, mac)
        changed = [p for p in paths if _mtime(p) > started]
        errors = error_counts(paths) if changed else {}
        new = tuple(sorted(k for k, n in errors.items() if n > base.errors.get(k, 0)))
        seen[mac] = Observed(
            reported=record.firmware if record else "",
            stage=record.stage if record else "",
            last_seen=record.last_seen if record else None,
            loop_fetches=loop,
            new_errors=new,
        )
    return seen


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
