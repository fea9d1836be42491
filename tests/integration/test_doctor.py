"""`phoneprov doctor` against real servers: a good site, broken chains, a CX700 with a 4096-bit
root, missing firmware, loose key modes, and nginx checked with --url."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from tests.integration.doctorkit import (
    by_check,
    cli,
    doctor,
    load_ca,
    not_passed,
    serve,
    server_leaf,
    start_nginx,
    write_pair,
)
from tests.pkitools import make_ca
from tests.serverkit import Server

from phoneprov.pki.authority import CertificateAuthority

MASTER = (
    b'<?xml version="1.0"?>\n<APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="initial.cfg"/>\n'
)


@pytest.fixture
def good_site(site: Path) -> Path:
    """The demo site as `init --demo` makes it: every check passes on it."""
    return site


@pytest.fixture
def good_server(good_site: Path) -> Iterator[Server]:
    running = serve(good_site)
    yield running
    running.stop()


def test_ok_good_site_every_check_passes(good_server: Server) -> None:
    code, report = doctor("--site", str(good_server.site))
    assert not_passed(report) == []
    assert code == 0 and report["exit_code"] == 0
    checks = {f["check"] for f in report["findings"]}
    assert {
        "listener-https",
        "listener-http",
        "listener-ftp",
        "listener-tftp",
        "tls-chain",
        "tls-names",
        "tls-validity",
        "tls-compat",
        "tls-client-cert",
        "trust-polycom",
        "config-master",
        "config-initial",
        "clock",
        "dhcp",
        "firmware",
        "cx700-chain",
        "disk",
        "key-permissions",
    } <= checks
    # Both server certificates were seen, each complete up to the site root.
    chains = [f["message"] for f in by_check(report, "tls-chain")]
    assert [m.split(":")[0] for m in chains] == ["RSA", "ECDSA"]
    assert all("phoneprov Root CA (localhost)" in m for m in chains)
    tftp = by_check(report, "listener-tftp")[0]["message"]
    assert "DATA" in tftp or "ERROR" in tftp


def test_ok_text_output_names_each_check_and_exit_code(good_server: Server) -> None:
    code, out = cli("doctor", "--site", str(good_server.site), "--timeout", "2")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == f"phoneprov doctor: site {good_server.site}"
    assert any(line.startswith("PASS  tls-chain") for line in lines)
    assert lines[-1].endswith("0 warn, 0 fail")


def _replace_rsa_with(site: Path, chain: list, key: object) -> None:  # type: ignore[type-arg]
    write_pair(site / "pki" / "server-rsa.pem", chain, key)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "case",
    [
        "fail/cert-from-other-ca",
        "fail/chain-file-missing-intermediate",
        "ok/chain-file-with-intermediate",
    ],
)
def test_server_chain_as_sent(good_site: Path, case: str) -> None:
    if case == "fail/cert-from-other-ca":
        stray = make_ca("Stray Issuing CA", kind="rsa")
        leaf, key = server_leaf(stray)
        _replace_rsa_with(good_site, [leaf], key)
    else:
        intermediate = make_ca("Site Issuing CA", load_ca(good_site), kind="rsa")
        leaf, key = server_leaf(intermediate)
        sent = (
            [leaf] if case == "fail/chain-file-missing-intermediate" else [leaf, intermediate.cert]
        )
        _replace_rsa_with(good_site, sent, key)
    server = serve(good_site)
    try:
        code, report = doctor("--site", str(good_site))
    finally:
        server.stop()
    rsa = [f for f in by_check(report, "tls-chain") if f["message"].startswith("RSA")]
    ecdsa = [f for f in by_check(report, "tls-chain") if f["message"].startswith("ECDSA")]
    assert [f["severity"] for f in ecdsa] == ["pass"]
    if case.startswith("ok/"):
        assert code == 0, not_passed(report)
        assert "Site Issuing CA -> phoneprov Root CA" in rsa[0]["message"]
        return
    assert code == 2
    assert [f["severity"] for f in rsa] == ["fail"]
    issuer = "Stray Issuing CA" if "other-ca" in case else "Site Issuing CA"
    assert "incomplete" in rsa[0]["message"] and issuer in rsa[0]["message"]
    assert "phoneprov ca issue-server" in rsa[0]["fix"]


def test_fail_cx700_with_rsa4096_sha256_root(site: Path) -> None:
    """The demo site has a CX700 package; a 4096/SHA-256 root is unreadable for it."""
    pki = site / "pki"
    shutil.rmtree(pki / "legacy")
    CertificateAuthority.create(pki, common_name="Big Root", key="rsa-4096", force=True)
    code, report = doctor("--site", str(site), timeout="0.5")
    assert code == 2
    cx700 = by_check(report, "cx700-chain")
    assert cx700 and all(f["severity"] == "fail" for f in cx700)
    message = " ".join(f["message"] for f in cx700)
    assert "RSA-4096/SHA-256" in message and "CX700" in message
    fix = cx700[0]["fix"]
    assert "phoneprov ca init --profile legacy" in fix  # a legacy chain for those devices
    assert "endpoint whose certificate they can read" in fix  # or another endpoint
    # With the legacy chain, the CX700 check passes.
    CertificateAuthority.create(pki / "legacy", common_name="Legacy Root", profile="legacy")
    _, report = doctor("--site", str(site), timeout="0.5")
    assert [f["severity"] for f in by_check(report, "cx700-chain")] == ["pass"]


def test_firmware_for_inventory_models(site: Path, tmp_path: Path) -> None:
    image = tmp_path / "sip.ld"
    image.write_bytes(b"\x00firmware image" * 64)
    for args in (("add", str(image)), ("assign",)):
        code, out = cli(
            "firmware", *args, "--version", "5.9.8.5760", "--models", "VVX410", "--site", str(site)
        )
        assert code == 0, out
    _, report = doctor("--site", str(site), timeout="0.5")
    firmware = {f["severity"]: f for f in by_check(report, "firmware")}
    warned = [f["message"] for f in by_check(report, "firmware") if f["severity"] == "warn"]
    assert len(warned) == 2 and any("SPIP550" in m for m in warned)
    assert any("Trio8800" in m for m in warned) and "fail" not in firmware
    # The image of an assigned version disappears: phones would get 404 for it.
    for blob in (site / "firmware").glob("*.ld"):
        blob.unlink()
    code, report = doctor("--site", str(site), timeout="0.5")
    failed = [f for f in by_check(report, "firmware") if f["severity"] == "fail"]
    assert code == 2 and len(failed) == 1
    assert "VVX410" in failed[0]["message"] and "5.9.8.5760" in failed[0]["message"]
    assert "phoneprov firmware add" in failed[0]["fix"]


def test_fail_loose_key_permissions(site: Path) -> None:
    loose = site / "pki" / "server-rsa.key"
    loose.chmod(0o644)
    (site / "pki" / "digest-nonce.key").chmod(0o640)
    code, report = doctor("--site", str(site), timeout="0.5")
    finding = by_check(report, "key-permissions")[0]
    assert code == 2 and finding["severity"] == "fail"
    assert f"{loose} (0644)" in finding["message"]
    assert "digest-nonce.key (0640)" in finding["message"]
    assert finding["fix"].startswith("chmod 600 ") and str(loose) in finding["fix"]
    loose.chmod(0o600)
    (site / "pki" / "digest-nonce.key").chmod(0o600)
    _, report = doctor("--site", str(site), timeout="0.5")
    assert by_check(report, "key-permissions")[0]["severity"] == "pass"


# --- --url against nginx --------------------------------------------------------------------


def _pem_bundle(paths: list[Path], out: Path) -> Path:
    out.write_bytes(b"".join(p.read_bytes() for p in paths))
    return out


@pytest.mark.parametrize(
    "case",
    ["ok/verify-client-on-polycom-names", "warn/optional-no-ca-stray-names", "warn/no-client-cert"],
)
def test_url_against_nginx(good_site: Path, tmp_path: Path, case: str) -> None:
    docroot = tmp_path / "www"
    docroot.mkdir()
    (docroot / "000000000000.cfg").write_bytes(MASTER)
    trust = _pem_bundle(sorted((good_site / "trust").glob("*.pem")), tmp_path / "clients.pem")
    stray = tmp_path / "stray.pem"
    stray.write_bytes(make_ca("Stray Client CA").cert.public_bytes(serialization.Encoding.PEM))
    directives = {
        "ok/verify-client-on-polycom-names": (
            f"ssl_verify_client on; ssl_verify_depth 4; ssl_client_certificate {trust};"
        ),
        "warn/optional-no-ca-stray-names": (
            f"ssl_verify_client optional_no_ca; ssl_client_certificate {stray};"
        ),
        "warn/no-client-cert": "",
    }[case]
    pki = good_site / "pki"
    nginx = start_nginx(
        tmp_path / "nginx", pki / "server-rsa.pem", pki / "server-rsa.key", directives, docroot
    )
    try:
        code, report = doctor("--url", nginx.url, "--site", str(good_site))
    finally:
        nginx.stop()
    client = by_check(report, "tls-client-cert")[0]
    master = by_check(report, "config-master")[0]
    assert master["severity"] == "pass" and "initial.cfg" in master["message"]
    assert [f["severity"] for f in by_check(report, "tls-chain")] == ["pass"]  # RSA only
    if case.startswith("ok/"):
        assert code == 0, not_passed(report)
        assert "Polycom Root CA" in client["message"]
        assert "CN=Polycom Equipment Issuing CA 1" in client["message"]
        return
    assert code == 1 and client["severity"] == "warn"
    if "stray" in case:
        assert "CN=Stray Client CA" in client["message"] and "403.16" in client["message"]
    else:
        assert "does not ask for a client certificate" in client["message"]
        assert "ssl_verify_client on" in client["fix"]


def test_url_names_and_incomplete_chain_of_foreign_server(tmp_path: Path) -> None:
    """No site: a public-looking chain missing its intermediate, with the wrong name."""
    root = make_ca("Foreign Root", kind="rsa")
    issuing = make_ca("Foreign Issuing CA", root, kind="rsa")
    leaf, key = server_leaf(issuing, ("prov.example.com",))
    cert = tmp_path / "leaf.pem"
    key_path = write_pair(cert, [leaf], key)
    docroot = tmp_path / "www"
    docroot.mkdir()
    nginx = start_nginx(tmp_path / "nginx", cert, key_path, "", docroot)
    try:
        code, report = doctor("--url", nginx.url, "--site", str(tmp_path / "no-site"))
    finally:
        nginx.stop()
    assert code == 2
    assert by_check(report, "tls-chain")[0]["severity"] == "fail"
    names = by_check(report, "tls-names")[0]
    assert names["severity"] == "fail" and "127.0.0.1" in names["message"]
    assert by_check(report, "config-master")[0]["severity"] == "fail"  # nginx: 404
    assert "404" in by_check(report, "config-master")[0]["message"]
