"""The FTP listener in-process (start_ftp / FtpHandle) with ftplib as the client:
passive port range and masquerade address, graceful close, the default-account
switch, and device records from FTP sessions."""

from __future__ import annotations

import asyncio
import dataclasses
import ftplib
import hashlib
import io
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from phoneprov.config import FtpSettings, Settings, load_settings
from phoneprov.model import MacAddress
from phoneprov.provisioning.services import PhoneServices, open_phone_services
from phoneprov.servers.ftp.server import FtpHandle, start_ftp
from phoneprov.store import open_database

MAC = "0004f2000077"
FIRMWARE = bytes(range(256)) * 4096 * 8  # 8 MiB


@dataclasses.dataclass
class Running:
    handle: FtpHandle
    settings: Settings
    services: PhoneServices

    def login(self, user: str = "PlcmSpIp", password: str = "PlcmSpIp") -> ftplib.FTP:
        client = ftplib.FTP()
        client.connect("127.0.0.1", self.handle.port, timeout=10)
        client.login(user, password)
        return client


@contextmanager
def running_ftp(site: Path, **ftp: object) -> Iterator[Running]:
    settings = load_settings(site)
    options = {"bind": "127.0.0.1", "port": 0, **ftp}
    settings = dataclasses.replace(settings, ftp=dataclasses.replace(settings.ftp, **options))  # type: ignore[arg-type]
    services = open_phone_services(settings)
    handle = asyncio.run(start_ftp(settings, services))
    try:
        yield Running(handle, settings, services)
    finally:
        asyncio.run(handle.close())
        services.close()


@pytest.fixture
def ftp_site(site_template: Path, tmp_path: Path) -> Path:
    site = tmp_path / "site"
    shutil.copytree(site_template, site, symlinks=True)
    (site / "boot" / "sip.ld").write_bytes(FIRMWARE)
    return site


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_ok_passive_reply_names_masquerade_address_and_range(ftp_site: Path) -> None:
    port = free_port()
    with running_ftp(
        ftp_site, masquerade_address="192.0.2.10", passive_ports=(port, port)
    ) as server:
        client = server.login()
        reply = client.sendcmd("PASV")
        client.close()
        # ftplib connects to the control address, as phones behind the same NAT would not:
        # the reply itself is what a phone outside uses.
        client = server.login()
        master = io.BytesIO()
        client.retrbinary("RETR 000000000000.cfg", master.write)
        client.quit()
    numbers = [int(n) for n in re.findall(r"\d+", reply.split("(", 1)[1])]
    assert numbers[:4] == [192, 0, 2, 10]
    assert numbers[4] * 256 + numbers[5] == port
    assert b"CONFIG_FILES" in master.getvalue()


def test_ok_port_zero_binds_a_free_port(ftp_site: Path) -> None:
    with running_ftp(ftp_site) as server:
        assert server.handle.port > 0
        with server.login() as client:
            assert client.pwd() == "/"


def test_fail_default_account_off_refuses_plcmspip(ftp_site: Path) -> None:
    with running_ftp(ftp_site, default_account=False) as server:
        client = ftplib.FTP()
        client.connect("127.0.0.1", server.handle.port, timeout=10)
        with pytest.raises(ftplib.error_perm, match=r"^530"):
            client.login("PlcmSpIp", "PlcmSpIp")
        client.close()


def _slow_retr(server: Running, done: Callable[[bytes], None]) -> None:
    client = server.login()
    client.voidcmd("TYPE I")
    conn = client.transfercmd("RETR sip.ld")
    digest = hashlib.sha256()
    body = bytearray()
    while chunk := conn.recv(64 * 1024):
        body += chunk
        digest.update(chunk)
        time.sleep(0.02)
    conn.close()
    client.voidresp()
    client.close()
    done(bytes(body))


def test_ok_close_lets_a_transfer_in_flight_finish(ftp_site: Path) -> None:
    received: list[bytes] = []
    with running_ftp(ftp_site) as server:
        reader = threading.Thread(target=_slow_retr, args=(server, received.append))
        reader.start()
        time.sleep(0.3)
        closing = threading.Thread(target=lambda: asyncio.run(server.handle.close()))
        closing.start()
        time.sleep(0.3)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.handle.port), timeout=2).close()
        reader.join(30)
        closing.join(30)
        assert not closing.is_alive()
    assert received == [FIRMWARE]


def test_fail_close_past_grace_discards_an_unfinished_upload(ftp_site: Path) -> None:
    target = ftp_site / "boot" / "logs" / f"{MAC}-boot.log"
    with running_ftp(ftp_site) as server:
        server.handle.grace = 0.5
        client = server.login()
        # The phone asks for its own config first (SPEC §2), which enrols it: only then
        # may the public account upload its logs (decisions/0008).
        with pytest.raises(ftplib.error_perm):
            client.retrbinary(f"RETR {MAC}.cfg", lambda _data: None)
        client.storbinary(f"STOR logs/{target.name}", io.BytesIO(b"old\n"))
        client.voidcmd("TYPE I")
        conn = client.transfercmd(f"STOR logs/{target.name}")
        conn.sendall(b"never finished\n")
        started = time.monotonic()
        asyncio.run(server.handle.close())
        assert time.monotonic() - started < 5
        conn.close()
        client.close()
    assert target.read_bytes() == b"old\n"
    assert not list(target.parent.glob(".*.part"))


def test_ok_default_account_session_updates_the_device_record(ftp_site: Path) -> None:
    with running_ftp(ftp_site) as server, server.login() as client:
        with pytest.raises(ftplib.error_perm):
            client.retrbinary(f"RETR {MAC}.cfg", lambda _data: None)
        client.storbinary(f"STOR {MAC}-boot.log", io.BytesIO(b"boot\n"))
    store = open_database(load_settings(ftp_site).database_url)
    try:
        record = store.get_device(MacAddress(MAC))
    finally:
        store.close()
    assert record is not None
    assert record.protocol == "ftp" and record.ip == "127.0.0.1"


def test_ok_ftp_settings_defaults_match_the_template(ftp_site: Path) -> None:
    settings = load_settings(ftp_site)
    assert dataclasses.replace(settings.ftp, port=FtpSettings().port) == FtpSettings()
