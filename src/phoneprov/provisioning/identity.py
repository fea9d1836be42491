"""Who is asking: a phone's standing, its Principal, and what each request tells about it.

Device standing (known, discovered, pending, blocked, denied) is read from the
store and kept a few seconds, so approvals take effect within ``STATUS_TTL``.
Firmware requests carry no MAC: the MAC last seen from the same address stands
in for ``IP_MAC_TTL``. Both caches are bounded LRU maps: during a boot storm of
50,000 phones they drop the least recently used entries, never everything.
"""

from __future__ import annotations

import threading
import time

from cachetools import TTLCache

from phoneprov.config import Settings
from phoneprov.model import CertKind, DeviceStatus, MacAddress, Principal, PrincipalKind, Protocol
from phoneprov.protocols.polycom import UserAgent
from phoneprov.records import Sighting
from phoneprov.store import Recorder, Store

STATUS_TTL = 5.0  # seconds a device status is kept (approvals take effect within this)
IP_MAC_TTL = 600.0  # a phone's firmware fetch follows its config requests within minutes
CACHE_SIZE = 100_000  # entries per cache: two per phone of a 50,000-phone site

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
        self._status: TTLCache[str, DeviceStatus] = TTLCache(CACHE_SIZE, STATUS_TTL)
        self._ip_macs: TTLCache[str, MacAddress] = TTLCache(CACHE_SIZE, IP_MAC_TTL)
        self._lock = threading.Lock()  # FTP runs in its own thread

    def device_status(self, mac: MacAddress) -> DeviceStatus:
        """The device's standing, applying the enrolment policy to unknown MACs."""
        with self._lock:
            cached = self._status.get(mac.value)
        if cached is not None:
            return cached
        record = self.store.get_device(mac)
        status = (
            record.status if record is not None else _UNKNOWN_STATUS[self.settings.policy.enrolment]
        )
        with self._lock:
            self._status[mac.value] = status
        return status

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

    def mac_for_ip(self, ip: str) -> MacAddress | None:
        """The MAC last seen from ``ip`` within IP_MAC_TTL, if any."""
        with self._lock:
            return self._ip_macs.get(ip)

    def phone_mac(
        self, principal: Principal, agent: UserAgent | None, ip: str
    ) -> MacAddress | None:
        """The phone behind a request: its identity, its User-Agent, or its address."""
        return principal.mac or (agent.mac if agent else None) or self.mac_for_ip(ip)

    def note(
        self,
        principal: Principal,
        *,
        ip: str,
        agent: UserAgent | None,
        user_agent: str = "",
    ) -> None:
        """Record a sighting of the device behind this request (queued, never blocks)."""
        mac = self.phone_mac(principal, agent, ip)
        if mac is None or mac.is_wildcard:
            return
        with self._lock:
            self._ip_macs[ip] = mac
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
                model=agent.model_token if agent else "",
                family=agent.family if agent else "",
                firmware=agent.version if agent and stage == "Application" else "",
                updater_version=agent.version if agent and stage == "Updater" else "",
                stage=stage,
                cert_kind=principal.cert_kind.value if principal.cert_kind else "",
                user_agent=user_agent[:256],
            )
        )
