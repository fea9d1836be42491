"""The admin listener: HTTPS with the site's server certificate, no client certificate.

It runs in the first worker only (``servers/runner.py``), bound to ``[admin] bind``
(127.0.0.1 by default). Phones never reach it, and nothing it accepts (tokens,
passwords) means anything to the phone listeners. Starting it also hooks the
Prometheus counters into the process's access log and recorder.
"""

from __future__ import annotations

import errno
import ssl
from collections.abc import Callable

from aiohttp import web

from phoneprov.config import Settings
from phoneprov.errors import ConfigError, ListenError
from phoneprov.provisioning.admin_api import AdminServices
from phoneprov.provisioning.metrics import Metrics
from phoneprov.provisioning.services import PhoneServices
from phoneprov.servers.admin.app import build_app
from phoneprov.servers.admin.keys import Authenticator
from phoneprov.servers.tls import SERVER_CERT_STEMS


def admin_context(settings: Settings) -> ssl.SSLContext:
    """TLS 1.2+ with the site's server certificates; ConfigError when there is none."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    loaded = 0
    for stem in SERVER_CERT_STEMS:
        cert, key = settings.pki_dir / f"{stem}.pem", settings.pki_dir / f"{stem}.key"
        if cert.is_file() and key.is_file():
            ctx.load_cert_chain(cert, key)
            loaded += 1
    if not loaded:
        raise ConfigError(
            f"no server certificate in {settings.pki_dir} for the admin listener",
            "Issue one with `phoneprov ca issue-server`, or set [admin] enabled = false.",
        )
    return ctx


class AdminListener:
    """The running admin listener: its port, and ``close`` for the runner."""

    def __init__(self, runner: web.AppRunner, port: int, services: AdminServices) -> None:
        self.runner = runner
        self.port = port
        self.services = services

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_admin(
    settings: Settings,
    phone: PhoneServices,
    bound: Callable[[], bool],
    authenticators: list[Authenticator] | None = None,
) -> AdminListener:
    """Serve the admin API on ``[admin] bind``:``port``; ListenError for a busy port."""
    metrics = Metrics()
    phone.audit.observer = metrics.phones
    phone.recorder.watchers.append(metrics.phones)
    metrics.watch_fleet(settings, phone.store, settings.admin.not_seen_days * 86400)
    services = AdminServices(settings, phone.store, phone.audit, metrics)
    app = build_app(
        services,
        bound=bound,
        metrics_allow=frozenset(settings.admin.metrics_allow),
        authenticators=authenticators,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(
        runner, settings.admin.bind, settings.admin.port, ssl_context=admin_context(settings)
    )
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        busy = error.errno == errno.EADDRINUSE
        raise ListenError(
            f"admin port {settings.admin.port} is "
            + ("already in use" if busy else f"not available: {error.strerror}"),
            "Choose another with --admin-port or [admin] port, or set [admin] enabled = false.",
        ) from None
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    port = int(sockets[0].getsockname()[1]) if sockets else settings.admin.port
    return AdminListener(runner, port, services)
