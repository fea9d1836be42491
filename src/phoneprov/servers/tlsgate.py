"""TLS for the HTTPS listener, with every failed handshake in the security log.

asyncio's own TLS server drops failed handshakes silently (it logs them only in
debug mode), yet "the phone will not connect" is the question administrators
ask most. So the listener accepts plain TCP, pauses reading at once, upgrades
with ``loop.start_tls`` and, on failure, writes one security line naming the
client IP and OpenSSL's reason (no certificate, unknown CA, expired, ...).
"""

from __future__ import annotations

import asyncio
import ssl
from asyncio import sslproto
from collections.abc import Callable

from phoneprov.policy import Reason
from phoneprov.provisioning.audit import Audit

HANDSHAKE_TIMEOUT = 30.0
# asyncio gives every TLS connection a 256 KiB read buffer (SSLProtocol.max_size),
# 250 MB for 1,000 idle phones. A TLS record is at most 16 KiB plus overhead, so
# 16 KiB loses nothing (a larger read takes two calls). The attribute is read
# when a connection is set up.
TLS_READ_BUFFER = 16 * 1024


def limit_tls_buffers() -> None:
    """Shrink asyncio's per-connection TLS read buffer (call before listening)."""
    sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError):
        reason = (error.reason or error.__class__.__name__).lower().replace("_", "-")
        detail = getattr(error, "verify_message", "")
        return f"{reason}: {detail}" if detail else reason
    if isinstance(error, TimeoutError):
        return "handshake-timeout"
    return error.__class__.__name__.lower()


class TlsGate(asyncio.Protocol):
    """Accepts one TCP connection and hands the TLS transport to the app protocol."""

    def __init__(
        self,
        app_factory: Callable[[], asyncio.Protocol],
        context: ssl.SSLContext,
        audit: Audit,
        tasks: set[asyncio.Task[None]],
    ) -> None:
        self.app_factory = app_factory
        self.context = context
        self.audit = audit
        self.tasks = tasks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()  # nothing is read until start_tls owns the socket
        task = asyncio.get_running_loop().create_task(self._upgrade(transport))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        app = self.app_factory()
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if peer else "-"
        try:
            tls = await loop.start_tls(
                transport,
                app,
                self.context,
                server_side=True,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
            )
        except (OSError, TimeoutError, ConnectionError, EOFError) as error:
            self.audit.refused(
                protocol="https",
                ip=ip,
                identity="-",
                reason=Reason.TLS_HANDSHAKE.value,
                detail=_reason(error),
            )
            transport.abort()
            return
        if tls is None:
            transport.abort()
            return
        app.connection_made(tls)
