"""Prometheus metrics: request counters fed by the access and security logs, fleet gauges
computed from the database at scrape time.

Every phone request on every protocol writes one access line and every refusal
one security line (``provisioning/audit.py``); ``PhoneMetrics`` is the
observer ``Audit`` calls for each, so no listener counts on its own. The
counters live in this process's registry: with ``serve --workers N`` each
worker counts its own requests, and the admin listener (first worker only)
shows that worker's. The fleet gauges come from the database and cover every
worker and node.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from phoneprov.config import Settings
from phoneprov.protocols.polycom import UploadKind
from phoneprov.records import Event, Sighting
from phoneprov.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NOT_SEEN_AFTER = 7 * 86400  # seconds: a phone silent this long counts as not seen
UPLOAD_EVENTS = frozenset({"upload", "upload-held"})  # detail: "<name> <size> bytes"
_UPLOAD_SIZE = re.compile(r" (\d+) bytes$")
STAGES_KEPT = 100_000  # phones whose last boot stage this process remembers
CERTIFICATES = {"ca": "ca.pem", "server-ec": "server-ec.pem", "server-rsa": "server-rsa.pem"}


class PhoneMetrics:
    """The counters; ``Audit`` calls ``access`` and ``refused`` for every line it writes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "phoneprov_requests",
            "Phone requests answered, by protocol, method and status.",
            ("protocol", "method", "status"),
            registry=registry,
        )
        self.refusals = Counter(
            "phoneprov_refusals",
            "Requests refused (security log lines), by protocol and reason: TLS handshake "
            "refusals, digest and FTP authentication failures, policy refusals.",
            ("protocol", "reason"),
            registry=registry,
        )
        self.upload_bytes = Counter(
            "phoneprov_upload_bytes",
            "Bytes of uploads stored (logs, CSRs, overrides), on every protocol.",
            registry=registry,
        )
        self.events = Counter(
            "phoneprov_device_events",
            "Device events recorded, by kind (upload, csr-signed, firmware-loop, ...).",
            ("kind",),
            registry=registry,
        )
        self.stages = Counter(
            "phoneprov_boot_stage_transitions",
            "Phones seen moving from one boot stage to another (by this process).",
            ("previous", "stage"),
            registry=registry,
        )
        self._stage: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    # Audit's observer: one call per access line and per security line.
    def access(self, protocol: str, method: str, status: int | str, size: int) -> None:
        self.requests.labels(protocol, method, str(status)).inc()

    def refused(self, protocol: str, reason: str) -> None:
        self.refusals.labels(protocol, reason).inc()

    # The recorder's watcher: one call per sighting and per device event.
    def sighting(self, sighting: Sighting) -> None:
        if not sighting.stage:
            return
        with self._lock:
            previous = self._stage.get(sighting.mac.value)
            self._stage[sighting.mac.value] = sighting.stage
            self._stage.move_to_end(sighting.mac.value)
            while len(self._stage) > STAGES_KEPT:
                self._stage.popitem(last=False)
        if previous != sighting.stage:
            self.stages.labels(previous or "none", sighting.stage).inc()

    def event(self, event: Event) -> None:
        self.events.labels(event.kind).inc()
        if event.kind in UPLOAD_EVENTS:
            size = _UPLOAD_SIZE.search(event.detail)
            if size:
                self.upload_bytes.inc(int(size.group(1)))


def _days_left(path: Path, now: float) -> float | None:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    return (cert.not_valid_after_utc.timestamp() - now) / 86400.0


def csr_queue(settings: Settings) -> int:
    """CSRs phones uploaded that wait for ``phoneprov ca sign-csr`` (csr_policy manual)."""
    folder = settings.boot_dir / settings.policy.folders[UploadKind.CSR]
    return sum(1 for _ in folder.glob("*.csr")) if folder.is_dir() else 0


class FleetCollector(Collector):
    """Gauges read from the database and the site folder at each scrape."""

    def __init__(self, settings: Settings, store: Store, not_seen_after: float) -> None:
        self.settings = settings
        self.store = store
        self.not_seen_after = not_seen_after

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.time()
        counts = self.store.admin.fleet_counts(now - self.not_seen_after)
        for name, text, label, values in (
            ("phoneprov_phones_by_model", "Phones by model.", "model", counts.by_model),
            ("phoneprov_phones_by_firmware", "Phones by firmware.", "firmware", counts.by_firmware),
            ("phoneprov_phones_by_stage", "Phones by boot stage.", "stage", counts.by_stage),
            ("phoneprov_phones_by_status", "Phones by standing.", "status", counts.by_status),
        ):
            family = GaugeMetricFamily(name, text, labels=[label])
            for value, number in sorted(values.items()):
                family.add_metric([value], number)
            yield family
        stale = GaugeMetricFamily(
            "phoneprov_phones_not_seen",
            "Phones not seen for more than not_seen_seconds (or never).",
            labels=["not_seen_seconds"],
        )
        stale.add_metric([str(int(self.not_seen_after))], counts.not_seen)
        yield stale
        yield GaugeMetricFamily(
            "phoneprov_csr_queue_length",
            "Phone CSRs waiting to be signed.",
            value=csr_queue(self.settings),
        )
        expiry = GaugeMetricFamily(
            "phoneprov_certificate_expiry_days",
            "Days until the site's CA and server certificates expire.",
            labels=["certificate"],
        )
        for label, name in CERTIFICATES.items():
            days = _days_left(self.settings.pki_dir / name, now)
            if days is not None:
                expiry.add_metric([label], days)
        yield expiry


class Metrics:
    """This process's registry: the phone counters and the fleet collector."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.phones = PhoneMetrics(self.registry)

    def watch_fleet(self, settings: Settings, store: Store, not_seen_after: float) -> None:
        self.registry.register(FleetCollector(settings, store, not_seen_after))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
