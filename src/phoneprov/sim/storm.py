"""Boot storm: many simulated phones booting at once against one boot server.

Each phone runs the full plan with a new connection (and TLS handshake) per
file, as after a power cut (SPEC §2.6). Bounded in count (``phones``) and time
(``max_seconds``: boots still running then are cancelled and counted).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from phoneprov.model import MacAddress
from phoneprov.sim.phone import Phone
from phoneprov.sim.runner import BootOptions, BootReport, StageChoice, boot


@dataclass(frozen=True, slots=True)
class StormPhone:
    phone: Phone
    certfile: str | None = None
    keyfile: str | None = None


@dataclass(frozen=True)
class StormOptions:
    url: str
    phones: Sequence[StormPhone]
    concurrency: int = 50
    stage: StageChoice = "both"
    cafile: str | None = None
    user: str | None = None
    password: str | None = None
    app_url: str | None = None
    max_seconds: float = 600.0
    attempts: int = 3
    timeout: float = 30.0
    # Boots started per second (None: as fast as ``concurrency`` allows): an open load
    # below the server's capacity, to read its latency there.
    rate: float | None = None


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class StormResult:
    planned: int
    concurrency: int
    seconds: float = 0.0
    boots_ok: int = 0
    boots_failed: int = 0
    warnings: int = 0
    requests: int = 0
    failed_requests: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # failed boots by reason
    request_errors: Counter[str] = field(default_factory=Counter)  # failed attempts by reason

    @property
    def finished(self) -> int:
        return self.boots_ok + self.boots_failed

    @property
    def not_finished(self) -> int:
        return self.planned - self.finished

    def add(self, report: BootReport) -> None:
        """Fold one boot into the totals (its trace is not kept)."""
        if report.ok:
            self.boots_ok += 1
        else:
            self.boots_failed += 1
            for reason in sorted({note.reason for note in report.failures} or {"no-master"}):
                self.failures[reason] += 1
        self.warnings += len(report.warnings)
        for record in report.records:
            self.requests += 1
            self.latencies.append(record.seconds)
            if record.status == 0:
                self.failed_requests += 1
                self.request_errors[record.error.split(":", 1)[0] or "error"] += 1

    def summary(self) -> dict[str, Any]:
        """Stable figures: rates, latency percentiles (ms), failures by reason."""
        ordered = sorted(self.latencies)
        wall = self.seconds or 1e-9
        failures = dict(self.failures)
        if self.not_finished:
            failures["not-finished-in-time"] = self.not_finished
        return {
            "phones": self.planned,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 3),
            "boots_ok": self.boots_ok,
            "boots_failed": self.boots_failed + self.not_finished,
            "boots_per_second": round(self.boots_ok / wall, 2),
            "requests": self.requests,
            "requests_per_second": round(self.requests / wall, 1),
            "failed_requests": self.failed_requests,
            "warnings": self.warnings,
            "latency_ms": {
                "p50": round(percentile(ordered, 0.50) * 1000, 2),
                "p95": round(percentile(ordered, 0.95) * 1000, 2),
                "p99": round(percentile(ordered, 0.99) * 1000, 2),
                "max": round((ordered[-1] if ordered else 0.0) * 1000, 2),
            },
            "failures": failures,
            "request_errors": dict(self.request_errors),
        }


def storm_macs(first: MacAddress, count: int) -> list[MacAddress]:
    """``count`` consecutive MACs from ``first`` (phones of one delivery)."""
    base = int(first.value, 16)
    return [MacAddress(f"{(base + i) % (1 << 48):012x}") for i in range(count)]


async def run_storm(
    options: StormOptions, on_boot: Callable[[BootReport], None] | None = None
) -> StormResult:
    """Boot every phone, ``concurrency`` at a time, within ``max_seconds``."""
    result = StormResult(len(options.phones), options.concurrency)
    queue = enumerate(options.phones)  # shared by the workers: each boot is started once
    loop = asyncio.get_running_loop()
    first = loop.time()

    async def worker() -> None:
        for number, member in queue:
            if options.rate:
                await asyncio.sleep(first + number / options.rate - loop.time())
            report = await boot(
                BootOptions(
                    url=options.url,
                    phone=member.phone,
                    stage=options.stage,
                    user=options.user,
                    password=options.password,
                    cafile=options.cafile,
                    certfile=member.certfile,
                    keyfile=member.keyfile,
                    app_url=options.app_url,
                    attempts=options.attempts,
                    timeout=options.timeout,
                )
            )
            result.add(report)
            if on_boot is not None:
                on_boot(report)

    started = time.perf_counter()
    workers = [asyncio.create_task(worker()) for _ in range(max(1, options.concurrency))]
    try:
        async with asyncio.timeout(options.max_seconds):
            await asyncio.gather(*workers)
    except TimeoutError:
        pass
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        result.seconds = time.perf_counter() - started
    return result
