"""``phoneprov ca`` judged by the real ``openssl`` command: verify, pkcs7, crl, req."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from phoneprov.cli.app import app
from phoneprov.pki.inspect import POLYCOM_ISSUING_SHA1
from phoneprov.pki.revocation import revoked_serials
from phoneprov.pki.trust import POLYCOM_FILES

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
runner = CliRunner()
MAC = "0004f2abcdef"
POLYCOM_DIR = Path(__file__).resolve().parents[2] / "src" / "phoneprov" / "data" / "polycom-pki"


def openssl(
    *args: str, check: bool = True, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["openssl", *args],
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A bare site (settings only) with a fresh modern CA."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "phoneprov.toml").write_text('[site]\nfqdns = ["prov.example.com", "192.0.2.10"]\n')
    cli("ca", "init", "--site", str(root))
    return root


def test_ok_server_certificate_verifies_with_openssl(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "server.pem"
    cli(
        "ca",
        "issue-server",
        "--site",
        str(site),
        "--fqdn",
        "prov.example.com",
        "--fqdn",
        "prov2.example.com",
        "--ip",
        "192.0.2.10",
        "--out",
        str(out),
    )
    ca = site / "pki" / "ca.pem"
    assert openssl("verify", "-CAfile", str(ca), str(out)).stdout.strip() == f"{out}: OK"
    text = openssl(
        "x509", "-in", str(out), "-noout", "-subject", "-ext", "subjectAltName,extendedKeyUsage"
    ).stdout
    assert "subject=CN = prov.example.com" in text
    assert "DNS:prov.example.com, DNS:prov2.example.com, IP Address:192.0.2.10" in text
    assert "TLS Web Server Authentication" in text
    for key in (tmp_path / "server.key", site / "pki" / "ca.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    openssl("pkey", "-in", str(tmp_path / "server.key"), "-noout")


def test_ok_default_install_replaces_listener_pair(site: Path) -> None:
    cli(
        "ca", "issue-server", "--site", str(site), "--fqdn", "prov.example.com", "--key", "rsa-2048"
    )
    pem, key = site / "pki" / "server-rsa.pem", site / "pki" / "server-rsa.key"
    openssl("verify", "-CAfile", str(site / "pki" / "ca.pem"), str(pem))
    modulus = [
        openssl(kind, "-in", str(p), "-noout", "-modulus").stdout
        for kind, p in (("x509", pem), ("rsa", key))
    ]
    assert modulus[0] == modulus[1]


@pytest.mark.parametrize(
    ("name", "reason"),
    [("*.example.com", "wildcard"), ("prov_1.example.com", "not a DNS name")],
    ids=["fail/wildcard", "fail/not-dns"],
)
def test_fail_bad_server_names(site: Path, name: str, reason: str) -> None:
    result = runner.invoke(app, ["ca", "issue-server", "--site", str(site), "--fqdn", name])
    assert result.exit_code == 2
    assert reason in result.stderr


@pytest.mark.parametrize("fmt", ["p7b", "p7b-pem", "pem", "der"])
def test_ok_export_read_by_openssl(site: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"certnew.{fmt}"
    cli("ca", "export", "--site", str(site), "--format", fmt, "--out", str(out))
    if fmt.startswith("p7b"):
        inform = "DER" if fmt == "p7b" else "PEM"
        text = openssl("pkcs7", "-inform", inform, "-in", str(out), "-print_certs", "-noout").stdout
    else:
        text = openssl("x509", "-inform", fmt.upper(), "-in", str(out), "-noout", "-subject").stdout
    assert "CN = phoneprov Root CA (prov.example.com)" in text


def make_csr(tmp_path: Path, subject: str, name: str, key: str = "rsa:2048") -> Path:
    csr = tmp_path / name
    openssl(
        "req",
        "-new",
        "-newkey",
        key,
        "-nodes",
        "-sha256",
        "-subj",
        subject,
        "-keyout",
        str(tmp_path / f"{name}.key"),
        "-out",
        str(csr),
    )
    return csr


def test_ok_openssl_req_csr_signed(site: Path, tmp_path: Path) -> None:
    csr = make_csr(tmp_path, f"/CN={MAC}/O=Example", f"{MAC}.csr")
    out = tmp_path / "phone.pem"
    cli("ca", "sign-csr", str(csr), "--site", str(site), "--slot", "platform1", "--out", str(out))
    assert openssl("verify", "-CAfile", str(site / "pki" / "ca.pem"), str(out)).returncode == 0
    text = openssl("x509", "-in", str(out), "-noout", "-subject", "-ext", "extendedKeyUsage").stdout
    assert f"subject=CN = {MAC}" in text and "TLS Web Client Authentication" in text
    listing = json.loads(cli("ca", "list", "--site", str(site), "--format", "json"))
    record = listing["certificates"][-1]
    assert (record["kind"], record["mac"], record["slot"]) == ("csr", MAC, "platform1")


@pytest.mark.parametrize(
    ("subject", "file_name", "key", "message"),
    [
        ("/CN=0004f2000001", f"{MAC}.csr", "rsa:2048", "is not the MAC 0004f2abcdef"),
        (f"/CN={MAC}", f"{MAC}.csr", "rsa:1024", "RSA-1024"),
        ("/O=Example", "phone.csr", "rsa:2048", "no common name"),
    ],
    ids=["fail/cn-mac-mismatch", "fail/rsa-1024", "fail/no-cn"],
)
def test_fail_csr_refused(
    site: Path, tmp_path: Path, subject: str, file_name: str, key: str, message: str
) -> None:
    csr = make_csr(tmp_path, subject, file_name, key)
    result = runner.invoke(app, ["ca", "sign-csr", str(csr), "--site", str(site)])
    assert result.exit_code == 1
    assert message in result.stderr


def test_fail_tampered_csr(site: Path, tmp_path: Path) -> None:
    csr = make_csr(tmp_path, f"/CN={MAC}", f"{MAC}.csr")
    openssl("req", "-in", str(csr), "-outform", "DER", "-out", str(tmp_path / "csr.der"))
    der = bytearray((tmp_path / "csr.der").read_bytes())
    der[der.index(MAC.encode())] = ord("1")
    (tmp_path / "forged.csr").write_bytes(bytes(der))
    result = runner.invoke(
        app, ["ca", "sign-csr", str(tmp_path / "forged.csr"), "--site", str(site)]
    )
    assert result.exit_code == 1
    assert "signature is not valid" in result.stderr


def test_ok_revoke_by_mac_updates_crl(site: Path, tmp_path: Path) -> None:
    pki = site / "pki"
    assert revoked_serials(pki) == frozenset()
    csr = make_csr(tmp_path, f"/CN={MAC}", f"{MAC}.csr")
    out = tmp_path / "phone.pem"
    cli("ca", "sign-csr", str(csr), "--site", str(site), "--out", str(out))
    serial = x509.load_pem_x509_certificate(out.read_bytes()).serial_number
    revoked = json.loads(
        cli(
            "ca",
            "revoke",
            "--site",
            str(site),
            "--mac",
            MAC,
            "--reason",
            "key-compromise",
            "--format",
            "json",
        )
    )
    assert [int(r["serial"], 16) for r in revoked["revoked"]] == [serial]
    crl_text = openssl("crl", "-in", str(pki / "crl.pem"), "-noout", "-text").stdout
    assert f"{serial:X}" in crl_text.replace(":", "").upper()
    assert "Key Compromise" in crl_text
    openssl("crl", "-in", str(pki / "crl.pem"), "-noout", "-CAfile", str(pki / "ca.pem"))
    check = openssl(
        "verify",
        "-crl_check",
        "-CRLfile",
        str(pki / "crl.pem"),
        "-CAfile",
        str(pki / "ca.pem"),
        str(out),
        check=False,
    )
    assert check.returncode != 0 and "certificate revoked" in check.stdout + check.stderr
    assert revoked_serials(pki) == frozenset({serial})


def test_ok_revoke_serial_and_crl_command(site: Path, tmp_path: Path) -> None:
    cli(
        "ca",
        "issue-server",
        "--site",
        str(site),
        "--fqdn",
        "old.example.com",
        "--out",
        str(tmp_path / "old.pem"),
    )
    serial = openssl("x509", "-in", str(tmp_path / "old.pem"), "-noout", "-serial").stdout
    cli("ca", "revoke", serial.split("=")[1].strip(), "--site", str(site))
    out = tmp_path / "crl.pem"
    cli("ca", "crl", "--site", str(site), "--out", str(out))
    text = openssl(
        "crl", "-in", str(out), "-noout", "-text", "-CAfile", str(site / "pki" / "ca.pem")
    ).stdout
    assert serial.split("=")[1].strip() in text.replace(":", "").upper()
    result = runner.invoke(app, ["ca", "revoke", "ABCDEF", "--site", str(site)])
    assert result.exit_code == 2 and "was not issued" in result.stderr


def test_fail_init_refuses_existing_then_force_archives(site: Path) -> None:
    result = runner.invoke(app, ["ca", "init", "--site", str(site)])
    assert result.exit_code == 1 and "already exists" in result.stderr
    old = (site / "pki" / "ca.pem").read_bytes()
    cli("ca", "init", "--site", str(site), "--force", "--key", "rsa-3072", "--hash", "sha384")
    assert (site / "pki" / "ca.pem").read_bytes() != old
    archived = list((site / "pki").glob("replaced-*/ca.pem"))
    assert [p.read_bytes() for p in archived] == [old]
    text = openssl("x509", "-in", str(site / "pki" / "ca.pem"), "-noout", "-text").stdout
    assert "sha384WithRSAEncryption" in text and "Public-Key: (3072 bit)" in text


def test_ok_legacy_chain_is_sha1_rsa2048_and_lint_clean_for_cx700(
    site: Path, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["ca", "init", "--site", str(site), "--profile", "legacy"])
    assert result.exit_code == 0
    assert "SHA-1 is weak" in result.stderr
    out = tmp_path / "cx.pem"
    cli(
        "ca",
        "issue-server",
        "--site",
        str(site),
        "--chain",
        "legacy",
        "--fqdn",
        "prov.example.com",
        "--out",
        str(out),
    )
    legacy_ca = site / "pki" / "legacy" / "ca.pem"
    openssl("verify", "-CAfile", str(legacy_ca), str(out))
    for path in (legacy_ca, out):
        text = openssl("x509", "-in", str(path), "-noout", "-text").stdout
        assert "Signature Algorithm: sha1WithRSAEncryption" in text
        assert "Public-Key: (2048 bit)" in text
    assert stat.S_IMODE((site / "pki" / "legacy" / "ca.key").stat().st_mode) == 0o600
    cli("cert", "lint", str(out), str(legacy_ca), "--device", "cx700")
    modern = runner.invoke(app, ["cert", "lint", str(site / "pki" / "ca.pem"), "--device", "cx700"])
    assert modern.exit_code == 1
    p7b = tmp_path / "legacy.p7b"
    cli(
        "ca",
        "export",
        "--site",
        str(site),
        "--chain",
        "legacy",
        "--format",
        "p7b",
        "--out",
        str(p7b),
    )
    text = openssl("pkcs7", "-inform", "DER", "-in", str(p7b), "-print_certs", "-noout").stdout
    assert "Legacy Root CA" in text


def test_ok_shipped_polycom_chain_verifies_with_openssl() -> None:
    root, policy, *issuing = (POLYCOM_DIR / name for name in POLYCOM_FILES)
    for leaf in issuing:
        result = openssl("verify", "-CAfile", str(root), "-untrusted", str(policy), str(leaf))
        assert result.stdout.strip() == f"{leaf}: OK"
    thumbprints = {
        openssl("x509", "-in", str(p), "-noout", "-fingerprint", "-sha1")
        .stdout.split("=")[1]
        .strip()
        for p in issuing
    }
    assert thumbprints == POLYCOM_ISSUING_SHA1
