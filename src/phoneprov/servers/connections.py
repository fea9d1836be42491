"""Admission of phone connections to the HTTP and HTTPS listeners: caps and a deadline.

A slow client (slowloris) opens connections and sends its request a byte at a
time; a server that waits for each byte keeps every such connection, and with
them its file descriptors, until phones can no longer connect. So:

- a connection is admitted only while its address has fewer than
  ``[limits] max_connections_per_address`` open and the process fewer than
  ``max_connections``; past a cap it is closed at once (TCP reset);
- from the moment it is accepted, a connection has ``header_timeout`` seconds
  to finish the TLS handshake (HTTPS) and send the headers of its first
  request. Bytes arriving do not extend the deadline, as they do in servers
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
# asyncio's own TLS handshake timer is only a backstop: the deadline closes the
# connection first and writes the one security line per address.
HANDSHAKE_BACKSTOP = 5.0


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

    def note(self, ip: str, protocol: str, reason: Reason, detail: str) -> None:
        now = self.clock()
        entry = self.quiet.get(ip)
        if entry is not None and now - entry[0] < LOG_EVERY:
            entry[1][reason] += 1
            return
        if entry is not None and entry[1]:
            # Tokens without spaces: the audit would escape each one (docs/security.md).
            unwritten = "/".join(f"{r.value}:{n}" for r, n in sorted(entry[1].items()))
            detail = f"{detail},not-logged-since-last-line:{unwritten}"
        if len(self.quiet) >= MAX_LOGGED_ADDRESSES:
            self.quiet = {a: e for a, e in self.quiet.items() if now - e[0] < LOG_EVERY}
        self.quiet[ip] = (now, Counter())
        self.audit.refused(
            protocol=protocol, ip=ip, identity="-", reason=reason.value, detail=detail
        )


class Slot:
    """One admitted connection: its place in the counts and its deadline."""

    __slots__ = ("admission", "expired", "ip", "protocol", "raw", "released", "timer")

    def __init__(
        self, admission: Admission, ip: str, protocol: str, raw: asyncio.Transport
    ) -> None:
        self.admission = admission
        self.ip = ip
        self.protocol = protocol
        self.raw = raw  # the TCP transport: closing it also ends a TLS session on top
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
    """Connection counts and deadlines for one serve process, shared by HTTP and HTTPS."""

    def __init__(self, limits: LimitsSettings, audit: Audit, max_connections: int) -> None:
        self.limits = limits
        self.max_connections = max_connections
        self.reports = ConnectionReports(audit)
        self.open = 0
        self.by_address: dict[str, int] = {}
        # Transport -> slot until its first request's headers have arrived; the
        # middleware finds the slot by the transport aiohttp hands the request.
        self.waiting: dict[asyncio.BaseTransport, Slot] = {}

    def admit(self, transport: asyncio.Transport, protocol: str) -> Slot | None:
        """A slot for a connection just accepted, or None after closing it (over a cap)."""
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if peer else "-"
        here = self.by_address.get(ip, 0)
        if self.open >= self.max_connections:
            self._refuse(
                transport,
                ip,
                protocol,
                Reason.SERVER_FULL,
                f"open:{self.open},limit:{self.max_connections}",
            )
            return None
        if here >= self.limits.max_connections_per_address:
            self._refuse(
                transport,
                ip,
                protocol,
                Reason.TOO_MANY_CONNECTIONS,
                f"open:{here},limit:{self.limits.max_connections_per_address}",
            )
            return None
        self.open += 1
        self.by_address[ip] = here + 1
        return Slot(self, ip, protocol, transport)

    def _refuse(
        self, transport: asyncio.Transport, ip: str, protocol: str, reason: Reason, why: str
    ) -> None:
        # abort, not close: a reset frees the socket now, without a FIN_WAIT on our side.
        transport.abort()
        self.reports.note(ip, protocol, reason, why)

    def leave(self, ip: str) -> None:
        self.open -= 1
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
        return await handler(request)


class Guarded(asyncio.Protocol):
    """A listener's protocol (aiohttp's request handler) behind an admission slot.

    For HTTP the slot is taken when the connection is made; the HTTPS gate takes it
    at accept, before the handshake, and passes it in.
    """

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        admission: Admission,
        protocol: str,
        slot: Slot | None = None,
    ) -> None:
        self.factory = factory
        self.admission = admission
        self.protocol = protocol
        self.slot = slot
        # Under TLS the handler must exist before connection_made: asyncio's start_tls
        # passes on the request bytes that came with the client's Finished message
        # (TLS 1.3, RFC 8446 §2) as soon as the handshake completes, before the gate
        # can call connection_made.
        self.inner: asyncio.Protocol | None = factory() if slot is not None else None
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # TCP, or TLS on top of it
        if self.slot is None:
            self.slot = self.admission.admit(transport, self.protocol)
            if self.slot is None:
                return
        inner = self.inner = self.inner or self.factory()
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
        if self.slot is not None:
            self.slot.release()
        if self.inner is not None:
            self.inner.connection_lost(exc)
