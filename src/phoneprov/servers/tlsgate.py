"""TLS for the HTTPS listener, with every failed handshake in the security log.

asyncio's own TLS server drops failed handshakes silently (it logs them only in
debug mode), yet "the phone will not connect" is the question administrators
ask most. So the listener accepts plain TCP, pauses reading at once, upgrades
with ``loop.start_tls`` and, on failure, writes one security line naming the
client IP and OpenSSL's reason (no certificate, unknown CA, expired, ...).
The connection is admitted (``servers.connections``) at accept, so the caps and
the header deadline count the handshake too.
"""

from __future__ import annotations

import asyncio
import ssl
from asyncio import sslproto
from collections.abc import Callable

from phoneprov.policy import Reason
from phoneprov.provisioning.audit import Audit
from phoneprov.servers.connections import HANDSHAKE_BACKSTOP, Admission, Guarded, Slot

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
        admission: Admission,
    ) -> None:
        self.app_factory = app_factory
        self.context = context
        self.audit = audit
        self.tasks = tasks
        self.admission = admission

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        slot = self.admission.admit(transport, "https")
        if slot is None:
            return  # over a cap: already closed and reported
        transport.pause_reading()  # nothing is read until start_tls owns the socket
        task = asyncio.get_running_loop().create_task(self._upgrade(transport, slot))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _upgrade(self, transport: asyncio.Transport, slot: Slot) -> None:
        loop = asyncio.get_running_loop()
        app = Guarded(self.app_factory, self.admission, "https", slot)
        try:
            tls = await loop.start_tls(
                transport,
                app,
                self.context,
                server_side=True,
                ssl_handshake_timeout=self.admission.limits.header_timeout + HANDSHAKE_BACKSTOP,
            )
        except (OSError, TimeoutError, ConnectionError, EOFError) as error:
            if not slot.expired:  # an expired slot wrote its own (throttled) line
                self.audit.refused(
                    protocol="https",
                    ip=slot.ip,
                    identity="-",
                    reason=Reason.TLS_HANDSHAKE.value,
                    detail=_reason(error),
                )
            slot.release()
            transport.abort()
            return
        except BaseException:
            slot.release()  # the listener is stopping
            transport.abort()
            raise
        if tls is None:
            slot.release()
            transport.abort()
            return
        app.connection_made(tls)
