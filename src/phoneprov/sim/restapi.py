"""The phone's side of the Poly REST API, for tests and demos: HTTPS with its device cert.

Each simulated phone's web server presents the phone's device certificate (as a
real phone presents its factory certificate), asks for Basic auth as
``Polycom`` with the phone's admin password, and answers the management calls
with the ``Status`` codes Poly documents (``protocols/phonerest.py``). It may
answer 4001 (device busy) a given number of times first. A shared ``Gauge``
counts requests being answered across phones, so a test can check the
server's fan-out limit from the phones' side.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from phoneprov.model import MacAddress
from phoneprov.protocols import phonerest
from phoneprov.protocols.phonerest import Action

OnAction = Callable[[MacAddress, Action], Coroutine[None, None, None]]


@dataclass
class Gauge:
    """Requests being answered now, and the most at once, over every phone sharing it."""

    now: int = 0
    peak: int = 0
    total: int = 0

    def enter(self) -> None:
        self.now += 1
        self.total += 1
        self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        self.now -= 1


@dataclass
class PhoneWebServer:
    """One phone's web server on ``host:port`` (a loopback address per phone in tests)."""

    mac: MacAddress
    password: str
    certfile: Path
    keyfile: Path
    host: str
    port: int
    gauge: Gauge = field(default_factory=Gauge)
    busy: int = 0  # answer 4001 this many times before accepting
    delay: float = 0.0  # seconds spent on each request (makes concurrency visible)
    on_action: OnAction | None = None
    firmware: str = "5.9.5.0614"
    received: list[str] = field(default_factory=list)  # action paths, authenticated or not
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(request.path)
        self.gauge.enter()
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            auth = request.headers.get("Authorization")
            if not phonerest.check_authorization(auth, self.password):
                return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="PLCM"'})
            if request.path == phonerest.DEVICE_INFO:
                data = {"MACAddress": self.mac.value, "Firmware": {"Application": self.firmware}}
                return _json(phonerest.reply_body(phonerest.SUCCESS, data))
            action = phonerest.ACTION_FOR_PATH.get(request.path)
            if action is None or request.method != "POST":
                return _json(phonerest.reply_body("4004"), status=404)
            if self.busy > 0:
                self.busy -= 1
                return _json(phonerest.reply_body(phonerest.BUSY))
            if self.on_action is not None:
                # The phone answers first and restarts afterwards, as safeRestart does.
                asyncio.get_running_loop().create_task(self.on_action(self.mac, action))
            return _json(phonerest.reply_body(phonerest.SUCCESS))
        finally:
            self.gauge.leave()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.certfile, self.keyfile)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, ssl_context=ctx).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def actions(self) -> list[str]:
        """The management calls this phone received."""
        return [path for path in self.received if path in phonerest.ACTION_FOR_PATH]


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")
