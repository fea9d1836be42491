"""The Lync / Skype for Business device update service, for the HTTP edge to call.

What a CX700 (or another Lync device) asks and what it gets: an update offer
from the catalog for its group, the package files, and the CA chain it must
trust before anything else (``/certsrv``). Every request is recorded (raw body,
offer, outcome); a device asking again and again for an update it never
installs is flagged as a firmware loop. The edge (``servers/lync.py``) parses
HTTP and calls these methods; the blocking ones run off the event loop.

The endpoint is anonymous (a CX700 asks before it trusts anything), so what a
request says is an unverified sighting: it never writes over a record a phone
listener or the administrator wrote, and devices never seen before are
recorded flagged ``unverified``, bounded in rate and count (``[policy]
lync_new_devices_per_minute``, ``lync_unverified_devices``). Past either the
device is still answered; its request is not recorded, and the server log says
so at most once a minute.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cachetools import TTLCache

from phoneprov.config import Settings
from phoneprov.model import DeviceStatus, Principal
from phoneprov.pki.export import export_chain
from phoneprov.policy import Action
from phoneprov.protocols.lync import DeviceRequest, PackageKey, Side, needs_legacy_chain
from phoneprov.protocols.polycom import Resource, ResourceKind, Stage
from phoneprov.provisioning.gate import Gate, Refused
from phoneprov.provisioning.identity import Identity
from phoneprov.provisioning.lync.answer import Answer, decide, is_looping, reported_text
from phoneprov.provisioning.lync.catalog import LOOP_FLAG, Catalog, Package, PackageFile
from phoneprov.provisioning.lync.checks import served_chain
from phoneprov.records import Event, RequestRow, Sighted, Sighting
from phoneprov.store import Recorder, Store

RECENT = 3600.0  # a CX700 fetches the chain right after it asks for updates (seconds)
MODEL_LOOKBACK = 86400.0  # how far back the request log is searched for a device's model
REPORT_EVERY = 60.0  # seconds between server-log lines about devices not recorded
FIELD_MAX = 64  # the device record's model, family and firmware columns
_FAMILY = re.compile(r"^[A-Za-z]+")
log = logging.getLogger("phoneprov.lync")


@dataclass(frozen=True, slots=True)
class Seen:
    """The device that last asked for updates from an address."""

    time: float
    model: str
    mac: str


@dataclass(frozen=True, slots=True)
class PackageDownload:
    """A package file to stream, and the phone it is for (when known)."""

    package: Package
    item: PackageFile
    path: Path
    mac: str


@dataclass(frozen=True, slots=True)
class ChainDownload:
    """The CA chain a device downloads, encoded as it asked."""

    body: bytes
    content_type: str
    legacy: bool


class LyncUpdates:
    """Shared by the HTTP and HTTPS listeners of one process."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        identity: Identity,
        gate: Gate,
        recorder: Recorder,
    ) -> None:
        self.settings = settings
        self.store = store
        self.identity = identity
        self.gate = gate
        self.recorder = recorder
        self._catalog: Catalog | None = None
        self._catalog_checked = 0.0  # time.monotonic() of the last look at its revision
        self._catalog_lock = threading.Lock()
        self._recent: TTLCache[str, Seen] = TTLCache(100_000, RECENT)
        self._lock = threading.Lock()
        self._unrecorded = 0  # requests of devices not recorded since the last report
        self._reported = 0.0

    def catalog(self) -> Catalog:
        """The catalog in memory, as of the last look at its revision in the database.

        The revision is read at most every ``[cluster] catalog_refresh`` seconds, and
        the catalog again only when it moved: a package added or assigned through any
        node is offered within that time, and no device request waits for a query in
        between. When the database cannot be read, the last catalog stays in force.
        """
        now = time.monotonic()
        with self._catalog_lock:
            cached = self._catalog
            if cached is not None and now - self._catalog_checked < (
                self.settings.cluster.catalog_refresh
            ):
                return cached
            self._catalog_checked = now
            repo = self.store.lync_catalog
            try:
                if cached is None or repo.revision() != cached.revision:
                    cached = self._catalog = Catalog.load(repo, self.settings.site_dir)
            except Exception as error:  # devices are answered through a database outage
                if cached is None:
                    raise
                log.warning(
                    "cannot refresh the device update catalog from the database (%s: %s); "
                    "the last one read stays in force",
                    error.__class__.__name__,
                    error,
                )
            return cached

    def recent(self, ip: str) -> Seen | None:
        """The device that asked for updates from ``ip`` within the last RECENT seconds."""
        with self._lock:
            return self._recent.get(ip)

    def malformed(self, ip: str, side: Side, error: str) -> None:
        """Record a request that could not be parsed (on the device last seen at ``ip``)."""
        seen = self.recent(ip)
        detail = f"{ip} {side.value}: {error}"
        mac = seen.mac if seen else ""
        self.recorder.event(Event(time.time(), mac, "ucupdate-malformed", detail))

    def answer(
        self,
        parsed: DeviceRequest,
        side: Side,
        principal: Principal,
        *,
        ip: str,
        path: str,
        body: bytes,
        user_agent: str,
        internal_base: str,
        external_base: str,
    ) -> Answer:
        """What to offer the device, recorded with its request (blocking: run off the loop)."""
        now = time.time()
        mac = parsed.mac
        with self._lock:
            self._recent[ip] = Seen(now, parsed.model, mac.value if mac else "")
        status = self.identity.device_status(mac) if mac is not None else DeviceStatus.DISCOVERED
        asking = dataclasses.replace(principal, status=status)
        offer = Resource(path.lstrip("/"), ResourceKind.LYNC_UPDATE, owner=mac)
        try:
            self.gate.check(asking, Action.CHECK_UPDATE, offer, ip=ip)
        except Refused:
            answer = Answer((), "refused")
        else:
            group = self.store.lync.group_of(mac) if mac else ""
            answer = decide(
                self.catalog(),
                parsed,
                group,
                internal_base=internal_base,
                external_base=external_base,
            )
        row = RequestRow(
            now,
            mac.value if mac else "",
            ip,
            side.value,
            parsed.key.label(),
            reported_text(parsed),
            answer.offered,
            answer.outcome,
            body.decode("utf-8", "replace"),
        )
        sighted = None
        if mac is not None and status is not DeviceStatus.DENIED:
            sighted = self._sight(parsed, principal, status, ip=ip, user_agent=user_agent, now=now)
        if mac is None or (sighted is not None and sighted.recorded):
            self._record(row, parsed, answer)
        elif sighted in (Sighted.OVER_RATE, Sighted.OVER_CAP):
            self._not_recorded(sighted, now)
        if mac is not None and sighted is not None and sighted.recorded:
            self.recorder.event(
                Event(
                    now,
                    mac.value,
                    "ucupdate",
                    f"{side.value} {parsed.key.label()} reported {row.reported or '-'}: "
                    f"{answer.outcome}{' ' + answer.offered if answer.offered else ''}",
                )
            )
        return answer

    def _sight(
        self,
        parsed: DeviceRequest,
        principal: Principal,
        status: DeviceStatus,
        *,
        ip: str,
        user_agent: str,
        now: float,
    ) -> Sighted:
        """Record the device as the request describes it: an unverified sighting.

        Not through ``Identity.note``: that is for the phone listeners, whose
        sightings overwrite a record and count a phone as seen by this process.
        """
        assert parsed.mac is not None
        version = parsed.modules[0].version if parsed.modules else ""
        family = _FAMILY.match(parsed.model)
        policy = self.settings.policy
        return self.store.lync.sighted(
            Sighting(
                mac=parsed.mac,
                time=now,
                ip=ip,
                protocol=principal.protocol.value,
                status_if_new=status,
                model=parsed.model[:FIELD_MAX],
                family=(family.group(0) if family else parsed.device_type)[:FIELD_MAX],
                firmware=version[:FIELD_MAX],
                stage=Stage.APPLICATION.value,
                user_agent=user_agent[:256],
            ),
            per_minute=policy.lync_new_devices_per_minute,
            cap=policy.lync_unverified_devices,
        )

    def _not_recorded(self, sighted: Sighted, now: float) -> None:
        """Count a device left unrecorded by the limits; report at most once a minute."""
        with self._lock:
            self._unrecorded += 1
            if now - self._reported < REPORT_EVERY:
                return
            count, self._unrecorded, self._reported = self._unrecorded, 0, now
        policy = self.settings.policy
        if sighted is Sighted.OVER_CAP:
            why = f"[policy] lync_unverified_devices = {policy.lync_unverified_devices} reached"
            fix = (
                "Remove devices you do not know with `phoneprov device remove`, add the real "
                "ones to the inventory, or raise [policy] lync_unverified_devices."
            )
        else:
            why = (
                f"[policy] lync_new_devices_per_minute = {policy.lync_new_devices_per_minute} "
                "passed"
            )
            fix = (
                "They are recorded when they ask again. Many new devices at once from one "
                "address that is not a phone is someone filling the inventory."
            )
        detail = f"{count} update request(s) of devices never seen were answered, not recorded"
        log.warning("ucupdate: %s: %s. %s", detail, why, fix)
        self.recorder.event(Event(now, "", "ucupdate-unrecorded", f"{detail}: {why}"))

    def _record(self, row: RequestRow, parsed: DeviceRequest, answer: Answer) -> None:
        """Store the request; flag or clear the firmware loop."""
        log = self.store.lync
        log.record(row)
        if parsed.mac is None:
            return
        history = [(r.reported, r.offered) for r in log.recent(parsed.mac, limit=10)]
        if is_looping(history):
            if log.set_flag(parsed.mac, LOOP_FLAG, True):
                self.recorder.event(
                    Event(
                        time.time(),
                        parsed.mac.value,
                        "firmware-loop",
                        f"asked {len(history)} times for {row.offered} "
                        f"and still reports {row.reported or '-'}",
                    )
                )
        elif answer.outcome == "up-to-date":
            log.set_flag(parsed.mac, LOOP_FLAG, False)

    def package_file(
        self, key: PackageKey, version: str, module: str, name: str, *, ip: str
    ) -> PackageDownload | None:
        """The file of a package a device asks for; None when the catalog has no such file."""
        catalog = self.catalog()
        package = catalog.find(key, version, module)
        if package is None:
            return None
        item = package.file(name) if name else package.primary
        if item is None:
            return None
        seen = self.recent(ip)
        return PackageDownload(
            package, item, catalog.object_path(item.sha256), seen.mac if seen else ""
        )

    def downloaded(self, download: PackageDownload, key: PackageKey) -> None:
        """Record a package download on the device it is for."""
        if download.mac:
            self.recorder.event(
                Event(
                    time.time(),
                    download.mac,
                    "ucupdate-download",
                    f"{key.label()} {download.package.version} {download.item.name}",
                )
            )

    def ca_chain(self, *, ip: str, user_agent: str, kind: str, encoding: str) -> ChainDownload:
        """The CA chain for ``/certsrv/certnew.{p7b,cer}`` (blocking: run off the loop).

        A CX700 gets the legacy SHA-1 chain when the site has one; it is known by
        its User-Agent, by the model it just reported from this address, or by
        the request log.
        """
        legacy_device = needs_legacy_chain(user_agent=user_agent)
        seen = self.recent(ip)
        if not legacy_device and seen is not None:
            legacy_device = needs_legacy_chain(seen.model)
        if not legacy_device:
            model = self.store.lync.model_at_ip(ip, time.time() - MODEL_LOOKBACK)
            legacy_device = needs_legacy_chain(model)
        chain, legacy = served_chain(self.settings.pki_dir, legacy_device=legacy_device)
        if kind == "p7b":
            body = export_chain(chain, "p7b" if encoding == "bin" else "p7b-pem")
            ctype = "application/x-pkcs7-certificates"
        else:
            body = export_chain(chain, "pem" if encoding == "b64" else "der")
            ctype = "application/x-x509-ca-cert" if encoding == "b64" else "application/pkix-cert"
        return ChainDownload(body, ctype, legacy)
