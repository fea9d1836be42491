"""Who is asking: a phone's standing, its Principal, and what each request tells about it.

Device standing (known, discovered, pending, blocked, denied) is read from the
store and kept a few seconds, so approvals take effect within ``STATUS_TTL``.
The caches are bounded LRU maps: during a boot storm of 50,000 phones they drop
the least recently used entries, never everything.

A request names its phone by the MAC in its path, its client certificate, its
per-device account, or the ``(SN:...)`` of its User-Agent; one that carries none
(a firmware image, ``sip.ver``) is an unknown phone. The MAC last seen from the
same address never stands in: behind one NAT address every phone of a site
shares it, and borrowing it served one phone another's group firmware and
counted a storm's downloads against one phone as a firmware loop. The address
is recorded with a sighting, as a hint for the administrator, and decides nothing.
A ``(SN:...)`` claim is recorded as a sighting of that MAC, never as the phone
proving who it is: anyone can send that header.
"""

from __future__ import annotations

import threading
import time

from cachetools import TTLCache

from phoneprov.config import Settings
from phoneprov.model import CertKind, DeviceStatus, MacAddress, Principal, PrincipalKind, Protocol
from phoneprov.policy import Owner
from phoneprov.protocols.phonemodels import known_model
from phoneprov.protocols.polycom import UserAgent
from phoneprov.records import OWN_IDENTITY_FLAG, UNVERIFIED_FLAG, DeviceRecord, Event, Sighting
from phoneprov.store import Recorder, Store

OWN_IDENTITIES = (PrincipalKind.DEVICE_CERT, PrincipalKind.DEVICE_ACCOUNT)
STATUS_TTL = 5.0  # seconds a device status is kept (approvals take effect within this)
SEEN_TTL = 600.0  # a phone's uploads follow the config requests it was seen making
CACHE_SIZE = 100_000  # entries per cache: two per phone of a 50,000-phone site
BROWSER_EVENT = "browser"  # a page the phone's XML browser (Microbrowser/...) fetched

_STANDING = {
    DeviceStatus.KNOWN: Owner.ENROLLED,
    DeviceStatus.DISCOVERED: Owner.ENROLLED,
    DeviceStatus.PENDING: Owner.PENDING,
}
_UNKNOWN_STATUS = {
    "allow": DeviceStatus.DISCOVERED,
    "quarantine": DeviceStatus.PENDING,
    "deny": DeviceStatus.DENIED,
}


class Identity:
    """Device standing and sightings, shared by every listener of one process."""

    def __init__(self, settings: Settings, store: Store, recorder: Recorder) -> None:
        self.settings = settings
        self.store = store
        self.recorder = recorder
        self._records: TTLCache[str, tuple[DeviceRecord | None]] = TTLCache(CACHE_SIZE, STATUS_TTL)
        # MACs this process saw ask for files; their record may still be in the
        # recorder's queue (written every half second).
        self._seen: TTLCache[str, bool] = TTLCache(CACHE_SIZE, SEEN_TTL)
        self._proved: TTLCache[str, bool] = TTLCache(CACHE_SIZE, SEEN_TTL)
        self._lock = threading.Lock()  # FTP runs in its own thread

    def _record(self, mac: MacAddress) -> DeviceRecord | None:
        with self._lock:
            cached = self._records.get(mac.value)
        if cached is not None:
            return cached[0]
        record = self.store.get_device(mac)
        with self._lock:
            self._records[mac.value] = (record,)
        return record

    def device_status(self, mac: MacAddress) -> DeviceStatus:
        """The device's standing, applying the enrolment policy to unknown MACs."""
        record = self._record(mac)
        if record is not None:
            return record.status
        return _UNKNOWN_STATUS[self.settings.policy.enrolment]

    def claim(self, principal: Principal, mac: MacAddress, ip: str) -> None:
        """A public request for this phone's own config file: a phone asking, by its MAC.

        Without ``device.prov.tagSerialNo`` a phone's User-Agent carries no MAC, so
        its first request (``<MAC>.cfg``: the per-phone master file it looks for before
        ``000000000000.cfg``, SoundPoint IP Administrator's Guide, appendix A) is how a phone on the
        public account makes itself known. Under ``enrolment = "allow"`` or
        ``"quarantine"`` it is recorded at once (not batched), so that a worker
        process serving its next request sees it in the inventory.
        """
        with self._lock:
            self._seen[mac.value] = True
        status = _UNKNOWN_STATUS[self.settings.policy.enrolment]
        if status is DeviceStatus.DENIED or self._record(mac) is not None:
            return
        self.store.record(
            [Sighting(mac, time.time(), ip, principal.protocol.value, status_if_new=status)], []
        )
        with self._lock:
            self._records.pop(mac.value, None)

    def owner_standing(self, mac: MacAddress) -> Owner:
        """The standing of the phone an upload name belongs to, for the policy table.

        A phone is enrolled when it has a record (known or discovered), or when this
        process saw it ask for files and the enrolment policy admits unknown phones.
        """
        record = self._record(mac)
        if record is None:
            with self._lock:
                seen = mac.value in self._seen
            if not seen:
                return Owner.UNKNOWN
            return _STANDING.get(_UNKNOWN_STATUS[self.settings.policy.enrolment], Owner.UNKNOWN)
        if UNVERIFIED_FLAG in record.flags:
            # Only an anonymous Lync update request named it: nothing a phone proved.
            return Owner.UNKNOWN
        if record.status in (DeviceStatus.KNOWN, DeviceStatus.DISCOVERED):
            with self._lock:
                proved = mac.value in self._proved
            if proved or OWN_IDENTITY_FLAG in record.flags:
                return Owner.OWN_IDENTITY
            return Owner.ENROLLED
        return _STANDING.get(record.status, Owner.UNKNOWN)

    def device_principal(
        self,
        kind: PrincipalKind,
        protocol: Protocol,
        mac: MacAddress,
        *,
        name: str = "",
        cert_kind: CertKind | None = None,
    ) -> Principal:
        """A phone's Principal; a per-device account counts as known."""
        status = (
            DeviceStatus.KNOWN if kind is PrincipalKind.DEVICE_ACCOUNT else self.device_status(mac)
        )
        return Principal(
            kind, protocol, name or mac.value, mac=mac, cert_kind=cert_kind, status=status
        )

    @staticmethod
    def phone_mac(principal: Principal, agent: UserAgent | None) -> MacAddress | None:
        """The phone behind a request: its identity, else its User-Agent's ``(SN:...)``.

        None: an unknown phone. Never the address: see the module's docstring.
        """
        return principal.mac or (agent.mac if agent else None)

    def note(
        self,
        principal: Principal,
        *,
        ip: str,
        agent: UserAgent | None,
        user_agent: str = "",
        path: str = "",
    ) -> None:
        """Record a sighting of the device behind this request (queued, never blocks).

        An unknown phone (no MAC) leaves no record. The XML browser's requests
        (``Microbrowser/...``) are counted apart, as ``browser`` events, and leave
        the phone's provisioning record (stage, firmware, request count) alone.
        """
        mac = self.phone_mac(principal, agent)
        if mac is None or mac.is_wildcard:
            return
        if agent is not None and agent.browser:
            self.recorder.event(Event(time.time(), mac.value, BROWSER_EVENT, path[:200]))
            return
        own = principal.kind in OWN_IDENTITIES and principal.mac == mac
        with self._lock:
            self._seen[mac.value] = True
            if own:
                # At once in this process; other workers read it from the store once the
                # recorder has written it (within STATUS_TTL plus a batch).
                self._proved[mac.value] = True
        status = principal.status or self.device_status(mac)
        if status is DeviceStatus.DENIED:
            return
        stage = agent.stage.value if agent else ""
        self.recorder.sighting(
            Sighting(
                mac=mac,
                time=time.time(),
                ip=ip,
                protocol=principal.protocol.value,
                status_if_new=status,
                model=_model(agent),
                family=agent.family if agent else "",
                firmware=agent.version if agent and stage == "Application" else "",
                updater_version=agent.version if agent and stage == "Updater" else "",
                stage=stage,
                cert_kind=principal.cert_kind.value if principal.cert_kind else "",
                user_agent=user_agent[:256],
                own_identity=own,
            )
        )


def _model(agent: UserAgent | None) -> str:
    """The model a sighting records: the known model's token, else the model as sent."""
    if agent is None:
        return ""
    known = known_model(agent.model)
    return known.token if known else agent.model[:64]
