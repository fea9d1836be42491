"""The store on a real PostgreSQL server, as several phoneprov nodes would share it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.pgserver import pg_bin, postgres_url
from tests.serverkit import curl, run_cli, start_server

from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.protocols.digest import ha1
from phoneprov.provisioning.accounts import check_password, hash_password
from phoneprov.records import Event, Sighting
from phoneprov.store import Recorder, open_database

pytestmark = pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL server not installed")
MAC = MacAddress("0004f2000001")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_url() as url:
        yield url


def test_ok_migrations_are_idempotent_across_nodes(pg_url: str) -> None:
    first, second = open_database(pg_url), open_database(pg_url)  # two nodes start on one database
    try:
        assert first.list_devices() == second.list_devices()
    finally:
        first.close()
        second.close()


def test_ok_sightings_from_two_nodes_merge(pg_url: str) -> None:
    nodes = [open_database(pg_url), open_database(pg_url)]
    try:
        now = time.time()
        for n, node in enumerate(nodes):
            node.record(
                [
                    Sighting(
                        MAC,
                        now + n,
                        f"192.0.2.{n + 1}",
                        "https",
                        DeviceStatus.DISCOVERED,
                        model="VVX410",
                        firmware=f"5.9.{n}",
                        stage="Application",
                        cert_kind="factory",
                    )
                ],
                [Event(now + n, MAC.value, "upload", f"node {n}")],
            )
        record = nodes[0].get_device(MAC)
        assert record is not None
        assert (record.requests, record.ip, record.firmware, record.status) == (
            2,
            "192.0.2.2",
            "5.9.1",
            DeviceStatus.DISCOVERED,
        )
        assert [e.detail for e in nodes[1].events_for(MAC)] == ["node 1", "node 0"]
        assert nodes[1].set_status(MAC, DeviceStatus.KNOWN)
        refreshed = nodes[0].get_device(MAC)
        assert refreshed is not None and refreshed.status is DeviceStatus.KNOWN
    finally:
        for node in nodes:
            node.close()


def test_ok_recorder_writes_batches(pg_url: str) -> None:
    store = open_database(pg_url)
    recorder = Recorder(store, interval=0.05)
    recorder.start()
    other = MacAddress("0004f2000099")
    for _ in range(50):
        recorder.sighting(
            Sighting(
                other, time.time(), "192.0.2.9", "http", DeviceStatus.DISCOVERED, stage="Updater"
            )
        )
    recorder.stop()
    record = store.get_device(other)
    store.close()
    assert record is not None and record.requests == 50


def test_ok_accounts_never_store_the_password(pg_url: str) -> None:
    store = open_database(pg_url)
    try:
        store.put_account(
            "PlcmSpIp",
            "bootstrap",
            "phoneprov",
            ha1("PlcmSpIp", "phoneprov", "secret!"),
            hash_password("secret!"),
        )
        account = store.get_account("PlcmSpIp")
        assert account is not None
        assert "secret!" not in (account.ha1 + account.password_hash)
        assert check_password("secret!", account.password_hash)
        assert not check_password("wrong", account.password_hash)
    finally:
        store.close()


def test_ok_two_nodes_serve_from_one_database(pg_url: str, tmp_path: Path) -> None:
    site = tmp_path / "node1"
    run_cli(
        "init",
        "--site",
        str(site),
        "--fqdn",
        "localhost",
        "--demo",
        "--database",
        pg_url,
        check=True,
    )
    second = tmp_path / "node2"
    shutil.copytree(site, second)
    nodes = [start_server(site), start_server(second)]
    try:
        cert = site / "demo" / "0004f2000001.pem"
        key = site / "demo" / "0004f2000001.key"
        for node in nodes:
            digest = curl(
                "--digest", "-u", "PlcmSpIp:PlcmSpIp", "--fail", f"{node.http}/000000000000.cfg"
            )
            assert digest.returncode == 0, digest.stderr
            mtls = curl(
                "--cacert",
                str(site / "pki" / "ca.pem"),
                "--cert",
                str(cert),
                "--key",
                str(key),
                "--fail",
                f"{node.https}/site.cfg",
            )
            assert mtls.returncode == 0, mtls.stderr
    finally:
        for node in nodes:
            node.stop()
    store = open_database(pg_url)
    try:
        record = store.get_device(MAC)
    finally:
        store.close()
    assert record is not None and record.requests >= 2 and record.cert_kind == "ours"
