"""The store on a real PostgreSQL server, as several phoneprov nodes would share it."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
from tests.integration.pgserver import fresh_database, pg_bin, postgres_url
from tests.serverkit import curl, run_cli, start_server

from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.protocols.digest import ha1
from phoneprov.provisioning.accounts import check_password, hash_password
from phoneprov.records import Event, Sighting
from phoneprov.store import Recorder, Store, open_database

pytestmark = pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL server not installed")
MAC = MacAddress("0004f2000001")
T = TypeVar("T")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_url() as url:
        yield url


@pytest.fixture
def empty_db(pg_url: str) -> Iterator[str]:
    """A database of its own in the cluster, never migrated, dropped after the test."""
    with fresh_database(pg_url) as url:
        yield url


def at_once(*calls: Callable[[], T]) -> list[T]:
    """Run ``calls`` on threads released together by a barrier; return their results in order.

    An exception on any thread is raised here, after every thread has ended.
    """
    barrier = threading.Barrier(len(calls))
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], T]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=(n, call), name=f"node-{n}")
        for n, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a node thread hung"
    if errors:
        raise errors[0]
    return [results[n] for n in range(len(calls))]


def sighting(mac: MacAddress, when: float, node: int, **fields: str) -> Sighting:
    return Sighting(
        mac,
        when,
        f"192.0.2.{node + 1}",
        "https",
        DeviceStatus.DISCOVERED,
        stage="Application",
        **fields,
    )


def test_ok_two_nodes_migrate_and_open_one_database_at_once(empty_db: str) -> None:
    """Two nodes started together on an empty database both migrate it, then share it."""
    nodes: list[Store] = []  # closed even when the other node's start fails

    def start_node() -> Store:
        node = open_database(empty_db)
        nodes.append(node)
        return node

    try:
        first, second = at_once(start_node, start_node)
        first.upsert_device(MacAddress("0004f2000a01"), DeviceStatus.KNOWN, label="desk by node 0")
        second.upsert_device(MacAddress("0004f2000a02"), DeviceStatus.KNOWN, label="desk by node 1")
        # Each node reads what the other wrote: the state is in the database, not per node.
        seen_by_first = {d.mac.value: d.label for d in first.list_devices()}
        seen_by_second = {d.mac.value: d.label for d in second.list_devices()}
        expected = {"0004f2000a01": "desk by node 0", "0004f2000a02": "desk by node 1"}
        assert seen_by_first == seen_by_second == expected
    finally:
        for node in nodes:
            node.close()


def test_ok_two_nodes_write_concurrently_and_read_each_other(pg_url: str) -> None:
    """Threads write through both nodes at once; each node then sees every write of the other."""
    nodes = [open_database(pg_url), open_database(pg_url)]
    shared = MacAddress("0004f2000b00")
    own = [[MacAddress(f"0004f2000b{node}{i}") for i in range(1, 6)] for node in (1, 2)]
    rounds, threads_per_node = 20, 3
    try:
        now = time.time()
        # The shared phone exists before the race: concurrent first sightings are another test.
        nodes[0].record([sighting(shared, now, 0)], [])

        def writer(node: int, worker: int) -> Callable[[], int]:
            def write() -> int:
                for n in range(rounds):
                    when = now + 1 + n
                    nodes[node].record(
                        [
                            sighting(shared, when, node, firmware=f"5.9.{node}"),
                            sighting(own[node][(worker + n) % 5], when, node),
                        ],
                        [Event(when, shared.value, "upload", f"node {node} worker {worker} #{n}")],
                    )
                return rounds

            return write

        written = at_once(
            *(writer(node, worker) for node in (0, 1) for worker in range(threads_per_node))
        )
        assert sum(written) == 2 * threads_per_node * rounds
        for reader, other in ((nodes[0], 1), (nodes[1], 0)):
            record = reader.get_device(shared)
            assert record is not None
            # Every increment from both nodes landed: per-node state would count half.
            assert record.requests == 1 + 2 * threads_per_node * rounds
            details = {e.detail for e in reader.events_for(shared, limit=1000)}
            assert len(details) == 2 * threads_per_node * rounds
            assert {f"node {other} worker {w} #{rounds - 1}" for w in range(threads_per_node)} <= (
                details
            )
            # The phones only the other node saw are visible here too, with its address.
            theirs = {d.mac.value: d for d in reader.list_devices() if d.mac in own[other]}
            assert set(theirs) == {mac.value for mac in own[other]}
            assert {d.ip for d in theirs.values()} == {f"192.0.2.{other + 1}"}
            assert sum(d.requests for d in theirs.values()) == threads_per_node * rounds
    finally:
        for node in nodes:
            node.close()


def test_ok_two_nodes_see_a_new_phone_at_the_same_moment(pg_url: str) -> None:
    """A phone's first sightings reach two nodes at once (HTTP on one, HTTPS on the other)."""
    nodes = [open_database(pg_url), open_database(pg_url)]
    try:
        now = time.time()
        for attempt in range(20):
            mac = MacAddress(f"0004f2000c{attempt:02x}")
            at_once(
                partial(nodes[0].record, [sighting(mac, now, 0)], []),
                partial(nodes[1].record, [sighting(mac, now, 1)], []),
            )
            for node in nodes:
                record = node.get_device(mac)
                assert record is not None and record.requests == 2, (attempt, record)
    finally:
        for node in nodes:
            node.close()


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
