"""Simulated phones for fleet actions and rollouts: each on its own loopback address,
with its web server (the Poly REST API, ``sim/restapi.py``) and its boot.

A phone fetches its own configuration over mutual TLS from its address first,
as a real phone does before anyone may reach it (the server records that
address and renders the phone's admin password). On ``safeRestart`` it boots
the way SPEC §2 says: the Updater reads the master file, the version file
beside ``APP_FILE_PATH_<model>`` and, when the version differs, the image, and
runs it; the application then reads the master file again with its
User-Agent naming the version it runs. A looping phone fetches the image again
and again and never runs it (SPEC §9: another update source keeps replacing it).
"""

from __future__ import annotations

import asyncio
import http.client
import re
import ssl
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from phoneprov.model import MacAddress
from phoneprov.protocols.phonerest import Action
from phoneprov.protocols.polycom import Stage
from phoneprov.sim.configfiles import parse_master
from phoneprov.sim.phone import Phone
from phoneprov.sim.restapi import PhoneWebServer

PASSWORD_RE = re.compile(r'device\.auth\.localAdminPassword="([^"]+)"')
MASTER = "000000000000.cfg"
MODEL = "VVX410"


def mac_of(index: int) -> MacAddress:
    return MacAddress(f"0004f2{0x100000 + index:06x}")


def address_of(index: int) -> str:
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


class PhoneLoop:
    """The simulated phones' web servers and boots, on an event loop in a thread of their own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def phone_context(site: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """The phone's TLS client: trusts the site's CA (initial.cfg installs it), shows its cert."""
    ctx = ssl.create_default_context(cafile=str(site / "pki" / "ca.pem"))
    ctx.check_hostname = False
    ctx.load_cert_chain(cert, key)
    return ctx


def fetch_secrets(
    site: Path, https_port: int, index: int, cert: Path, key: Path, user_agent: str = ""
) -> str:
    """Fetch the phone's own config over mutual TLS from its address; its admin password.

    With ``user_agent`` (the application's), the phone also reports the version it runs.
    """
    conn = http.client.HTTPSConnection(
        "127.0.0.1",
        https_port,
        context=phone_context(site, cert, key),
        source_address=(address_of(index), 0),
    )
    mac = mac_of(index)
    conn.request(
        "GET", f"/{mac}-phone-secrets.cfg", headers={"User-Agent": user_agent} if user_agent else {}
    )
    answer = conn.getresponse()
    body = answer.read().decode()
    conn.close()
    assert answer.status == 200, body
    found = PASSWORD_RE.search(body)
    assert found, body
    return found.group(1)


@dataclass
class FirmwarePhone:
    """A phone that boots from the server over mutual TLS from its own address."""

    index: int
    site: Path
    https_port: int
    cert: Path
    key: Path
    version: str
    loops: int = 0  # > 0: fetch the image this many times per boot and never run it
    restarts: list[float] = field(default_factory=list)  # safeRestart requests answered
    reports: list[tuple[float, str]] = field(default_factory=list)  # (when, version) reported
    image_fetches: int = 0

    @property
    def mac(self) -> MacAddress:
        return mac_of(self.index)

    def agent(self, stage: Stage) -> str:
        return Phone(self.mac, MODEL, app_version=self.version).user_agent(stage)

    async def _get(self, session: aiohttp.ClientSession, path: str, stage: Stage) -> bytes | None:
        url = f"https://127.0.0.1:{self.https_port}/{path}"
        async with session.get(url, headers={"User-Agent": self.agent(stage)}) as answer:
            body = await answer.read()
            return body if answer.status == 200 else None

    async def boot(self) -> None:
        """Updater (firmware check, install), then the application reporting its version."""
        connector = aiohttp.TCPConnector(
            ssl=phone_context(self.site, self.cert, self.key),
            local_addr=(address_of(self.index), 0),
            force_close=True,  # libcurl: a new connection for every file
        )
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(max(self.loops, 1)):
                master = await self._get(session, MASTER, Stage.UPDATER)
                assert master is not None
                image = parse_master(master, MODEL).app_file_path
                offered = await self._get(session, image[: -len(".ld")] + ".ver", Stage.UPDATER)
                version = offered.decode().strip() if offered else ""
                if version and version != self.version:
                    fetched = await self._get(session, image, Stage.UPDATER)
                    self.image_fetches += fetched is not None
                    if fetched is not None and not self.loops:
                        self.version = version
            await self._get(session, MASTER, Stage.APPLICATION)
            self.reports.append((time.time(), self.version))

    async def restarted(self, mac: MacAddress, action: Action) -> None:
        """The web server's hook: safeRestart answered, the phone reboots."""
        if action is Action.RESTART:
            self.restarts.append(time.time())
            await asyncio.sleep(0.05)
            await self.boot()

    def web_server(self, password: str, rest_port: int) -> PhoneWebServer:
        return PhoneWebServer(
            self.mac,
            password,
            self.cert,
            self.key,
            address_of(self.index),
            rest_port,
            on_action=self.restarted,
            firmware=self.version,
        )
