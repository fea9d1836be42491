"""FTP listings of the root include the rendered files the account may read."""

from __future__ import annotations

import ftplib
import io
from pathlib import Path

from tests.serverkit import run_cli, start_server

from phoneprov.config import load_settings
from phoneprov.model import MacAddress
from phoneprov.store import open_store


def _names(port: int, user: str, password: str) -> set[str]:
    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", port, timeout=10)
        ftp.login(user, password)
        return {name.rsplit("/", 1)[-1] for name in ftp.nlst()}


def test_ok_root_listing_shows_rendered_files_per_account(site: Path) -> None:
    run_cli(
        "account",
        "set",
        "0004f2000001",
        "--kind",
        "device",
        "--password",
        "dev-pw",
        "--site",
        str(site),
        check=True,
    )
    server = start_server(site, protocols=("http", "https", "ftp"))
    try:
        public = _names(server.ports["ftp"], "PlcmSpIp", "PlcmSpIp")
        device = _names(server.ports["ftp"], "0004f2000001", "dev-pw")
    finally:
        server.stop()
    assert {"000000000000.cfg", "initial.cfg", "logs"} <= public
    assert not {"site.cfg", "0004f2000001-phone-secrets.cfg"} & public
    assert {"000000000000.cfg", "site.cfg", "0004f2000001-phone-secrets.cfg"} <= device
    assert "0004f2000002-phone-secrets.cfg" not in device


def test_ok_ftp_upload_is_an_event_on_the_phone(site: Path) -> None:
    server = start_server(site, protocols=("http", "https", "ftp"))
    try:
        with ftplib.FTP() as ftp:
            ftp.connect("127.0.0.1", server.ports["ftp"], timeout=10)
            ftp.login("PlcmSpIp", "PlcmSpIp")
            ftp.storbinary("STOR logs/0004f2000003-boot.log", io.BytesIO(b"boot ok\n"))
    finally:
        server.stop()
    store = open_store(load_settings(site))
    try:
        events = store.events_for(MacAddress("0004f2000003"))
    finally:
        store.close()
    assert [(e.kind, e.detail) for e in events] == [("upload", "0004f2000003-boot.log 8 bytes")]
