"""Device-certificate verdicts: factory / self-signed / custom / invalid, from the leaf alone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from tests.pkitools import FactoryPki, make_ca, make_device

from phoneprov.model import CertKind, MacAddress
from phoneprov.pki.authority import CertificateAuthority
from phoneprov.pki.inspect import PolycomAnchors, classify_device_cert
from phoneprov.pki.trust import polycom_chain

NOW = dt.datetime.now(dt.UTC)
MAC = "0004f2abcdef"


def anchors_of(factory: FactoryPki) -> PolycomAnchors:
    return PolycomAnchors.from_chain(factory.root.cert, factory.policy.cert, [factory.issuing.cert])


def tamper(cert: x509.Certificate) -> x509.Certificate:
    """Flip the last byte of the signature: the certificate parses, the signature fails."""
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    return x509.load_der_x509_certificate(bytes(der))


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path_factory.mktemp("pki"), common_name="Test Root")


def test_ok_factory_leaf_only(factory: FactoryPki) -> None:
    device = factory.device(MAC, kind="rsa")
    verdict = classify_device_cert(
        device.cert, [], our_roots=[], now=NOW, polycom=anchors_of(factory)
    )
    assert verdict.verdict == "factory"
    assert verdict.mac == MacAddress(MAC)
    assert verdict.cert_kind is CertKind.FACTORY
    assert "Polycom Equipment Issuing CA 1" in verdict.reason


def test_ok_self_signed_mac(factory: FactoryPki) -> None:
    device = make_device(factory.issuing, MAC, self_signed=True)
    verdict = classify_device_cert(
        device.cert, [], our_roots=[], now=NOW, polycom=anchors_of(factory)
    )
    assert (verdict.verdict, verdict.origin) == ("self-signed", "self-signed")


def test_ok_custom_from_our_ca(factory: FactoryPki, ours: CertificateAuthority) -> None:
    issued = ours.issue_device(MacAddress(MAC))
    verdict = classify_device_cert(
        issued.cert, [], our_roots=[ours.cert], now=NOW, polycom=anchors_of(factory)
    )
    assert verdict.verdict == "custom"
    assert verdict.cert_kind is CertKind.OURS


def test_fail_expired_factory_keeps_origin(factory: FactoryPki) -> None:
    device = factory.device(MAC, not_before=NOW - dt.timedelta(days=400), days=30)
    verdict = classify_device_cert(
        device.cert, [], our_roots=[], now=NOW, polycom=anchors_of(factory)
    )
    assert verdict.verdict == "invalid"
    assert verdict.reason.startswith("expired on ")
    assert verdict.expired and verdict.origin == "factory"


def test_fail_not_yet_valid(factory: FactoryPki) -> None:
    device = factory.device(MAC, not_before=NOW + dt.timedelta(days=2))
    verdict = classify_device_cert(
        device.cert, [], our_roots=[], now=NOW, polycom=anchors_of(factory)
    )
    assert verdict.verdict == "invalid" and "not valid before" in verdict.reason


def test_fail_tampered_factory_cert(factory: FactoryPki) -> None:
    device = factory.device(MAC)
    verdict = classify_device_cert(
        tamper(device.cert), [], our_roots=[], now=NOW, polycom=anchors_of(factory)
    )
    assert verdict.verdict == "invalid"
    assert verdict.reason.startswith("bad signature")


def test_fail_tampered_self_signed(factory: FactoryPki) -> None:
    device = make_device(factory.issuing, MAC, self_signed=True)
    forged = tamper(device.cert)
    verdict = classify_device_cert(forged, [], our_roots=[], now=NOW, polycom=anchors_of(factory))
    assert verdict.verdict == "invalid" and "bad signature" in verdict.reason


def test_fail_counterfeit_issuing_ca_with_polycom_name(factory: FactoryPki) -> None:
    """Same names as Polycom's, other keys: the issuer chain does not link to the real root."""
    fake_root = make_ca("Polycom Root CA", kind="rsa")
    fake_policy = make_ca("Polycom Equipment Policy CA", fake_root, kind="rsa")
    fake_issuing = make_ca("Polycom Equipment Issuing CA 1", fake_policy, kind="rsa")
    device = make_device(fake_issuing, MAC)
    verdict = classify_device_cert(
        device.cert,
        [fake_issuing.cert, fake_policy.cert],
        our_roots=[],
        now=NOW,
        polycom=anchors_of(factory),
    )
    assert verdict.verdict == "invalid"
    assert "bad signature" in verdict.reason


def test_fail_unknown_thumbprint_under_polycom_root(factory: FactoryPki) -> None:
    """Chains to the root through the policy CA, but the issuing CA's thumbprint is not pinned."""
    rogue = make_ca("Polycom Equipment Issuing CA 3", factory.policy, kind="rsa")
    device = make_device(rogue, MAC)
    verdict = classify_device_cert(
        device.cert, [rogue.cert], our_roots=[], now=NOW, polycom=anchors_of(factory)
    )
    assert verdict.verdict == "invalid"
    assert "thumbprint" in verdict.reason


def test_fail_unknown_issuer(factory: FactoryPki) -> None:
    stranger = make_ca("Some Other CA")
    device = make_device(stranger, MAC)
    verdict = classify_device_cert(
        device.cert, [], our_roots=[], now=NOW, polycom=anchors_of(factory)
    )
    assert verdict.verdict == "invalid"
    assert verdict.reason.startswith("unknown issuer")
    assert verdict.cert_kind is CertKind.OTHER


def test_fail_ca_certificate_is_not_a_device(ours: CertificateAuthority) -> None:
    verdict = classify_device_cert(ours.cert, [], our_roots=[ours.cert], now=NOW)
    assert verdict.verdict == "invalid" and "CA certificate" in verdict.reason


def test_ok_shipped_polycom_chain_is_pinned_and_links() -> None:
    anchors = PolycomAnchors.shipped()
    root, policy, one, two = polycom_chain()
    assert anchors.root == root
    assert anchors.intermediates == (policy, one, two)
    assert anchors.is_known_issuing(one) and anchors.is_known_issuing(two)
    assert not anchors.is_known_issuing(policy)


def test_fail_our_cert_judged_against_shipped_anchors_when_not_ours(
    ours: CertificateAuthority,
) -> None:
    """Without our root in ``our_roots`` our own certificate is an unknown issuer."""
    issued = ours.issue_device(MacAddress(MAC))
    verdict = classify_device_cert(issued.cert, [], our_roots=[], now=NOW)
    assert verdict.verdict == "invalid" and "unknown issuer" in verdict.reason


def test_ok_legacy_sha1_custom_is_verified(tmp_path: Path) -> None:
    """SHA-1 signatures (legacy chain) are checked too, not refused."""
    legacy = CertificateAuthority.create(tmp_path, common_name="Legacy", profile="legacy")
    issued = legacy.issue_server(["cx.example.com"], key="rsa-2048")
    assert issued.cert.signature_hash_algorithm is not None
    assert issued.cert.signature_hash_algorithm.name == "sha1"
    verdict = classify_device_cert(issued.cert, [], our_roots=[legacy.cert], now=NOW)
    assert verdict.origin == "custom"
