"""SIP passwords are kept encrypted in the database, readable only with the site key."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from tests.serverkit import run_cli

from phoneprov.config import load_settings
from phoneprov.errors import StoreError
from phoneprov.model import MacAddress
from phoneprov.provisioning.inventory import Inventory
from phoneprov.store import open_store
from phoneprov.store.secrets import KEY_FILE


def _stored_passwords(site: Path) -> list[str]:
    with sqlite3.connect(site / "phoneprov.db") as db:
        return [row[0] for row in db.execute("SELECT password FROM device_lines")]


def test_ok_database_holds_no_clear_password(site: Path) -> None:
    stored = _stored_passwords(site)
    assert stored and all(value.startswith("enc1:") for value in stored)
    assert not any("demo-sip-password" in value for value in stored)
    assert (site / "pki" / KEY_FILE).stat().st_mode & 0o777 == 0o600
    rendered = run_cli(
        "render",
        "0004f2000001",
        "0004f2000001-phone-secrets.cfg",
        "--show-secrets",
        "--site",
        str(site),
        check=True,
    ).stdout
    assert 'reg.1.auth.password="demo-sip-password"' in rendered


def test_ok_device_add_seals_the_password(site: Path) -> None:
    run_cli(
        "device",
        "add",
        "0004f2000042",
        "--model",
        "VVX410",
        "--line",
        "1:ext=2042,user=2042,password=Tr1cky&<pw,server=pbx.example.com",
        "--site",
        str(site),
        check=True,
    )
    assert not any("Tr1cky" in value for value in _stored_passwords(site))
    store = open_store(load_settings(site))
    try:
        _, entry = Inventory(store).get(MacAddress("0004f2000042"))
    finally:
        store.close()
    assert entry.lines[0].password == "Tr1cky&<pw"


def test_fail_another_sites_key_says_what_to_copy(site: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-key"
    other.mkdir()
    shutil.copy(site / "pki" / KEY_FILE, other / "saved.key")
    (site / "pki" / KEY_FILE).unlink()  # a node without the key makes a new one
    store = open_store(load_settings(site))
    try:
        with pytest.raises(StoreError) as error:
            Inventory(store).get(MacAddress("0004f2000001"))
    finally:
        store.close()
    assert KEY_FILE in error.value.hint
