"""Admission of phone connections to the HTTP and HTTPS listeners: caps and a deadline.

A slow client (slowloris) opens connections and sends its request a byte at a
time; a server that waits for each byte keeps every such connection, and with
them its file descriptors, until phones can no longer connect. So:

- a connection is admitted only while its address has fewer than
  ``[limits] max_connections_per_address`` open and the process fewer than
  ``max_connections``; past a cap it is closed at once (TCP reset);
- from the moment it is accepted, a connection has ``header_timeout`` seconds
  to finish the TLS handshake (HTTPS, whose threaded listener keeps the same
  deadline with its own watchdog: ``servers.phonehttp``) and send the headers
  of its first request. Bytes arriving do not extend the deadline, as they do in servers
  that only time out idle reads. Later requests on a kept-alive connection get
  as long from the end of the previous response (aiohttp's keep-alive timer,
  which closes a connection still waiting for a whole request).

Refusals and expiries go to the security log at most once per address per
``LOG_EVERY`` seconds; the next line for that address counts what was not
written, so a flood of thousands of connections writes a few lines.

The cost per request is one dictionary lookup (the middleware); per connection,
a timer and two counter updates.
"""

from __future__ import annotations

import asyncio
import resource
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

from phoneprov.config import LimitsSettings
from phoneprov.policy import Reason
from phoneprov.provisioning.audit import Audit

LOG_EVERY = 60.0  # seconds between two security lines about one address
MAX_LOGGED_ADDRESSES = 10000  # addresses remembered for LOG_EVERY; older ones are dropped
# Descriptors kept for everything but idle phone connections: the database, log
# files, FTP and TFTP sockets, and the files being sent.
FD_RESERVE = 1024


def connection_budget(wanted: int) -> tuple[int, str]:
    """The global cap the open-file limit allows, and a warning when it is below ``wanted``.

    Raises the soft RLIMIT_NOFILE towards the hard limit when it is too low for
    ``wanted`` connections (systemd and login shells start services at 1024): a cap
    above the limit would not hold, and accept() failing with EMFILE stops every
    phone, not only the flood's. Returns (cap, "") when the limit suffices.
    """
    need = wanted + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        raised = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass  # not allowed here: the cap below follows the limit we have
    if soft == resource.RLIM_INFINITY or soft >= need:
        return wanted, ""
    cap = max(1, soft - FD_RESERVE)
    return cap, (
        f"[limits] max_connections = {wanted}, but the open-file limit is {soft}: at most "
        f"{cap} connections will be accepted. Raise it (systemd: LimitNOFILE={need}; "
        f"shell: ulimit -n {need}) or lower max_connections."
    )


class ConnectionReports:
    """Security lines about connections, at most one per address per LOG_EVERY seconds."""

    def __init__(self, audit: Audit, clock: Callable[[], float] = time.monotonic) -> None:
        self.audit = audit
        self.clock = clock
        self.quiet: dict[str, tuple[float, Counter[Reason]]] = {}
        self._lock = threading.Lock()  # the HTTPS listener's threads report too

    def note(self, ip: str, protocol: str, reason: Reason, detail: str) -> None:
        with self._lock:
            line = self._line(ip, reason, detail)
        if line is not None:
            self.audit.refused(
                protocol=protocol, ip=ip, identity="-", reason=reason.value, detail=line
            )

    def _line(self, ip: str, reason: Reason, detail: str) -> str | None:
        """The detail of the line to write now, or None (counted for the next one)."""
        now = self.clock()
        entry = self.quiet.get(ip)
        if entry is not None and now - entry[0] < LOG_EVERY:
            entry[1][reason] += 1
            return None
        if entry is not None and entry[1]:
            # Tokens without spaces: the audit would escape each one (docs/security.md).
            unwritten = "/".join(f"{r.value}:{n}" for r, n in sorted(entry[1].items()))
            detail = f"{detail},not-logged-since-last-line:{unwritten}"
        if len(self.quiet) >= MAX_LOGGED_ADDRESSES:
            self.quiet = {a: e for a, e in self.quiet.items() if now - e[0] < LOG_EVERY}
        self.quiet[ip] = (now, Counter())
        return detail


class Slot:
    """One admitted connection: its place in the counts and its deadline."""

    __slots__ = ("admission", "expired", "ip", "protocol", "raw", "released", "timer")

    def __init__(
        self, admission: Admission, ip: str, protocol: str, raw: asyncio.Transport
    ) -> None:
        self.admission = admission
        self.ip = ip
        self.protocol = protocol
        self.raw = raw
        self.expired = False
        self.released = False
        loop = asyncio.get_running_loop()
        self.timer: asyncio.TimerHandle | None = loop.call_at(
            loop.time() + admission.limits.header_timeout, self._expire
        )

    def headers_done(self) -> None:
        """The first request's headers arrived in time: the deadline no longer applies."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expire(self) -> None:
        self.timer = None
        if self.released:
            return
        self.expired = True
        timeout = self.admission.limits.header_timeout
        self.admission.reports.note(
            self.ip, self.protocol, Reason.SLOW_CLIENT, f"no-request-headers-after:{timeout:g}s"
        )
        self.raw.abort()

    def release(self) -> None:
        """The connection ended: free its place (idempotent)."""
        if self.released:
            return
        self.released = True
        self.headers_done()
        self.admission.leave(self.ip)


class Admission:
    """Connection counts and deadlines for one serve process, shared by HTTP (on the event
    loop) and HTTPS (in its own threads: the counts are changed under a lock)."""

    def __init__(self, limits: LimitsSettings, audit: Audit, max_connections: int) -> None:
        self.limits = limits
        self.max_connections = max_connections
        self.reports = ConnectionReports(audit)
        self.open = 0
        self.by_address: dict[str, int] = {}
        # Transport -> slot until its first request's headers have arrived; the
        # middleware finds the slot by the transport aiohttp hands the request.
        self.waiting: dict[asyncio.BaseTransport, Slot] = {}
        # Transport -> the phone's address a balancer's PROXY header named (servers.proxied).
        self.remotes: dict[asyncio.BaseTransport, str] = {}
        self._lock = threading.Lock()

    def admit(
        self, transport: asyncio.Transport, protocol: str, ip: str | None = None
    ) -> Slot | None:
        """A slot for a connection just accepted, or None after closing it (over a cap).

        ``ip``: the client's address when it is not the peer's (a PROXY header's)."""
        proxied = ip is not None
        if ip is None:
            peer = transport.get_extra_info("peername")
            ip = str(peer[0]) if peer else "-"
        if not self.admit_address(ip, protocol, transport.abort):
            return None
        if proxied:
            self.remotes[transport] = ip
        return Slot(self, ip, protocol, transport)

    def admit_address(
        self,
        ip: str,
        protocol: str,
        refuse: Callable[[], None] | None = None,
        *,
        per_address: bool = True,
    ) -> bool:
        """Count a connection from ``ip`` in, or refuse it (False) when over a cap: then
        ``refuse`` closes it (with a reset: the socket is freed now, without a FIN_WAIT on
        our side) and the refusal is reported. ``leave`` counts it out. ``per_address``
        False: a balancer's connection, whose own cap is checked by ``move``."""
        with self._lock:
            here = self.by_address.get(ip, 0)
            if self.open >= self.max_connections:
                reason = Reason.SERVER_FULL
                why = f"open:{self.open},limit:{self.max_connections}"
            elif per_address and here >= self.limits.max_connections_per_address:
                reason = Reason.TOO_MANY_CONNECTIONS
                why = f"open:{here},limit:{self.limits.max_connections_per_address}"
            else:
                self.open += 1
                self.by_address[ip] = here + 1
                return True
        if refuse is not None:
            refuse()
        self.reports.note(ip, protocol, reason, why)
        return False

    def move(self, old: str, new: str, protocol: str) -> bool:
        """Count an admitted connection under ``new`` (the phone a balancer's PROXY header
        named) instead of ``old``; False when ``new`` is over its cap (reported; the
        connection stays counted under ``old`` until ``leave(old)``)."""
        with self._lock:
            here = self.by_address.get(new, 0)
            if here < self.limits.max_connections_per_address:
                self.by_address[new] = here + 1
                self._forget(old)
                return True
        why = f"open:{here},limit:{self.limits.max_connections_per_address}"
        self.reports.note(new, protocol, Reason.TOO_MANY_CONNECTIONS, why)
        return False

    def leave(self, ip: str) -> None:
        with self._lock:
            self.open -= 1
            self._forget(ip)

    def _forget(self, ip: str) -> None:
        left = self.by_address[ip] - 1
        if left:
            self.by_address[ip] = left
        else:
            del self.by_address[ip]

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Called once a request's headers are parsed: the connection met its deadline."""
        if self.waiting and request.transport is not None:
            slot = self.waiting.pop(request.transport, None)
            if slot is not None:
                slot.headers_done()
        if self.remotes and request.transport is not None:
            phone = self.remotes.get(request.transport)
            if phone is not None:
                request = request.clone(remote=phone)
        return await handler(request)


class Guarded(asyncio.Protocol):
    """A listener's protocol (aiohttp's request handler) behind an admission slot,
    taken when the connection is made."""

    def __init__(
        self, factory: Callable[[], asyncio.Protocol], admission: Admission, protocol: str
    ) -> None:
        self.factory = factory
        self.admission = admission
        self.protocol = protocol
        self.slot: Slot | None = None
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.BaseTransport | None = None
        self.ip: str | None = None  # the phone's address, when a PROXY header named it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.slot = self.admission.admit(transport, self.protocol, self.ip)
        if self.slot is None:
            return
        inner = self.inner = self.factory()
        self.transport = transport
        self.admission.waiting[transport] = self.slot
        # Transports look these up on the protocol for every event: binding the inner
        # handler's methods here keeps the wrapper out of the per-read path.
        self.data_received = inner.data_received  # type: ignore[method-assign]
        self.eof_received = inner.eof_received  # type: ignore[method-assign]
        self.pause_writing = inner.pause_writing  # type: ignore[method-assign]
        self.resume_writing = inner.resume_writing  # type: ignore[method-assign]
        inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.admission.waiting.pop(self.transport, None)
            self.admission.remotes.pop(self.transport, None)
        if self.slot is not None:
            self.slot.release()
        if self.inner is not None:
            self.inner.connection_lost(exc)
