"""The pure judgments of `phoneprov doctor` on a server's chain: links, names, dates,
phone-family compatibility, the CertificateRequest."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from tests.pkitools import NOW, Issuer, make_ca, new_key

from phoneprov.pki.trust import polycom_chain
from phoneprov.provisioning.doctor.chain import (
    chain_findings,
    client_auth_findings,
    compat_findings,
    name_findings,
    validity_findings,
)
from phoneprov.provisioning.doctor.finding import exit_code, summary

ROOT = make_ca("Site Root", kind="rsa")
ISSUING = make_ca("Site Issuing CA", ROOT, kind="rsa")
STRAY = make_ca("Stray Root", kind="rsa")


def leaf(
    issuer: Issuer,
    names: tuple[str, ...] = ("prov.example.com", "192.0.2.10"),
    *,
    san: bool = True,
    start: dt.datetime | None = None,
    days: int = 365,
) -> x509.Certificate:
    key = new_key("ec")
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    begin = start or NOW - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(begin)
        .not_valid_after(begin + dt.timedelta(days=days))
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
    return builder.sign(issuer.key, hashes.SHA256())


SERVER = leaf(ISSUING)


@pytest.mark.parametrize(
    ("case", "sent", "severity", "words"),
    [
        ("ok/leaf-and-intermediate-to-anchor", [SERVER, ISSUING.cert], "pass", "complete"),
        ("ok/root-sent-too", [SERVER, ISSUING.cert, ROOT.cert], "pass", "harmless"),
        ("fail/missing-intermediate", [SERVER], "fail", "incomplete"),
        ("fail/out-of-order", [SERVER, ROOT.cert, ISSUING.cert], "fail", "did not issue"),
        ("fail/untrusted-root-sent", [leaf(STRAY), STRAY.cert], "fail", "not the site root"),
        ("fail/nothing-sent", [], "fail", "no certificate"),
    ],
)
def test_chain_as_sent(case: str, sent: list[x509.Certificate], severity: str, words: str) -> None:
    findings, full = chain_findings(
        "RSA", sent, [ROOT.cert], anchor_what="the site root", fix="reissue"
    )
    assert {f.severity for f in findings} == {severity}, findings
    assert any(words in f.message for f in findings)
    if case == "ok/leaf-and-intermediate-to-anchor":
        assert full == [SERVER, ISSUING.cert, ROOT.cert]


@pytest.mark.parametrize(
    ("case", "cert", "names", "severity"),
    [
        ("ok/dns-and-ip", SERVER, ("prov.example.com", "192.0.2.10"), "pass"),
        ("ok/case-and-trailing-dot", SERVER, ("PROV.example.com.",), "pass"),
        ("fail/name-missing", SERVER, ("prov.example.com", "prov2.example.com"), "fail"),
        ("fail/ip-only-as-dns", leaf(ISSUING, ("prov.example.com",)), ("192.0.2.10",), "fail"),
        ("warn/wildcard-only", leaf(ISSUING, ("*.example.com",)), ("prov.example.com",), "warn"),
        (
            "fail/wildcard-is-one-label",
            leaf(ISSUING, ("*.example.com",)),
            ("a.b.example.com",),
            "fail",
        ),
        (
            "warn/cn-only-no-san",
            leaf(ISSUING, ("prov.example.com",), san=False),
            ("prov.example.com",),
            "warn",
        ),
    ],
)
def test_names(case: str, cert: x509.Certificate, names: tuple[str, ...], severity: str) -> None:
    finding = name_findings("RSA", cert, names, "fix")
    assert finding.severity == severity, finding.message


@pytest.mark.parametrize(
    ("case", "cert", "severity", "words"),
    [
        ("ok/valid-a-year", SERVER, "pass", "every certificate is valid"),
        ("fail/expired", leaf(ISSUING, start=NOW - dt.timedelta(days=400)), "fail", "expired"),
        (
            "fail/not-yet-valid",
            leaf(ISSUING, start=NOW + dt.timedelta(days=2)),
            "fail",
            "not valid before",
        ),
        (
            "warn/expires-in-10-days",
            leaf(ISSUING, start=NOW - dt.timedelta(days=355)),
            "warn",
            "expires in 9 day(s)",
        ),
    ],
)
def test_validity(case: str, cert: x509.Certificate, severity: str, words: str) -> None:
    findings = validity_findings("RSA", [cert, ISSUING.cert], NOW, "reissue")
    assert [f.severity for f in findings] == [severity]
    assert words in findings[0].message


def _rsa_root(bits: int) -> Issuer:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"RSA-{bits} Root")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Issuer(cert, key)


def test_fail_cx700_cannot_read_rsa4096_sha256_root() -> None:
    root = _rsa_root(4096)
    chain = [leaf(root), root.cert]
    findings = compat_findings("RSA", chain, ["cx700", "vvx"], NOW, severity="fail")
    assert [f.severity for f in findings] == ["fail"]
    message = findings[0].message
    assert "RSA-4096/SHA-256" in message and "CX700" in message
    assert "--profile legacy" in findings[0].fix


def test_compat_severity_follows_whose_phones() -> None:
    chain = [SERVER, ISSUING.cert, ROOT.cert]  # EC leaf: SoundPoint IP reads RSA only
    strict = compat_findings("ECDSA", chain, ["soundpoint"], NOW, severity="fail")
    loose = compat_findings("ECDSA", chain, ["soundpoint"], NOW, severity="warn")
    assert [f.severity for f in strict] == ["fail"] and [f.severity for f in loose] == ["warn"]
    assert (
        compat_findings("ECDSA", chain, ["vvx", "trio"], NOW, severity="fail")[0].severity == "pass"
    )
    assert compat_findings("ECDSA", chain, [], NOW, severity="fail") == []


POLYCOM = polycom_chain()


def _der(cert: x509.Certificate) -> tuple[str, bytes]:
    return cert.subject.rfc4514_string(), cert.subject.public_bytes()


@pytest.mark.parametrize(
    ("case", "requested", "names", "required", "severity"),
    [
        ("fail/not-requested-by-site", False, [], True, "fail"),
        ("warn/not-requested-by-foreign-server", False, [], False, "warn"),
        ("ok/requested-no-names", True, [], True, "pass"),
        ("ok/polycom-names", True, [_der(c) for c in POLYCOM], False, "pass"),
        ("warn/stray-names-only", True, [_der(STRAY.cert)], False, "warn"),
    ],
)
def test_client_certificate_request(
    case: str, requested: bool, names: list[tuple[str, bytes]], required: bool, severity: str
) -> None:
    finding = client_auth_findings(requested, names, POLYCOM, required=required)
    assert finding.severity == severity, finding.message
    if case == "ok/polycom-names":
        assert "Polycom Root CA" in finding.message


def test_exit_code_follows_the_worst_finding() -> None:
    ok = name_findings("RSA", SERVER, ("prov.example.com",), "")
    warn = name_findings("RSA", leaf(ISSUING, ("*.example.com",)), ("a.example.com",), "")
    fail = name_findings("RSA", SERVER, ("other.example.com",), "")
    assert exit_code([]) == 0 and exit_code([ok]) == 0
    assert exit_code([ok, warn]) == 1 and exit_code([warn, fail, ok]) == 2
    assert summary([ok, warn, fail, fail]) == {"pass": 1, "warn": 1, "fail": 2}
