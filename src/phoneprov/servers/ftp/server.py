"""The phone-facing FTP (and explicit FTPS) listener, on pyftpdlib.

Phones ship configured for FTP with the account PlcmSpIp / PlcmSpIp. The
session logic (what each command may do) is in servers/ftp/session.py, the
filesystem view in servers/ftp/filesystem.py, accounts and the FTPS certificate in
servers/ftp/auth.py.

pyftpdlib runs its own IOLoop, not asyncio, so the server runs in a thread of
its own; ``FtpHandle.close`` stops accepting, lets transfers in flight finish
within a grace period, then closes what is left (uploads not finished are
discarded, never half-written).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from phoneprov.config import Settings
from phoneprov.errors import ListenError
from phoneprov.provisioning.services import PhoneServices
from phoneprov.servers.ftp.auth import AccountAuthorizer, tls_context
from phoneprov.servers.ftp.session import PhoneFTPHandler, PhoneFTPSHandler

GRACE = 30.0  # seconds transfers in flight get to finish on stop
POLL = 0.2  # seconds between checks for a stop request
log = logging.getLogger("phoneprov.server")


def handler_class(settings: Settings, services: PhoneServices) -> type[PhoneFTPHandler]:
    """A handler class for one server (pyftpdlib configures handlers by class attributes)."""
    ftp = settings.ftp
    low, high = ftp.passive_ports
    attributes: dict[str, Any] = {
        "services": services,
        "authorizer": AccountAuthorizer(services),
        "passive_ports": list(range(low, high + 1)),
        "masquerade_address": ftp.masquerade_address or None,
    }
    if not ftp.ftps:
        return type("SiteFTPHandler", (PhoneFTPHandler,), attributes)
    attributes["ssl_context"] = tls_context(settings)
    return type("SiteFTPSHandler", (PhoneFTPSHandler,), attributes)


@dataclass
class FtpHandle:
    """A running FTP listener. ``port`` is the bound port (useful with port 0)."""

    port: int
    server: Any
    ioloop: Any
    grace: float = GRACE
    stop_requested: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="phoneprov-ftp", daemon=True)
        self.thread.start()

    async def close(self) -> None:
        """Stop accepting, let transfers finish within ``grace`` seconds, close the rest."""
        self.stop_requested.set()
        if self.thread is not None:
            await asyncio.to_thread(self.thread.join)

    def _run(self) -> None:
        ioloop = self.ioloop
        try:
            while not self.stop_requested.is_set():
                ioloop.loop(timeout=POLL, blocking=False)
            self.server.close()
            deadline = time.monotonic() + self.grace
            while time.monotonic() < deadline:
                channels = list(ioloop.socket_map.values())
                for channel in channels:
                    if isinstance(channel, FTPHandler) and not _busy(channel):
                        channel.close()
                if not any(_busy(channel) for channel in channels):
                    break
                ioloop.loop(timeout=POLL, blocking=False)
        except Exception:
            log.exception("the FTP server stopped on an error")
        finally:
            ioloop.close()


def _busy(channel: Any) -> bool:
    """True for a data connection, or a control connection with a transfer queued."""
    if getattr(channel, "_closed", True):
        return False
    if isinstance(channel, DTPHandler):
        return True
    if isinstance(channel, FTPHandler):
        return any(
            getattr(channel, name, None) is not None
            for name in ("data_channel", "_in_dtp_queue", "_out_dtp_queue")
        )
    return False


def _listen(settings: Settings) -> socket.socket:
    ftp = settings.ftp
    family = socket.AF_INET6 if ":" in ftp.bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ftp.bind, ftp.port))
        sock.listen(512)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise ListenError(
                f"FTP port {ftp.port} is already in use",
                "Stop the other FTP server or choose another port with "
                "--ftp-port (or [ftp] port in phoneprov.toml).",
            ) from None
        if error.errno == errno.EACCES:
            raise ListenError(
                f"FTP port {ftp.port} needs privileges",
                "Run as root, or use a port above 1023 with --ftp-port.",
            ) from None
        raise ListenError(
            f"cannot listen for FTP on {ftp.bind}:{ftp.port}: {error.strerror}",
            "Check [ftp] bind and --ftp-port.",
        ) from None
    return sock


async def start_ftp(settings: Settings, services: PhoneServices) -> FtpHandle:
    """Start the FTP listener in its own thread; raise ListenError or ConfigError."""
    library_log = logging.getLogger("pyftpdlib")
    if not library_log.handlers:
        # Our access and security lines say what matters; pyftpdlib's own per-command
        # lines would repeat them (and it installs a stderr handler if none is set).
        library_log.addHandler(logging.NullHandler())
    if library_log.level == logging.NOTSET:
        library_log.setLevel(logging.WARNING)
    handler = handler_class(settings, services)
    sock = _listen(settings)
    ioloop = IOLoop()
    server = FTPServer(sock, handler, ioloop=ioloop)
    handle = FtpHandle(int(sock.getsockname()[1]), server, ioloop)
    handle.start()
    log.info(
        "FTP%s listening on %s:%d",
        "+FTPS" if settings.ftp.ftps else "",
        settings.ftp.bind,
        handle.port,
    )
    return handle
