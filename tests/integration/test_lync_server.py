"""The Lync/SfB device routes end to end: curl plays a CX700, openssl judges the chains.

Requests are built from the documented fields (docs/decisions/0007); the demo
site ships one CX700 package (UCPhone/Polycom/CX700/A/ENU 1.0.522.101, CPE.nbt).
One server per module keeps this part fast; tests that depend on "the device
last seen at 127.0.0.1" run on their own server.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from tests.serverkit import DEMO_MAC, Server, curl, make_site, run_cli, start_server, status_of

from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.pki.authority import LEGACY_DIR, CertificateAuthority
from phoneprov.protocols.lync import PackageKey, example_request
from phoneprov.store import Store, open_database

T = TypeVar("T")
KEY = PackageKey("UCPhone", "Polycom", "CX700", "A", "ENU")
DEMO_VERSION = "1.0.522.101"
CODE = ["-o", "/dev/null", "-w", "%{http_code}"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # The server reads the catalog's revision five times a second: a package added or
    # assigned from the CLI (in the database) is offered within 0.2 s.
    site = make_site(tmp_path_factory.mktemp("ucdevice") / "site", cluster={"catalog_refresh": 0.2})
    running = start_server(site)
    yield running
    running.stop()


def post(url: str, body: bytes, *extra: str) -> tuple[int, str]:
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--no-sessionid",
            "--max-time",
            "20",
            "-H",
            "Content-Type: text/xml",
            "--data-binary",
            "@-",
            "-w",
            "\n%{http_code}",
            *extra,
            url,
        ],
        input=body,
        capture_output=True,
        timeout=30,
    )
    text = result.stdout.decode()
    body_text, _, code = text.rpartition("\n")
    return int(code), body_text


def ask(server: Server, mac: str, version: str, *, key: PackageKey = KEY) -> ET.Element:
    status, text = post(
        f"{server.http}/RequestHandler/ucdevice.upx", example_request(key, MacAddress(mac), version)
    )
    assert status == 200, text
    return ET.fromstring(text)


def eventually(probe: Callable[[], T], timeout: float = 5.0) -> T:
    """The recorder writes in batches every 0.5 s: poll until ``probe`` is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def store_of(server: Server) -> Store:
    return open_database(f"sqlite:///{(server.site / 'phoneprov.db').resolve()}")


def test_ok_older_version_gets_internal_url_and_file(server: Server) -> None:
    answer = ask(server, "0004f2a00001", "1.0.522.73")
    assert answer.findtext("Status") == "UpdateAvailable"
    module = answer.find("Modules/Module")
    assert module is not None and module.get("Version") == DEMO_VERSION
    base = module.findtext("BaseURL") or ""
    assert base == (
        f"{server.http}/DeviceUpdateFiles_Int/UCPhone/Polycom/CX700/A/ENU/{DEMO_VERSION}/CPE"
    )
    expected = hashlib.sha256((server.site / "demo" / "CPE.nbt").read_bytes()).hexdigest()
    for url in (f"{base}/CPE.nbt", base):
        fetched = subprocess.run(["curl", "-sS", "--fail", url], capture_output=True, timeout=30)
        assert fetched.returncode == 0, fetched.stderr
        assert hashlib.sha256(fetched.stdout).hexdigest() == expected
    assert status_of(curl(*CODE, f"{base}/other.bin")) == 404
    assert status_of(curl(*CODE, base.replace(DEMO_VERSION, "9.9.9.9"))) == 404
    server.wait_for_log("access", 'path="/RequestHandler/ucdevice.upx" status=200')


@pytest.mark.parametrize(
    "version", [DEMO_VERSION, "3.5.6907.35"], ids=["ok/equal-up-to-date", "ok/newer-not-downgraded"]
)
def test_ok_equal_or_newer_is_up_to_date(server: Server, version: str) -> None:
    answer = ask(server, "0004f2a00002", version)
    assert answer.findtext("Status") == "UpToDate"
    assert answer.findtext("Modules/Module/BaseURL") == ""
    assert answer.findtext("Modules/Module/Version") == DEMO_VERSION


def test_ok_external_url_over_https(server: Server) -> None:
    site = server.site
    demo = site / "demo"
    tls = [
        "--cacert",
        str(site / "pki" / "ca.pem"),
        "--cert",
        str(demo / f"{DEMO_MAC}.pem"),
        "--key",
        str(demo / f"{DEMO_MAC}.key"),
    ]
    status, text = post(
        f"{server.https}/RequestHandlerExt/ucdevice.upx",
        example_request(KEY, MacAddress("0004f2a00003"), "1.0.522.73"),
        *tls,
    )
    assert status == 200, text
    external = ET.fromstring(text).findtext("Modules/Module/ExternalBaseURL") or ""
    assert external.startswith(f"{server.https}/DeviceUpdateFiles_Ext/UCPhone/Polycom/CX700/")
    fetched = curl(*tls, *CODE, f"{external}/CPE.nbt")
    assert status_of(fetched) == 200
    server.wait_for_log("access", "proto=https ip=127.0.0.1 identity=anonymous:0004f2a00003")


def test_ok_unknown_model_gets_empty_answer(server: Server) -> None:
    other = PackageKey("UCPhone", "Polycom", "CX3000", "A", "ENU")
    answer = ask(server, "0004f2a00004", "1.0", key=other)
    assert answer.findtext("Status") == "UpToDate"
    modules = answer.find("Modules")
    assert modules is not None and len(modules) == 0
    assert answer.findtext("Model") == "CX3000"


def test_fail_malformed_xml_400_with_position_and_only_an_event(server: Server) -> None:
    body = b"<Request>\n  <MACAddress>0004f2a00005</MACAddress>\n  <Model>CX700</Mdl>\n</Request>"
    status, text = post(f"{server.http}/RequestHandler/ucdevice.upx", body)
    assert status == 400
    assert "line 3, column 17" in text
    store = store_of(server)
    try:
        events = eventually(
            lambda: [e for e in store.events_for(limit=500) if e.kind == "ucupdate-malformed"]
        )
        assert events and "line 3, column 17" in events[0].detail
        assert store.lync.recent(MacAddress("0004f2a00005")) == []
        assert store.get_device(MacAddress("0004f2a00005")) is None
    finally:
        store.close()


def test_ok_request_recorded_with_raw_body(server: Server) -> None:
    ask(server, "0004f2a00006", "1.0.522.73")
    store = store_of(server)
    try:
        rows = store.lync.recent(MacAddress("0004f2a00006"))
        assert rows[0].outcome == "update" and "<Model>CX700</Model>" in rows[0].body
        device = eventually(lambda: store.get_device(MacAddress("0004f2a00006")))
        assert device is not None and device.model == "CX700"
        assert device.firmware == "1.0.522.73"
    finally:
        store.close()


def test_loop_flag_set_then_cleared(server: Server) -> None:
    mac = MacAddress("0004f2a00007")
    for _ in range(3):
        ask(server, mac.value, "1.0.522.73")
    store = store_of(server)
    try:
        assert eventually(lambda: "firmware-loop" in flags_of(store, mac))
        ask(server, mac.value, DEMO_VERSION)
        assert eventually(lambda: "firmware-loop" not in flags_of(store, mac))
        assert any(e.kind == "firmware-loop" for e in store.events_for(mac))
    finally:
        store.close()


def flags_of(store: Store, mac: MacAddress) -> tuple[str, ...]:
    device = store.get_device(mac)
    return device.flags if device is not None else ()


def test_staged_rollout_by_group_from_cli(server: Server, tmp_path: Path) -> None:
    pilot, other = MacAddress("0004f2a00008"), MacAddress("0004f2a00009")
    store = store_of(server)
    try:
        store.upsert_device(pilot, DeviceStatus.KNOWN, group_name="pilot")
    finally:
        store.close()
    image = tmp_path / "CPE.nbt"
    image.write_bytes(b"pilot image" * 100)
    added = run_cli(
        "firmware",
        "add-ucupdate",
        str(image),
        "--model",
        "CX700",
        "--version",
        "1.0.522.200",
        "--group",
        "pilot",
        "--site",
        str(server.site),
        "--format",
        "json",
        check=True,
    )
    assert '"version": "1.0.522.200"' in added.stdout
    listing = run_cli("firmware", "list-ucupdate", "--site", str(server.site), check=True)
    assert "1.0.522.200" in listing.stdout and "pilot" in listing.stdout
    staged = eventually(
        lambda: (
            ask(server, pilot.value, DEMO_VERSION).findtext("Modules/Module/Version")
            == "1.0.522.200"
        )
    )
    assert staged, "the running server never offered the package added through the CLI"
    assert ask(server, other.value, DEMO_VERSION).findtext("Status") == "UpToDate"
    run_cli(
        "firmware",
        "assign-ucupdate",
        "--model",
        "CX700",
        "--version",
        DEMO_VERSION,
        "--group",
        "pilot",
        "--site",
        str(server.site),
        check=True,
    )
    assert eventually(
        lambda: ask(server, pilot.value, DEMO_VERSION).findtext("Status") == "UpToDate"
    )
    assert not (server.site / "ucupdate" / "catalog.json").exists()  # the catalog is in the db


def test_fail_blocked_device_gets_nothing(server: Server) -> None:
    mac = MacAddress("0004f2a0000a")
    store = store_of(server)
    try:
        store.upsert_device(mac, DeviceStatus.BLOCKED)
    finally:
        store.close()
    answer = ask(server, mac.value, "1.0.522.73")
    assert answer.find("Modules") is not None and len(answer.find("Modules")) == 0  # type: ignore[arg-type]
    server.wait_for_log("security", "reason=device-blocked")


@pytest.mark.parametrize(
    ("status", "reason"),
    [(DeviceStatus.DENIED, "enrolment-denied"), (DeviceStatus.PENDING, "quarantined")],
    ids=["fail/denied", "fail/quarantined"],
)
def test_fail_refused_devices_logged_with_the_policy_reason(
    server: Server, status: DeviceStatus, reason: str
) -> None:
    """The update service asks the one policy table: its reasons are the other listeners'."""
    mac = MacAddress("0004f2a0000b" if status is DeviceStatus.DENIED else "0004f2a0000c")
    store = store_of(server)
    try:
        store.upsert_device(mac, status)
    finally:
        store.close()
    answer = ask(server, mac.value, "1.0.522.73")
    assert answer.find("Modules") is not None and len(answer.find("Modules")) == 0  # type: ignore[arg-type]
    server.wait_for_log("security", f"reason={reason}")
    assert "reason=device-denied" not in server.security_log()


def openssl_subjects(data: bytes, *args: str) -> str:
    result = subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def fetch(url: str, *extra: str) -> bytes:
    result = subprocess.run(["curl", "-sS", "--fail", *extra, url], capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_ok_ca_chain_downloads_parse_with_openssl(tmp_path: Path) -> None:
    """A device nobody knows as a CX700 gets the site chain (its own server: the
    module's server has seen CX700 requests from this address)."""
    server = start_server(make_site(tmp_path / "site"))
    try:
        _check_site_chain_downloads(server)
    finally:
        server.stop()


def _check_site_chain_downloads(server: Server) -> None:
    subject = "phoneprov Root CA (localhost)"
    p7b = fetch(f"{server.http}/certsrv/certnew.p7b")
    assert p7b.startswith(b"-----BEGIN PKCS7-----")
    assert subject in openssl_subjects(p7b, "pkcs7", "-print_certs", "-noout")
    der_p7b = fetch(f"{server.http}/certsrv/certnew.p7b?ReqID=CACert&Renewal=0&Enc=bin")
    assert subject in openssl_subjects(der_p7b, "pkcs7", "-inform", "DER", "-print_certs", "-noout")
    cer = fetch(f"{server.http}/certsrv/certnew.cer")
    assert subject in openssl_subjects(cer, "x509", "-inform", "DER", "-noout", "-subject")
    pem = fetch(f"{server.http}/certsrv/certnew.cer?Enc=b64")
    assert subject in openssl_subjects(pem, "x509", "-noout", "-subject")


def test_cx700_gets_the_legacy_chain(tmp_path: Path) -> None:
    """Per family: by User-Agent, and by a recent ucdevice request from the same address."""
    site = make_site(tmp_path / "site")
    shutil.rmtree(site / "pki" / LEGACY_DIR)  # the demo's legacy chain: start without one
    running = start_server(site)
    try:
        url = f"{running.http}/certsrv/certnew.p7b"
        modern = "phoneprov Root CA (localhost)"
        before = openssl_subjects(fetch(url, "-A", "Windows CE"), "pkcs7", "-print_certs", "-noout")
        assert modern in before  # no legacy chain yet: everyone gets the site chain
        CertificateAuthority.create(
            site / "pki" / LEGACY_DIR, common_name="Legacy Root", profile="legacy"
        )
        assert modern in openssl_subjects(fetch(url), "pkcs7", "-print_certs", "-noout")
        by_agent = openssl_subjects(
            fetch(url, "-A", "Microsoft Office Communicator Phone Edition"),
            "pkcs7",
            "-print_certs",
            "-text",
            "-noout",
        )
        assert "Legacy Root" in by_agent and "sha1WithRSAEncryption" in by_agent
        ask(running, "0004f2a0000b", "1.0.522.73")
        by_request = openssl_subjects(fetch(url), "pkcs7", "-print_certs", "-noout")
        assert "Legacy Root" in by_request
        running.wait_for_log("access", "identity=anonymous:legacy-chain")
        lint = run_cli(
            "cert", "lint", str(site / "pki" / LEGACY_DIR / "ca.pem"), "--device", "cx700"
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
    finally:
        running.stop()
