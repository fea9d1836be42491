"""Upload quotas: bytes per phone and per address in a time window, kept versions per file.

The public account is shared by every phone, so a size limit per upload does
not stop anyone from filling the disk with many uploads. Each upload counts
against the phone its name belongs to and the address it came from; over
either quota it is refused with HTTP 429 (FTP 552) and one security line. A
site behind one NAT sends every phone's logs from one address, so the address
quota defaults to far more than a boot of every phone uploads
(``[uploads] ip_quota``). Counts live in this process, in fixed windows
(``quota_window`` seconds), in a bounded map.
"""

from __future__ import annotations

import threading
import time

from cachetools import TTLCache

from phoneprov.errors import QuotaError
from phoneprov.model import MacAddress, Principal
from phoneprov.policy import Reason
from phoneprov.protocols.polycom import Resource
from phoneprov.provisioning.diskspace import human
from phoneprov.provisioning.gate import Gate
from phoneprov.records import Event

CACHE_SIZE = 200_000  # counters: a phone and an address each, for 100,000 phones


class Quotas:
    """Counts uploaded bytes per phone and per address; refuses past the quotas."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.settings = gate.settings.uploads
        window = self.settings.quota_window
        self._used: TTLCache[tuple[str, str, int], int] = TTLCache(CACHE_SIZE, 2 * window)
        self._lock = threading.Lock()  # FTP runs in its own thread

    def _window(self, now: float) -> int:
        return int(now // self.settings.quota_window)

    def _retry_after(self, now: float) -> int:
        window = self.settings.quota_window
        return max(1, int((self._window(now) + 1) * window - now))

    def used(self, scope: str, key: str, now: float | None = None) -> int:
        """Bytes counted for ``key`` (a MAC or an address) in the current window."""
        now = time.time() if now is None else now
        with self._lock:
            return self._used.get((scope, key, self._window(now)), 0)

    def check(self, principal: Principal, resource: Resource, ip: str, size: int) -> None:
        """Raise QuotaError (logged) when ``size`` more bytes would pass a quota."""
        now = time.time()
        owner = resource.owner
        if owner is not None:
            used = self.used("mac", owner.value, now)
            if used + size > self.settings.mac_quota:
                self._refuse(
                    principal,
                    resource,
                    ip,
                    f"phone {owner} received {human(used)} of uploads in this window; "
                    f"the quota is {human(self.settings.mac_quota)}",
                    "Raise [uploads] mac_quota, or find why this phone uploads so much.",
                    now,
                )
        used = self.used("ip", ip, now)
        if used + size > self.settings.ip_quota:
            self._refuse(
                principal,
                resource,
                ip,
                f"address {ip} sent {human(used)} of uploads in this window; "
                f"the quota is {human(self.settings.ip_quota)}",
                "Raise [uploads] ip_quota if many phones share this address (NAT).",
                now,
            )

    def refuse_versions(self, principal: Principal, resource: Resource, ip: str) -> None:
        """Refuse an upload whose file keeps more versions than ``versions_max`` allows."""
        self._refuse(
            principal,
            resource,
            ip,
            f"the kept versions of {resource.name} reached {human(self.settings.versions_max)}",
            "Remove old versions from <site>/versions/, or raise [uploads] versions_max.",
            time.time(),
        )

    def charge(self, owner: MacAddress | None, ip: str, size: int) -> None:
        """Count a committed upload against its phone and its address."""
        window = self._window(time.time())
        with self._lock:
            for scope, key in (("mac", owner.value if owner else ""), ("ip", ip)):
                if key:
                    self._used[scope, key, window] = self._used.get((scope, key, window), 0) + size

    def _refuse(
        self,
        principal: Principal,
        resource: Resource,
        ip: str,
        message: str,
        hint: str,
        now: float,
    ) -> None:
        self.gate.audit.refused(
            protocol=principal.protocol.value,
            ip=ip,
            identity=principal.label(),
            reason=Reason.QUOTA_EXCEEDED.value,
            path=resource.path,
            detail=message,
        )
        if resource.owner is not None:
            self.gate.recorder.event(
                Event(now, resource.owner.value, "refused", f"quota-exceeded {resource.path}")
            )
        raise QuotaError(message, hint, self._retry_after(now))
