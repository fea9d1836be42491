"""FTP listings of the root include the rendered files the account may read."""

from __future__ import annotations

import ftplib
from pathlib import Path

from tests.serverkit import run_cli, start_server


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
