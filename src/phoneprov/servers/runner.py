"""Start and stop every listener of a site: HTTP, HTTPS, FTP, TFTP.

One process runs all listeners on one event loop; ``--workers N`` forks N such
processes sharing the ports with SO_REUSEPORT. SIGHUP reloads certificates and
settings (servers/reload.py). SIGINT/SIGTERM stop accepting,
let requests in flight (uploads included) finish for up to ``GRACE`` seconds,
then flush the device records. Before any listener starts, the temporary files
of uploads a killed server left behind are removed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import multiprocessing
import os
import queue
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from phoneprov.config import Settings
from phoneprov.config_cluster import TrustedAddresses
from phoneprov.errors import ListenError, PhoneprovError
from phoneprov.provisioning.audit import Audit
from phoneprov.provisioning.rollouts import RolloutTicker
from phoneprov.provisioning.services import PhoneServices, open_phone_services
from phoneprov.provisioning.uploads import sweep_partial_uploads
from phoneprov.servers.admin.listener import start_admin
from phoneprov.servers.connections import Admission, Guarded, connection_budget
from phoneprov.servers.edge import start_edge
from phoneprov.servers.ftp.server import start_ftp
from phoneprov.servers.http import InFlight, build_app
from phoneprov.servers.lync import LyncHandler
from phoneprov.servers.phonehttp.aio import AioPhoneApp
from phoneprov.servers.phonehttp.listener import HttpsListener
from phoneprov.servers.phonehttp.phone import PhoneHandler
from phoneprov.servers.phonehttp.router import PhoneRouter
from phoneprov.servers.proxied import ProxyGate
from phoneprov.servers.reload import Reloader, TlsContexts
from phoneprov.servers.tftp import start_tftp
from phoneprov.servers.tls import server_context

GRACE = 30.0
SWEEP_SHOWN = 10  # partial uploads named in the start-up line; the rest are counted
# Connections the kernel queues before accept: a site's phones booting at once
# (asyncio's default is 100, aiohttp's 128).
BACKLOG = 1024
log = logging.getLogger("phoneprov.server")


class Closable(Protocol):
    async def close(self) -> None: ...


@dataclass
class Running:
    """What ``start`` brought up; ``stop`` takes it down in reverse order."""

    settings: Settings
    services: PhoneServices
    lync: LyncHandler
    runners: list[web.AppRunner] = field(default_factory=list)
    servers: list[asyncio.AbstractServer] = field(default_factory=list)
    others: list[Closable] = field(default_factory=list)
    apps: list[AioPhoneApp] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    in_flight: list[InFlight] = field(default_factory=list)
    admission: Admission | None = None  # HTTP and HTTPS connection caps and deadline
    proxy: ProxyGate | None = None  # PROXY protocol headers from [cluster] proxy_from
    tls: TlsContexts | None = None  # the HTTPS context, which a reload (SIGHUP) replaces

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (up to GRACE), then close."""
        for server in self.servers:
            server.close()
        for runner in self.runners:
            for site in list(runner.sites):
                await site.stop()
        others = [asyncio.ensure_future(other.close()) for other in self.others]
        await asyncio.gather(*(tracker.wait_idle(GRACE) for tracker in self.in_flight))
        await asyncio.gather(*others, return_exceptions=True)
        for runner in self.runners:
            await runner.cleanup()
        for app in self.apps:
            app.close()
        self.services.close()


def _bind_error(error: OSError, what: str, port: int, flag: str) -> ListenError:
    if error.errno == errno.EADDRINUSE:
        return ListenError(
            f"{what} port {port} is already in use",
            f"Stop the other server or choose another port with {flag} (or in phoneprov.toml).",
        )
    if error.errno == errno.EACCES:
        return ListenError(
            f"{what} port {port} needs privileges",
            f"Run as root, or use a port above 1023 with {flag}.",
        )
    return ListenError(
        f"cannot listen for {what} on port {port}: {error.strerror}",
        f"Check the bind address and {flag}.",
    )


def _listen_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


def _listeners_bound(running: Running) -> bool:
    """Every enabled HTTP and HTTPS listener has its port (for the admin API's /readyz)."""
    s = running.settings
    wanted = [name for name, on in (("http", s.http.enabled), ("https", s.https.enabled)) if on]
    return all(running.ports.get(name) for name in wanted)


def _admin_host(settings: Settings) -> str:
    """Where administrators reach the admin listener: its bind address unless it is all."""
    host = settings.admin.bind
    if host in ("0.0.0.0", "::"):
        return _display_host(settings)
    return f"[{host}]" if ":" in host else host


def _display_host(settings: Settings) -> str:
    host = settings.primary_fqdn
    return f"[{host}]" if ":" in host else host


async def start(
    settings: Settings, *, reuse_port: bool = False, audit: Audit | None = None
) -> Running:
    """Bring up every enabled listener; raise ListenError naming a busy port."""
    audit = audit or Audit()
    services = open_phone_services(settings, audit)
    ports: dict[str, int] = {}
    running = Running(settings, services, LyncHandler(services, ports), ports=ports)
    cap, warning = connection_budget(settings.limits.max_connections)
    if warning:
        log.warning("%s", warning)
    running.admission = Admission(settings.limits, audit, cap)
    trusted = TrustedAddresses(settings.cluster.proxy_from)
    running.proxy = ProxyGate(trusted, running.admission, audit)
    host = _display_host(settings)
    try:
        if settings.http.enabled:
            await _start_http(running, audit, reuse_port)
            running.urls["http"] = f"http://{host}:{running.ports['http']}/"
        if settings.https.enabled:
            await _start_https(running, audit, reuse_port)
            running.urls["https"] = f"https://{host}:{running.ports['https']}/"
        if settings.edge.socket:  # nginx in front (edge mode, servers/edge.py)
            running.others.append(await start_edge(settings, services, running.lync, audit, GRACE))
            running.urls["edge"] = f"unix:{settings.edge.socket}"
        for name, starter in _optional_starters(settings):
            handle = await starter(settings, services)
            running.others.append(handle)
            running.ports[name] = int(getattr(handle, "port", 0))
            running.urls[name] = f"{name}://{host}:{running.ports[name]}/"
        if settings.admin.enabled:
            admin = await start_admin(settings, services, lambda: _listeners_bound(running))
            running.others.append(admin)
            running.ports["admin"] = admin.port
            running.urls["admin"] = f"https://{_admin_host(settings)}:{admin.port}/api/v1/"
            running.urls["console"] = f"https://{_admin_host(settings)}:{admin.port}/console/"
    except BaseException:
        await running.stop()
        raise
    return running


def _bound(name: str, bind: str, port: int, reuse_port: bool) -> socket.socket:
    try:
        return _listen_socket(bind, port, reuse_port)
    except OSError as error:
        raise _bind_error(error, name.upper(), port, f"--{name}-port") from None


async def _listener(
    running: Running, handler: PhoneHandler, name: str, bind: str, port: int, reuse_port: bool
) -> tuple[web.AppRunner, socket.socket]:
    """The aiohttp runner and the bound socket of one phone listener."""
    tracker = InFlight()
    running.in_flight.append(tracker)
    assert running.admission is not None
    app = AioPhoneApp(PhoneRouter(handler, running.lync), running.admission.max_connections)
    running.apps.append(app)
    runner = web.AppRunner(
        build_app(app.handle, tracker, running.admission.middleware),
        access_log=None,
        shutdown_timeout=GRACE,
        # aiohttp closes a kept-alive connection that has not sent a whole next request
        # this long after the previous response (bytes trickling in do not reset it).
        # The slack lets the admission deadline, which logs, close a first request first.
        keepalive_timeout=running.settings.limits.header_timeout + 1.0,
    )
    await runner.setup()
    running.runners.append(runner)
    sock = _bound(name, bind, port, reuse_port)
    running.ports[name] = int(sock.getsockname()[1])
    return runner, sock


async def _start_http(running: Running, audit: Audit, reuse_port: bool) -> None:
    settings = running.settings
    handler = PhoneHandler(
        running.services, secure=False, authority=running.services.digest_authority()
    )
    runner, sock = await _listener(
        running, handler, "http", settings.http.bind, settings.http.port, reuse_port
    )
    assert runner.server is not None and running.admission is not None
    assert running.proxy is not None
    app_factory, admission = runner.server, running.admission
    server = await asyncio.get_running_loop().create_server(
        running.proxy.factory(lambda: Guarded(app_factory, admission, "http"), "http"),
        sock=sock,
        backlog=BACKLOG,
    )
    running.servers.append(server)


async def _start_https(running: Running, audit: Audit, reuse_port: bool) -> None:
    settings = running.settings
    tls = running.tls = TlsContexts(server_context(settings))
    handler = PhoneHandler(
        running.services, secure=True, identifier=running.services.cert_identifier()
    )
    assert running.admission is not None
    sock = _bound("https", settings.https.bind, settings.https.port, reuse_port)
    listener = HttpsListener(
        sock,
        tls,
        PhoneRouter(handler, running.lync),
        running.admission,
        audit,
        GRACE,
        proxy=running.proxy,
    )
    running.ports["https"] = listener.port
    running.others.append(listener)
    listener.start()


Starter = Callable[[Settings, PhoneServices], Awaitable[Closable]]


def _optional_starters(settings: Settings) -> list[tuple[str, Starter]]:
    """FTP and TFTP listeners, when enabled."""
    starters: list[tuple[str, Starter]] = []
    if settings.ftp.enabled:
        starters.append(("ftp", start_ftp))
    if settings.tftp.enabled:
        starters.append(("tftp", lambda s, services: start_tftp(s.tftp, services)))
    return starters


Ready = Callable[[dict[str, str], dict[str, int]], None]


async def serve_until_signalled(
    settings: Settings, *, reuse_port: bool, primary: bool = True, on_ready: Ready | None = None
) -> None:
    """Run until SIGINT/SIGTERM, then stop gracefully.

    Only the primary process runs FTP and TFTP (low traffic, no port sharing);
    every process runs HTTP and HTTPS.
    """
    if not primary:
        settings = dataclasses.replace(
            settings,
            ftp=dataclasses.replace(settings.ftp, enabled=False),
            tftp=dataclasses.replace(settings.tftp, enabled=False),
            admin=dataclasses.replace(settings.admin, enabled=False),
            edge=dataclasses.replace(settings.edge, socket=""),  # one process per socket
        )
    running = await start(settings, reuse_port=reuse_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reloader = Reloader(settings.site_dir, running.tls)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, reloader.reload))
    node = running.services.join_cluster(running.urls) if primary else None
    # Running firmware rollouts are checked every [fleet] poll_interval (docs/fleet-actions.md).
    ticker = RolloutTicker(settings, running.services.store).start() if primary else None
    if on_ready is not None:
        on_ready(running.urls, running.ports)
    await stop.wait()
    log.info("stopping: finishing requests in flight (up to %.0f s)", GRACE)
    if ticker is not None:
        await asyncio.to_thread(ticker.stop)
    await running.stop()
    if node is not None:
        node.stop()


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def _concrete_ports(settings: Settings) -> Settings:
    """Resolve port 0 once, so every worker binds the same port."""
    http, https, ftp, tftp = settings.http, settings.https, settings.ftp, settings.tftp
    return dataclasses.replace(
        settings,
        http=dataclasses.replace(http, port=http.port or _free_port(socket.SOCK_STREAM)),
        https=dataclasses.replace(https, port=https.port or _free_port(socket.SOCK_STREAM)),
        ftp=dataclasses.replace(ftp, port=ftp.port or _free_port(socket.SOCK_STREAM)),
        tftp=dataclasses.replace(tftp, port=tftp.port or _free_port(socket.SOCK_DGRAM)),
        admin=dataclasses.replace(
            settings.admin, port=settings.admin.port or _free_port(socket.SOCK_STREAM)
        ),
    )


def _worker(settings: Settings, primary: bool, report: Any) -> None:
    # A SIGHUP forwarded before this worker's loop handles it must not end it.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def ready(urls: dict[str, str], ports: dict[str, int]) -> None:
        report.put(("ready", urls, ports))

    try:
        asyncio.run(
            serve_until_signalled(settings, reuse_port=True, primary=primary, on_ready=ready)
        )
    except PhoneprovError as error:
        report.put(("error", str(error), error.hint))
        os._exit(3)
    except Exception as error:
        # Told at once: the parent would otherwise wait 60 s for a report that never comes.
        log.exception("a worker process failed")
        report.put(("error", f"a worker process failed: {error!r}", "The traceback is above."))
        os._exit(3)


def _sweep(settings: Settings) -> None:
    """Remove partial uploads a killed server left (kill -9, power loss), before any
    worker serves: no upload is in progress yet, and none would ever reuse them."""
    removed = sweep_partial_uploads(settings)
    if removed:
        shown = ", ".join(repr(str(path)) for path in removed[:SWEEP_SHOWN])  # escaped
        more = f" and {len(removed) - SWEEP_SHOWN} more" if len(removed) > SWEEP_SHOWN else ""
        log.warning(
            "removed %d partial upload(s) an interrupted server left: %s%s",
            len(removed),
            shown,
            more,
        )


def run_workers(settings: Settings, workers: int, on_ready: Ready | None = None) -> int:
    """Serve with ``workers`` processes; return the exit code.

    Raises ListenError (or another PhoneprovError) when a worker cannot start.
    """
    # Port 0 is resolved before anything is built: initial.cfg and the URLs phones are
    # told must name the port actually bound.
    settings = _concrete_ports(settings)
    _sweep(settings)
    if workers <= 1:
        asyncio.run(serve_until_signalled(settings, reuse_port=False, on_ready=on_ready))
        return 0
    ctx = multiprocessing.get_context("fork")
    report = ctx.Queue()
    children = [
        ctx.Process(target=_worker, args=(settings, n == 0, report)) for n in range(workers)
    ]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    urls: dict[str, str] = {}
    ports: dict[str, int] = {}
    for _ in children:
        try:
            outcome = report.get(timeout=60)
        except queue.Empty:
            outcome = ("error", "a worker did not start within 60 s", "Check the logs.")
        if outcome[0] == "error":
            forward(signal.SIGTERM, None)
            for child in children:
                child.join(timeout=GRACE)
            raise ListenError(outcome[1], outcome[2])
        urls.update(outcome[1])
        ports.update(outcome[2])
    if on_ready is not None:
        on_ready(urls, ports)
    code = 0
    for child in children:
        child.join()
        code = code or (child.exitcode or 0)
    return code
