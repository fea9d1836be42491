"""The edge listener: nginx terminates mutual TLS, phoneprov serves behind it (edge mode).

nginx proxies every phone request to a unix socket (``[edge] socket``, mode 0660),
adding the client certificate it verified (``X-Client-Cert``, URL-encoded PEM), its
verdict (``X-Client-Verify``) and the phone's address (``X-Real-IP``). Those headers
are believed here and nowhere else: the HTTP and HTTPS listeners never read them, and
only nginx's user can reach the socket. The certificate is checked again
(``ForwardedCerts``), then the request goes to the same phone handlers as direct
HTTPS (``PhoneRouter``): the same identities, revocations, expiry policy and logs.
``phoneprov edge nginx-config`` prints the matching nginx configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import ipaddress
import os
import shutil
import socket
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from phoneprov.config import Settings
from phoneprov.errors import ConfigError, ListenError
from phoneprov.provisioning.audit import Audit
from phoneprov.provisioning.forwarded_certs import ForwardedCerts
from phoneprov.provisioning.services import PhoneServices
from phoneprov.reasons import Reason
from phoneprov.servers.http import InFlight, build_app
from phoneprov.servers.lync import LyncHandler
from phoneprov.servers.phonehttp.aio import aiohttp_response, phone_request
from phoneprov.servers.phonehttp.message import PhoneRequest, PhoneResponse
from phoneprov.servers.phonehttp.phone import PhoneHandler
from phoneprov.servers.phonehttp.router import PhoneRouter

CERT_HEADER = "x-client-cert"
VERIFY_HEADER = "x-client-verify"
ADDRESS_HEADER = "x-real-ip"
SOCKET_MODE = 0o660
THREADS = 64
BACKLOG = 1024


def phone_address(value: str) -> str:
    """The phone's address nginx names, or ``-`` for anything that is not an address."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return "-"


class EdgeApp:
    """The aiohttp handler of the edge socket: forwarded identity, then the phone router."""

    def __init__(self, router: PhoneRouter, certs: ForwardedCerts, audit: Audit) -> None:
        self.router = router
        self.certs = certs
        self.audit = audit
        self.workers = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="edge")

    def _answer(self, request: PhoneRequest) -> PhoneResponse:
        forwarded = self.certs.check(
            request.header(CERT_HEADER), request.header(VERIFY_HEADER), dt.datetime.now(dt.UTC)
        )
        if forwarded.refusal:
            self.audit.refused(
                protocol="https",
                ip=request.ip,
                identity="anonymous",
                reason=Reason.TLS_HANDSHAKE.value,
                path=request.path,
                detail=forwarded.refusal,
            )
            return PhoneResponse.text(403, "client certificate refused\n")
        request.peer_cert = forwarded.der
        return self.router.handle(request)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        phone = phone_request(request, loop)
        phone.ip = phone_address(request.headers.get(ADDRESS_HEADER, ""))
        answer = await loop.run_in_executor(self.workers, self._answer, phone)
        return aiohttp_response(answer)


def bind_unix(path: Path, group: str) -> socket.socket:
    """A listening unix socket at ``path``, mode 0660 from the moment it is reachable.

    It is bound in a private folder beside ``path``, given its mode and group, then
    renamed into place. A stale socket a killed server left is replaced; a live one is
    a ListenError.
    """
    if not path.parent.is_dir():
        raise ListenError(
            f"the folder of the edge socket, {path.parent}, does not exist",
            "Create it, owned by phoneprov's user (systemd: RuntimeDirectory=phoneprov).",
        )
    if path.exists() or path.is_symlink():
        if not path.is_socket():
            raise ListenError(
                f"{path} exists and is not a socket",
                "Remove it, or choose another [edge] socket in phoneprov.toml.",
            )
        with socket.socket(socket.AF_UNIX) as probe, contextlib.suppress(OSError):
            probe.connect(str(path))
            raise ListenError(
                f"the edge socket {path} is in use by another server",
                "Stop the other phoneprov, or choose another [edge] socket.",
            )
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".edge-") as private:
            staged = Path(private) / "s"
            sock.bind(str(staged))
            os.chmod(staged, SOCKET_MODE)
            if group:
                try:
                    shutil.chown(staged, group=group)
                except LookupError:
                    raise ConfigError(
                        f"[edge] group {group!r} is not a group on this system",
                        "Name nginx's group (Debian: www-data).",
                    ) from None
            os.replace(staged, path)
    except OSError as error:
        sock.close()
        hint = "Run phoneprov as a user that owns the folder."
        if error.errno == errno.EPERM:
            hint = "phoneprov's user must be a member of [edge] group to give the socket to it."
        raise ListenError(f"cannot make the edge socket {path}: {error.strerror}", hint) from None
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


class EdgeListener:
    """The running edge listener; ``close`` lets requests in flight finish."""

    def __init__(
        self, runner: web.AppRunner, in_flight: InFlight, app: EdgeApp, path: Path, grace: float
    ) -> None:
        self.runner = runner
        self.in_flight = in_flight
        self.app = app
        self.path = path
        self.grace = grace

    async def close(self) -> None:
        for site in list(self.runner.sites):
            await site.stop()
        await self.in_flight.wait_idle(self.grace)
        await self.runner.cleanup()
        self.app.workers.shutdown(wait=False, cancel_futures=True)
        self.path.unlink(missing_ok=True)


async def start_edge(
    settings: Settings, services: PhoneServices, lync: LyncHandler, audit: Audit, grace: float
) -> EdgeListener:
    """Listen on ``[edge] socket``; raise ListenError or ConfigError when it cannot."""
    handler = PhoneHandler(services, secure=True, identifier=services.cert_identifier())
    app = EdgeApp(PhoneRouter(handler, lync), ForwardedCerts.for_site(settings), audit)
    path = Path(settings.edge.socket)
    sock = bind_unix(path, settings.edge.group)
    in_flight = InFlight()
    runner = web.AppRunner(
        build_app(app.handle, in_flight), access_log=None, shutdown_timeout=grace
    )
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return EdgeListener(runner, in_flight, app, path, grace)
