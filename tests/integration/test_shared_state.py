"""Several nodes on one PostgreSQL database share the CA index, revocations, digest nonces,
the Lync device update catalog, the migration and the cluster view (issue 17;
docs/scale-out.md).

Two "nodes" are two site folders copied from one `phoneprov init` (as administrators
make nodes), each with its own `phoneprov serve` or its own store, on one database.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.serialization import pkcs7
from tests.integration.pgserver import fresh_database, pg_bin, postgres_url
from tests.serverkit import PHONEPROV, curl, edit_settings, run_cli, start_server

from phoneprov.config import Settings, load_settings
from phoneprov.model import MacAddress
from phoneprov.pki.index import CertRecord
from phoneprov.protocols.lync import PackageKey, example_request
from phoneprov.provisioning.certificates import issued_certificates, sign_device_csr
from phoneprov.provisioning.enrolment import device_cert_settings
from phoneprov.provisioning.lync.catalog import Catalog, change_catalog
from phoneprov.provisioning.lync.packages import add_package
from phoneprov.provisioning.revocations import RevocationWatch
from phoneprov.store import SCHEMA_VERSION, open_database, open_store

pytestmark = pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL server not installed")
DEMO = "0004f2000001"
PHONE = MacAddress("0004f2000abc")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_url() as url:
        yield url


@pytest.fixture
def empty_db(pg_url: str) -> Iterator[str]:
    """A database of its own in the cluster, never migrated, dropped after the test."""
    with fresh_database(pg_url) as url:
        yield url


@pytest.fixture
def nodes(empty_db: str, tmp_path: Path) -> tuple[Path, Path]:
    """Two node folders: one `init --demo` on the database, and a copy of it."""
    first = tmp_path / "node-a"
    run_cli(
        "init", "--site", str(first), "--fqdn", "localhost", "--demo", "--database", empty_db,
        check=True,
    )  # fmt: skip
    # Every node refreshes revocations and the Lync catalog five times a second, so the
    # test waits little.
    edit_settings(
        first, cluster={"revocation_refresh": 0.2, "heartbeat": 1.0, "catalog_refresh": 0.2}
    )
    second = tmp_path / "node-b"
    shutil.copytree(first, second)
    return first, second


def make_csr(folder: Path, mac: MacAddress) -> bytes:
    """A phone's CSR as openssl makes it: CN is the MAC."""
    subprocess.run(
        [
            "openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256",
            "-subj", f"/CN={mac.value}", "-keyout", str(folder / "phone.key"),
            "-out", str(folder / "phone.csr"),
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    return (folder / "phone.csr").read_bytes()


def test_ok_csr_signed_by_one_node_is_delivered_by_the_other(
    nodes: tuple[Path, Path], tmp_path: Path
) -> None:
    node_a, node_b = (load_settings(path) for path in nodes)
    signed = sign_device_csr(node_a, make_csr(tmp_path, PHONE), mac=PHONE, slot="platform1")
    # Node B never saw the CSR: what it knows comes from the database.
    listed = {record.serial: record for record in issued_certificates(node_b)}
    assert listed[signed.facts.serial].mac == PHONE.value
    store_b = open_store(node_b)
    try:
        params = device_cert_settings(store_b, node_b.pki_dir, PHONE)
    finally:
        store_b.close()
    # The phone's config from node B installs the very certificate node A signed.
    bundle = params["device.sec.TLS.customDeviceCert1.publicCert"].encode()
    delivered = pkcs7.load_pem_pkcs7_certificates(bundle)
    assert [cert.serial_number for cert in delivered] == [signed.facts.serial]
    # The site folder's old index was adopted into the database, not left to drift.
    assert not (nodes[0] / "pki" / "index.json").exists()


def mtls(server_https: str, site: Path, path: str) -> int:
    result = curl(
        "-o", "/dev/null", "-w", "%{http_code}",
        "--cacert", str(site / "pki" / "ca.pem"),
        "--cert", str(site / "demo" / f"{DEMO}.pem"),
        "--key", str(site / "demo" / f"{DEMO}.key"),
        f"{server_https}{path}",
    )  # fmt: skip
    return int(result.stdout.strip()[-3:] or 0)


def test_ok_certificate_revoked_through_one_node_is_refused_by_the_other(
    nodes: tuple[Path, Path],
) -> None:
    node_a, node_b = nodes
    server_b = start_server(node_b)
    try:
        assert mtls(server_b.https, node_b, "/site.cfg") == 200
        run_cli("ca", "revoke", "--mac", DEMO, "--site", str(node_a), check=True)
        # Node B refreshes from the database on its own (revocation_refresh = 0.2 s);
        # its listener never reads node A's files.
        deadline = time.monotonic() + 30
        status = 200
        while status == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
            status = mtls(server_b.https, node_b, "/site.cfg")
        assert status == 403
        server_b.wait_for_log("security", "certificate-revoked")
    finally:
        server_b.stop()


def digest_header(challenge: str, uri: str, nc: int) -> str:
    """An RFC 7616 MD5 qop=auth response for PlcmSpIp, as a phone computes it."""
    realm = re.search(r'realm="([^"]*)"', challenge)
    nonce = re.search(r'nonce="([^"]*)"', challenge)
    assert realm is not None and nonce is not None, challenge
    realm, nonce, cnonce = realm.group(1), nonce.group(1), "0a4f113b"
    ha1 = hashlib.md5(f"PlcmSpIp:{realm}:PlcmSpIp".encode()).hexdigest()
    ha2 = hashlib.md5(f"GET:{uri}".encode()).hexdigest()
    count = f"{nc:08x}"
    response = hashlib.md5(f"{ha1}:{nonce}:{count}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    return (
        f'Digest username="PlcmSpIp", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'qop=auth, nc={count}, cnonce="{cnonce}", response="{response}", algorithm=MD5'
    )


def get(url: str, authorization: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, ""
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("WWW-Authenticate", "")


def test_ok_digest_nonce_from_one_node_is_accepted_by_the_other_once(
    nodes: tuple[Path, Path],
) -> None:
    servers = [start_server(nodes[0]), start_server(nodes[1])]
    try:
        a, b = (server.http for server in servers)
        uri = "/000000000000.cfg"
        status, challenge = get(f"{a}{uri}")
        assert status == 401 and challenge.startswith("Digest ")
        header = digest_header(challenge, uri, 1)
        assert get(f"{b}{uri}", header)[0] == 200  # node A's nonce verifies on node B
        replay_b = get(f"{b}{uri}", header)
        replay_a = get(f"{a}{uri}", header)
        # A replay, on either node: answered with a fresh challenge (stale=true), not the file.
        assert replay_b[0] == replay_a[0] == 401
        assert "stale=true" in replay_b[1] and "stale=true" in replay_a[1]
        assert get(f"{a}{uri}", digest_header(challenge, uri, 2))[0] == 200  # nc grew
    finally:
        for server in servers:
            server.stop()


def test_ok_two_upgrades_at_the_same_instant_migrate_once(empty_db: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    run_cli("init", "--site", str(site), "--fqdn", "localhost", check=True)
    edit_settings(site, site={"database": empty_db})
    command = [PHONEPROV, "db", "upgrade", "--site", str(site)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    said = sorted(out.strip() for out, _ in outputs)
    assert said == [
        f"database schema upgraded from version 0 to {SCHEMA_VERSION} "
        f"({SCHEMA_VERSION} migration(s) applied)",
        f"database schema version {SCHEMA_VERSION}: already current, nothing to do",
    ]
    engine = sa.create_engine(empty_db)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
                (f"{SCHEMA_VERSION:04}",)
            ]
            versions = conn.execute(sa.text("SELECT version FROM schema_version")).scalars()
            assert sorted(versions) == [1, 2, 3, 4, 5]  # each custom step ran once
    finally:
        engine.dispose()


def test_ok_cluster_status_shows_both_nodes(nodes: tuple[Path, Path]) -> None:
    servers = [
        start_server(nodes[0], "--node-name", "node-a"),
        start_server(nodes[1], "--node-name", "node-b"),
    ]
    try:
        shown = json.loads(
            run_cli("cluster", "status", "--site", str(nodes[0]), "--format", "json",
                    check=True).stdout
        )  # fmt: skip
    finally:
        servers[1].stop()
    up = {node["name"]: node for node in shown["nodes"]}
    assert {"node-a", "node-b"} <= set(up)
    assert all(up[name]["state"] == "up" for name in ("node-a", "node-b"))
    assert up["node-b"]["listeners"]["https"].endswith(f":{servers[1].ports['https']}/")
    after = json.loads(
        run_cli("cluster", "status", "--site", str(nodes[0]), "--format", "json",
                check=True).stdout
    )  # fmt: skip
    servers[0].stop()
    states = {node["name"]: node["state"] for node in after["nodes"]}
    assert states["node-b"] == "stopped" and states["node-a"] == "up"


def test_ok_store_level_revocation_watch_and_nonces_across_nodes(empty_db: str) -> None:
    """Two stores on one database, no servers: what one node writes, the other reads."""
    first, second = open_database(empty_db), open_database(empty_db)
    try:
        ca = "ab" * 32
        now = datetime.now(UTC).replace(microsecond=0)
        record = CertRecord(12345, "csr", PHONE.value, now, now, "00" * 32, now, PHONE.value)
        assert first.certificates.index(ca).add(record, b"-----BEGIN CERTIFICATE-----\n")
        assert not second.certificates.index(ca).add(record, b"")  # serial taken
        watch = RevocationWatch([second.certificates.index(ca)], interval=60)
        assert watch.refresh() and watch.get() == frozenset()
        first.certificates.index(ca).revoke([12345], now, "key-compromise")
        assert watch.refresh() and watch.get() == frozenset({12345})
        expires = time.time() + 300
        assert first.nonces.accept("nonce-1", 1, expires)
        assert not second.nonces.accept("nonce-1", 1, expires)  # a replay on node B
        assert second.nonces.accept("nonce-1", 2, expires)
        assert second.nonces.spend("nonce-2", expires)
        assert not first.nonces.spend("nonce-2", expires)
        assert first.nonces.purge(expires + 1) == 2
        key = first.secrets.get_or_create("digest-nonce-key")
        assert second.secrets.get_or_create("digest-nonce-key") == key
    finally:
        first.close()
        second.close()


CX700 = PackageKey("UCPhone", "Polycom", "CX700", "A", "ENU")


def test_ok_lync_package_added_through_one_node_is_served_by_the_other(
    nodes: tuple[Path, Path], tmp_path: Path
) -> None:
    node_a, node_b = nodes
    # The package files are on shared storage, like the boot directory (docs/scale-out.md).
    shutil.rmtree(node_b / "ucupdate" / "objects")
    (node_b / "ucupdate" / "objects").symlink_to(node_a / "ucupdate" / "objects")
    image = tmp_path / "CPE.nbt"
    image.write_bytes(b"newer CX700 image" * 1000)
    server_b = start_server(node_b)
    try:
        run_cli(
            "firmware", "add-ucupdate", str(image), "--model", "CX700",
            "--version", "1.0.522.300", "--site", str(node_a), check=True,
        )  # fmt: skip
        # Node B never saw the command: it reads the catalog's revision from the database.
        body = example_request(CX700, PHONE, "1.0.522.101").decode()
        deadline = time.monotonic() + 30
        offered = ""
        while offered != "1.0.522.300" and time.monotonic() < deadline:
            answer = curl("-H", "Content-Type: text/xml", "--data-binary", body,
                          f"{server_b.http}/RequestHandler/ucdevice.upx")  # fmt: skip
            offered = ET.fromstring(answer.stdout).findtext("Modules/Module/Version") or ""
            time.sleep(0.1)
        assert offered == "1.0.522.300"
        base = ET.fromstring(answer.stdout).findtext("Modules/Module/BaseURL") or ""
        fetched = subprocess.run(["curl", "-sS", "--fail", base], capture_output=True, timeout=30)
        assert fetched.returncode == 0, fetched.stderr
        assert fetched.stdout == image.read_bytes()
    finally:
        server_b.stop()


def test_ok_lync_catalog_changes_on_two_nodes_at_once_lose_nothing(
    empty_db: str, tmp_path: Path
) -> None:
    """Two stores on one database, no servers: concurrent assignments all land."""
    node_a = Settings(site_dir=tmp_path / "node-a", database=empty_db)
    image = tmp_path / "CPE.nbt"
    image.write_bytes(b"CX700 image" * 1000)
    add_package(node_a, [image], CX700, "1.0.522.101")
    first, second = open_database(empty_db), open_database(empty_db)
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def assign(worker: int) -> None:
        store = (first, second)[worker % 2]
        site = tmp_path / ("node-a", "node-b")[worker % 2]
        start.wait()
        try:
            for n in range(5):
                change_catalog(
                    store.lync_catalog,
                    site,
                    lambda c, g=f"g{worker}-{n}": c.with_assignment(CX700, "1.0.522.101", g),
                )
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    try:
        seen = Catalog.load(second.lync_catalog, tmp_path / "node-b")
        assert [p.version for p in seen.packages] == ["1.0.522.101"]  # added through node A
        workers = [threading.Thread(target=assign, args=(n,)) for n in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        assert failures == []
        final = Catalog.load(first.lync_catalog, tmp_path / "node-a")
        assert {a.group for a in final.assignments} == {""} | {
            f"g{w}-{n}" for w in range(4) for n in range(5)
        }
        assert final.revision == 1 + 20
    finally:
        first.close()
        second.close()
