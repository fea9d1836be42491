"""The phone's address behind a TCP balancer: the PROXY protocol header on the phone listeners.

A connection from an address in ``[cluster] proxy_from`` (HAProxy with
``send-proxy-v2``) must start with a PROXY protocol header
(``protocols.proxyproto``); the address it names is the connection's address from
then on: connection caps, the security log, lockouts, quotas and events use it.
A header from any other address is refused and logged (``reason=proxy-header``):
anyone could otherwise claim any address. A malformed header, or none, from a
balancer is refused the same way.

Two readers: ``address`` for the threaded HTTPS listener (blocking socket reads,
bounded by the listener's header deadline, which shuts the socket), and
``ProxyFirst``, an asyncio protocol in front of the HTTP listener's.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from phoneprov.config_cluster import TrustedAddresses
from phoneprov.protocols import proxyproto
from phoneprov.protocols.proxyproto import ProxyHeader, ProxyHeaderError
from phoneprov.provisioning.audit import Audit
from phoneprov.reasons import Reason
from phoneprov.servers.connections import Admission, Guarded

UNTRUSTED = "from-an-address-not-in-proxy_from"


class ProxyGate:
    """Who may send a PROXY header, and what a refusal writes."""

    def __init__(self, trusted: TrustedAddresses, admission: Admission, audit: Audit) -> None:
        self.trusted = trusted
        self.admission = admission
        self.audit = audit

    def refuse(self, protocol: str, ip: str, detail: str) -> None:
        self.audit.refused(
            protocol=protocol, ip=ip, identity="-", reason=Reason.PROXY_HEADER.value, detail=detail
        )

    def phone_address(self, peer: str, header: ProxyHeader) -> str:
        return peer if header.source is None else header.source[0]

    def address(self, sock: socket.socket, peer: str, protocol: str) -> str | None:
        """The address of the client on ``sock`` (blocking), or None after refusing it.

        The connection was admitted under ``peer`` (a balancer is admitted without its
        per-address cap: ``Admission.admit_address(..., per_address=False)``); on success
        it is counted under the address returned.
        """
        if peer not in self.trusted:
            try:
                first = sock.recv(16, socket.MSG_PEEK)
            except OSError:
                return peer  # the handshake that follows meets the same error and logs it
            if proxyproto.starts_like_header(first):
                self.refuse(protocol, peer, UNTRUSTED)
                return None
            return peer
        try:
            header = read_header(sock)
        except (OSError, ConnectionError, ProxyHeaderError) as error:
            self.refuse(protocol, peer, _why(error))
            return None
        if header is None or header.check:
            return None  # the balancer's health check: it only connects
        phone = self.phone_address(peer, header)
        if phone != peer and not self.admission.move(peer, phone, protocol):
            return None
        return phone

    def factory(
        self, inner: Callable[[], asyncio.Protocol], protocol: str
    ) -> Callable[[], asyncio.Protocol]:
        """An asyncio protocol factory reading the header before ``inner``'s protocol."""
        return lambda: ProxyFirst(self, inner, protocol)


def read_header(sock: socket.socket) -> ProxyHeader | None:
    """Read exactly one PROXY header from a blocking socket, not a byte past it; None
    when the peer closed without sending anything."""
    buffer = b""
    while more := proxyproto.needed(buffer):
        chunk = sock.recv(more)
        if not chunk and not buffer:
            return None
        if not chunk:
            raise ConnectionError("closed before the end of the PROXY header")
        buffer += chunk
    return proxyproto.parse(buffer)


def _why(error: BaseException) -> str:
    if isinstance(error, ProxyHeaderError):
        return f"malformed:{error}"
    return "no-header-from-the-balancer"


class ProxyFirst(asyncio.Protocol):
    """The HTTP listener's protocol: the PROXY header first (from a balancer), then a
    ``Guarded`` protocol admitted under the phone's address.

    From any other address, the first bytes are checked once: a PROXY header is
    refused, anything else goes on to the ``Guarded`` protocol, which then receives the
    connection's bytes directly.
    """

    def __init__(
        self, gate: ProxyGate, inner: Callable[[], asyncio.Protocol], protocol: str
    ) -> None:
        self.gate = gate
        self.make_inner = inner
        self.protocol = protocol
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.peer = "-"
        self.buffer = b""
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "-"
        if self.peer in self.gate.trusted:
            timeout = self.gate.admission.limits.header_timeout
            self.timer = asyncio.get_running_loop().call_later(timeout, self._expired)
        else:
            self._start_inner(None)

    def _start_inner(self, ip: str | None) -> None:
        assert self.transport is not None
        inner = self.inner = self.make_inner()
        if isinstance(inner, Guarded):
            inner.ip = ip
        inner.connection_made(self.transport)

    def _expired(self) -> None:
        self.timer = None
        self.gate.refuse(self.protocol, self.peer, "no-header-from-the-balancer")
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            inner = self.inner
            # Checked once: from here the transport calls the inner protocol directly.
            self.data_received = inner.data_received  # type: ignore[method-assign]
            if proxyproto.starts_like_header(data):
                self.gate.refuse(self.protocol, self.peer, UNTRUSTED)
                assert self.transport is not None
                self.transport.abort()
                return
            inner.data_received(data)
            return
        self._header_bytes(data)

    def _header_bytes(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        try:
            if proxyproto.needed(self.buffer):
                return
            header = proxyproto.parse(self.buffer)
        except ProxyHeaderError as error:
            self._cancel_timer()
            self.gate.refuse(self.protocol, self.peer, _why(error))
            self.transport.abort()
            return
        self._cancel_timer()
        if header.check:
            self.transport.close()  # the balancer's health check: it only connects
            return
        rest, self.buffer = self.buffer[header.length :], b""
        self._start_inner(self.gate.phone_address(self.peer, header))
        assert self.inner is not None
        self.data_received = self.inner.data_received  # type: ignore[method-assign]
        if rest and not self.transport.is_closing():
            self.inner.data_received(rest)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self.inner is not None:
            self.inner.connection_lost(exc)
