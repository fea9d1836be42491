"""Administrator credentials never work on the phone ports (issue 14).

An API token or an administrator's password is no phone identity: sent to the
HTTP listener as a bearer token or as a digest/Basic login it gets no secret
file, and the FTP listener refuses the administrator's name and password.
"""

from __future__ import annotations

import ftplib
from pathlib import Path

import pytest

from phoneprov.config import load_settings
from phoneprov.provisioning import admins
from tests.serverkit import DEMO_MAC, curl, start_server, status_of

PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin_site(site: Path) -> tuple[Path, str]:
    settings = load_settings(site)
    admins.add_admin(settings, "alice", "admin", PASSWORD)
    return site, admins.create_token(settings, "ops", "admin").secret


def test_attack_admin_credentials_on_phone_ports(admin_site: tuple[Path, str]) -> None:
    site, token = admin_site
    server = start_server(site, protocols=("http", "https", "ftp", "admin"))
    try:
        url = f"{server.http}/{DEMO_MAC}-phone-secrets.cfg"
        bearer = curl("-H", f"Authorization: Bearer {token}", "-w", "%{http_code}", url)
        assert status_of(bearer) == 401
        for flag in ("--digest", "--basic"):
            login = curl(flag, "-u", f"alice:{PASSWORD}", "-w", "%{http_code}", url)
            assert status_of(login) == 401, login.stdout
            assert "reg.1.auth.password" not in login.stdout
        server.wait_for_log("security", "unknown-user")
        with ftplib.FTP() as ftp:
            ftp.connect("127.0.0.1", server.ports["ftp"], timeout=10)
            with pytest.raises(ftplib.error_perm):
                ftp.login("alice", PASSWORD)
    finally:
        server.stop()
