"""``phoneprov cert``: inspect (file and --host against openssl s_server), lint exit codes,
device-config read back by openssl, factory-revision."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from tests.pkitools import FactoryPki, make_device
from typer.testing import CliRunner

from phoneprov.cli.app import app
from phoneprov.model import MacAddress
from phoneprov.pki.authority import CertificateAuthority

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
runner = CliRunner()
MAC = "0004f2abcdef"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "phoneprov.toml").write_text('[site]\nfqdns = ["prov.example.com"]\n')
    CertificateAuthority.create(root / "pki", common_name="Site Root")
    return root


def inspect_json(path: Path, site: Path, code: int) -> dict[str, object]:
    result = runner.invoke(
        app, ["cert", "inspect", str(path), "--site", str(site), "--format", "json"]
    )
    assert result.exit_code == code, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_ok_inspect_our_device_cert_json(site: Path, tmp_path: Path) -> None:
    issued = CertificateAuthority.load(site / "pki").issue_device(MacAddress(MAC))
    path = tmp_path / "phone.pem"
    path.write_bytes(issued.cert_pem)
    data = inspect_json(path, site, 0)
    assert data["verdict"] == "custom" and data["mac"] == MAC
    assert data["subject"] == f"CN={MAC}" and data["issuer"] == "CN=Site Root"
    assert data["not_after"] == issued.cert.not_valid_after_utc.isoformat()
    fingerprints = data["fingerprints"]
    assert isinstance(fingerprints, dict)
    for algorithm in ("md5", "sha1", "sha256"):
        shown = subprocess.run(
            ["openssl", "x509", "-in", str(path), "-noout", "-fingerprint", f"-{algorithm}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert shown.strip().endswith("=" + fingerprints[algorithm])


def test_ok_inspect_self_signed_and_fail_expired(
    site: Path, tmp_path: Path, factory: FactoryPki
) -> None:
    own = make_device(factory.issuing, MAC, self_signed=True)
    path, _ = own.write(tmp_path, "self")
    assert inspect_json(path, site, 0)["verdict"] == "self-signed"
    old = make_device(
        factory.issuing,
        MAC,
        self_signed=True,
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=100),
        days=10,
    )
    path, _ = old.write(tmp_path, "old")
    data = inspect_json(path, site, 1)
    assert data["verdict"] == "invalid" and str(data["reason"]).startswith("expired on")


def test_fail_inspect_factory_lookalike_without_polycom_keys(
    site: Path, tmp_path: Path, factory: FactoryPki
) -> None:
    """Polycom's names but not Polycom's keys: the shipped, pinned chain rejects it."""
    path, _ = factory.device(MAC).write(tmp_path, "fake")
    data = inspect_json(path, site, 1)
    assert data["verdict"] == "invalid" and "bad signature" in str(data["reason"])


def test_fail_inspect_malformed(site: Path, tmp_path: Path) -> None:
    path = tmp_path / "junk.pem"
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    data = inspect_json(path, site, 1)
    assert data["verdict"] == "invalid" and str(data["reason"]).startswith("malformed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def s_server(site: Path, tmp_path: Path) -> Iterator[int]:
    """``openssl s_server`` presenting a server certificate from the site's CA."""
    ca = CertificateAuthority.load(site / "pki")
    cert, key = ca.write_server_pair(tmp_path, ca.issue_server(["localhost"]), "srv")
    port = free_port()
    proc = subprocess.Popen(
        [
            "openssl",
            "s_server",
            "-accept",
            f"127.0.0.1:{port}",
            "-cert",
            str(cert),
            "-key",
            str(key),
            "-quiet",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, "s_server did not start"
            time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=5)


def test_ok_inspect_host(site: Path, s_server: int) -> None:
    result = runner.invoke(
        app,
        [
            "cert",
            "inspect",
            "--host",
            f"127.0.0.1:{s_server}",
            "--site",
            str(site),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["subject"] == "CN=localhost" and data["issuer"] == "CN=Site Root"
    # A server certificate's CN is no MAC; for a device verdict it is still "custom".
    assert (data["verdict"], data["mac"]) == ("custom", None)


def test_lint_exit_codes(site: Path, tmp_path: Path) -> None:
    polycom_root = Path(__file__).resolve().parents[2] / "src/phoneprov/data/polycom-pki/root.pem"
    clean = runner.invoke(app, ["cert", "lint", str(polycom_root), "--device", "vvx"])
    assert clean.exit_code == 0, clean.stdout
    dirty = runner.invoke(
        app, ["cert", "lint", str(polycom_root), "--device", "cx700", "--format", "json"]
    )
    assert dirty.exit_code == 1
    problems = json.loads(dirty.stdout)["problems"]
    assert problems[0]["problem"].startswith("root Polycom Root CA is RSA-4096/SHA-256")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    unreadable = runner.invoke(app, ["cert", "lint", str(junk)])
    assert unreadable.exit_code == 2 and "holds no certificate" in unreadable.stderr


def test_ok_device_config_read_back_by_openssl(site: Path, tmp_path: Path) -> None:
    ca = CertificateAuthority.load(site / "pki")
    cert, key = ca.write_server_pair(
        tmp_path, ca.issue_device(MacAddress(MAC), key="rsa-2048"), "phone"
    )
    out = tmp_path / "cert.cfg"
    result = runner.invoke(
        app,
        [
            "cert",
            "device-config",
            "--cert",
            str(cert),
            "--key",
            str(key),
            "--slot",
            "platform1",
            "--ucs",
            "4",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    match = re.search(r'publicCert="(-----BEGIN PKCS7-----.*?-----END PKCS7-----)"', text, re.S)
    assert match is not None
    printed = subprocess.run(
        ["openssl", "pkcs7", "-print_certs", "-noout"],
        input=match.group(1) + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"subject=CN = {MAC}" in printed
    big = tmp_path / "big.key"
    body = ("A" * 64 + "\n") * 70
    big.write_text(f"-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\n")
    refused = runner.invoke(
        app,
        ["cert", "device-config", "--cert", str(cert), "--key", str(big), "--slot", "platform1"],
    )
    assert refused.exit_code == 2
    assert f"is {len(big.read_bytes())} bytes; the phone accepts at most 4096" in refused.stderr


def test_factory_revision_cli() -> None:
    ok = runner.invoke(
        app,
        ["cert", "factory-revision", "--part", "2201-44500-001", "--rev", "C", "--format", "json"],
    )
    assert ok.exit_code == 0
    data = json.loads(ok.stdout)
    assert (data["platform"], data["first_revision"], data["has_factory_cert"]) == (
        "VVX 500",
        "B",
        True,
    )
    unknown = runner.invoke(
        app, ["cert", "factory-revision", "--part", "2201-44500-009", "--rev", "C"]
    )
    assert unknown.exit_code == 2 and "2201-44500-001" in unknown.stderr


def test_ok_p7b_of_device_chain_is_pem_wrapped(factory: FactoryPki, tmp_path: Path) -> None:
    device = factory.device(MAC, kind="rsa")
    cert, key = device.write(tmp_path, "factory")
    result = runner.invoke(
        app,
        [
            "cert",
            "device-config",
            "--cert",
            str(cert),
            "--key",
            str(key),
            "--slot",
            "app2",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    value = json.loads(result.stdout)["parameters"]["sec.TLS.customDeviceCert.2"]
    printed = subprocess.run(
        ["openssl", "pkcs7", "-print_certs", "-noout"],
        input=value + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed.count("subject=") == 3
    assert (
        device.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
        .strip()
        == json.loads(result.stdout)["parameters"]["sec.TLS.customDeviceKey.2"]
    )
