"""The site's certificate authority as services: one call per ``phoneprov ca`` action.

Create the root (and install it as a trust anchor), issue server certificates,
sign phone CSRs, revoke and publish the CRL, list and export what the CA holds,
and issue device certificates for simulated phones. Each call loads the CA from
the site's pki directory, does the whole action and returns a frozen value the
CLI (and the admin API) renders; failures are PhoneprovError subclasses whose
hint says the fix.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

from phoneprov.config import Settings
from phoneprov.errors import ConfigError, InputError
from phoneprov.model import MacAddress
from phoneprov.pki.authority import LEGACY_DIR, CertificateAuthority
from phoneprov.pki.chain import fingerprints
from phoneprov.pki.enrolment import DEVICE_DAYS, sign_csr
from phoneprov.pki.export import export_chain
from phoneprov.pki.files import write_atomic, write_private
from phoneprov.pki.index import CertRecord
from phoneprov.pki.keys import describe_public_key
from phoneprov.pki.profiles import check_slot
from phoneprov.pki.revocation import crl_path
from phoneprov.pki.trust import install_trust_anchors
from phoneprov.provisioning import trail
from phoneprov.provisioning.authority import index_factory, site_authority
from phoneprov.store import open_store

SHA1_WARNING = (
    "SHA-1 is weak: collisions can be forged. Use the legacy chain only for devices that "
    "cannot parse SHA-2 (CX700 / Windows CE), never for VVX, SoundPoint IP or Trio phones."
)
# Lifetime of a certificate signed from a phone CSR unless the administrator picks one.
CSR_DAYS = DEVICE_DAYS


class KeyKind(enum.StrEnum):
    """Key types the CA makes for its root and for server certificates."""

    ec_p256 = "ec-p256"
    rsa_2048 = "rsa-2048"
    rsa_3072 = "rsa-3072"
    rsa_4096 = "rsa-4096"


class SignatureHash(enum.StrEnum):
    """Hashes a modern root signs with."""

    sha256 = "sha256"
    sha384 = "sha384"


class Chain(enum.StrEnum):
    """Which of the site's two CAs: the modern one, or the SHA-1 one for CX700-era devices."""

    modern = "modern"
    legacy = "legacy"


class ChainFormat(enum.StrEnum):
    """Encodings of the exported CA chain (``p7b`` is Microsoft's ``certnew.p7b``)."""

    pem = "pem"
    der = "der"
    p7b = "p7b"
    p7b_pem = "p7b-pem"


class RevocationReason(enum.StrEnum):
    """CRL reason codes (RFC 5280 §5.3.1) as administrators write them."""

    unspecified = "unspecified"
    key_compromise = "key-compromise"
    ca_compromise = "ca-compromise"
    affiliation_changed = "affiliation-changed"
    superseded = "superseded"
    cessation_of_operation = "cessation-of-operation"
    certificate_hold = "certificate-hold"
    privilege_withdrawn = "privilege-withdrawn"


@dataclass(frozen=True)
class CertificateFacts:
    """What an administrator reads off a certificate: names, serial, lifetime, key, hashes."""

    subject: str
    issuer: str
    serial: int
    not_before: datetime
    not_after: datetime
    key: str
    signature_algorithm: str
    signature_hash: str | None
    fingerprints: tuple[tuple[str, str], ...]  # (md5|sha1|sha256, colon hex) in that order

    @property
    def serial_hex(self) -> str:
        """The serial as openssl prints it: upper-case hex, even length."""
        text = f"{self.serial:X}"
        return text if len(text) % 2 == 0 else "0" + text

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertificateFacts:
        """Return the facts of ``cert``."""
        algorithm = cert.signature_hash_algorithm
        return cls(
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            serial=cert.serial_number,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            key=describe_public_key(cert.public_key()),
            signature_algorithm=cert.signature_algorithm_oid._name,
            signature_hash=algorithm.name if algorithm is not None else None,
            fingerprints=tuple(fingerprints(cert).items()),
        )


@dataclass(frozen=True)
class NewAuthority:
    """A root CA just created."""

    chain: Chain
    cert_path: Path
    facts: CertificateFacts
    warning: str  # what the administrator must know about this chain; empty for modern


@dataclass(frozen=True)
class ServerCertificate:
    """A server certificate just issued, and where it and its key (0600) were written."""

    facts: CertificateFacts
    cert_pem: bytes
    cert_path: Path
    key_path: Path
    installed: bool  # written into the site's pki directory for the HTTPS listener


@dataclass(frozen=True)
class SignedCsr:
    """A device certificate signed from a phone's CSR (its key never left the phone)."""

    facts: CertificateFacts
    cert_pem: bytes
    mac: MacAddress | None  # the MAC the CSR had to name, when known
    slot: str | None
    written: Path | None


@dataclass(frozen=True)
class Revocation:
    """Certificates just revoked, and the CRL that now lists them."""

    records: tuple[CertRecord, ...]
    crl_path: Path


@dataclass(frozen=True)
class PublishedCrl:
    """A freshly signed CRL."""

    path: Path
    pem: bytes
    last_update: datetime
    next_update: datetime | None
    revoked: tuple[int, ...]  # serials, in CRL order
    written: Path | None  # the copy asked for, besides ``path``


@dataclass(frozen=True)
class ExportedChain:
    """The CA chain encoded for other systems and phones."""

    data: bytes
    certificates: tuple[CertificateFacts, ...]  # root first
    written: Path | None


@dataclass(frozen=True)
class DevicePair:
    """A device certificate and its private key (0600) on disk."""

    cert: Path
    key: Path


def _pki_dir(settings: Settings, chain: Chain) -> Path:
    """The directory of the modern CA, or of the legacy one (``<pki>/legacy``)."""
    return settings.pki_dir / LEGACY_DIR if chain is Chain.legacy else settings.pki_dir


def _load(settings: Settings, chain: Chain = Chain.modern) -> CertificateAuthority:
    return CertificateAuthority.load(_pki_dir(settings, chain))


@trail.audited("ca.create", target="chain")
def create_authority(
    settings: Settings,
    *,
    key: KeyKind = KeyKind.ec_p256,
    hash_name: SignatureHash = SignatureHash.sha256,
    chain: Chain = Chain.modern,
    days: int = 7300,
    common_name: str = "",
    force: bool = False,
) -> NewAuthority:
    """Create the site's root CA for ``chain``; return it.

    A modern root is also installed in the site's trust directory (when it
    exists) beside the Polycom chain, so the HTTPS listener accepts what it
    issues. ``common_name`` defaults to one naming the site's primary FQDN.
    Raises CertificateError if a CA exists and ``force`` is false, InputError
    for a bad lifetime or name.
    """
    legacy = chain is Chain.legacy
    name = common_name or (
        f"phoneprov {'Legacy ' if legacy else ''}Root CA ({settings.primary_fqdn})"
    )
    store = open_store(settings)
    try:
        ca = CertificateAuthority.create(
            _pki_dir(settings, chain),
            common_name=name,
            key=key.value,
            hash_name=hash_name.value,
            days=days,
            force=force,
            profile=chain.value,
            index_for=index_factory(store),
        )
    finally:
        store.close()
    if not legacy and settings.trust_dir.is_dir():
        install_trust_anchors(settings.trust_dir, ca.cert)
    return NewAuthority(
        chain, ca.cert_path, CertificateFacts.of(ca.cert), SHA1_WARNING if legacy else ""
    )


@trail.audited("cert.server.issue", target="names")
def issue_server_certificate(
    settings: Settings,
    names: Sequence[str],
    *,
    key: KeyKind = KeyKind.ec_p256,
    days: int = 825,
    chain: Chain = Chain.modern,
    out: Path | None = None,
) -> ServerCertificate:
    """Issue a server certificate with every name in its SAN (the first is the CN).

    The legacy chain always uses RSA-2048, whatever ``key`` says. The chain
    goes to ``out`` and the key to ``out`` with the suffix ``.key``; without
    ``out`` both are installed in the CA's directory for the HTTPS listener
    (``server-ec`` / ``server-rsa``, or ``server`` for the legacy chain).
    Raises InputError for wildcards and names that are neither DNS names nor
    IPs, CertificateError when the CA is missing.
    """
    key_type = KeyKind.rsa_2048 if chain is Chain.legacy else key
    with site_authority(settings, _pki_dir(settings, chain)) as ca:
        issued = ca.issue_server(names, key=key_type.value, days=days)
    if out is not None:
        cert_path = write_atomic(out, issued.chain_pem)
        key_path = write_private(out.with_suffix(".key"), issued.key_pem)
    else:
        stem = "server" if chain is Chain.legacy else f"server-{key_type.split('-')[0]}"
        cert_path, key_path = ca.write_server_pair(ca.pki_dir, issued, stem)
    return ServerCertificate(
        CertificateFacts.of(issued.cert), issued.cert_pem, cert_path, key_path, out is None
    )


@trail.audited("cert.csr.sign", target="mac")
def sign_device_csr(
    settings: Settings,
    csr: bytes,
    *,
    mac: MacAddress | None = None,
    slot: str | None = None,
    days: int = CSR_DAYS,
    out: Path | None = None,
) -> SignedCsr:
    """Sign a phone's CSR (PEM or DER) after checking signature, key, common name and MAC.

    ``mac``, when given, is the phone the CSR must name; ``slot`` is recorded
    for the phone's config. The certificate is also written to ``out`` (0644)
    when given. Raises CertificateError for a bad CSR or a missing CA,
    InputError for a bad slot or lifetime.
    """
    checked_slot = check_slot(slot) if slot else None
    with site_authority(settings, settings.pki_dir) as ca:
        issued = sign_csr(ca, csr, expected_mac=mac, slot=checked_slot, days=days)
    if out is not None:
        write_atomic(out, issued.cert_pem)
    return SignedCsr(CertificateFacts.of(issued.cert), issued.cert_pem, mac, slot, out)


def parse_serial(text: str) -> int:
    """Parse a serial as openssl prints it (hex, optional 0x and colons); raise InputError."""
    cleaned = re.sub(r"[:\s]", "", text).lower().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{1,40}", cleaned):
        raise InputError(
            f"{text!r} is not a certificate serial number",
            "Write it in hex as `phoneprov ca list` or `openssl x509 -serial` prints it.",
        )
    return int(cleaned, 16)


@trail.audited("cert.revoke", target="mac")
def revoke_certificates(
    settings: Settings,
    *,
    serial: str | None = None,
    mac: str | None = None,
    reason: RevocationReason = RevocationReason.unspecified,
) -> Revocation:
    """Revoke every certificate issued to ``mac`` when given, else the one with ``serial``.

    The revocation is in the site database at once, and every node's HTTPS
    listener refuses the certificates within ``[cluster] revocation_refresh``
    seconds (provisioning/revocations.py); the CRL is re-signed. Raises InputError for a malformed
    MAC or serial, or one this CA never issued to; CertificateError when the CA
    is missing.
    """
    target: int | MacAddress = MacAddress.parse(mac) if mac else parse_serial(serial or "")
    with site_authority(settings, settings.pki_dir) as ca:
        records = ca.revoke(target, reason.value)
    return Revocation(tuple(records), crl_path(settings.pki_dir))


@trail.audited("ca.crl.publish")
def publish_crl(settings: Settings, *, out: Path | None = None) -> PublishedCrl:
    """Sign a fresh CRL into the pki directory (and a copy to ``out``); return it.

    Raises CertificateError when the CA is missing or its index is damaged.
    """
    with site_authority(settings, settings.pki_dir) as ca:
        path = ca.write_crl()
    data = path.read_bytes()
    crl = x509.load_pem_x509_crl(data)
    if out is not None:
        write_atomic(out, data)
    return PublishedCrl(
        path,
        data,
        crl.last_update_utc,
        crl.next_update_utc,
        tuple(entry.serial_number for entry in crl),
        out,
    )


def issued_certificates(settings: Settings, chain: Chain = Chain.modern) -> tuple[CertRecord, ...]:
    """Return every certificate the ``chain`` CA issued, in issue order, with revocations.

    Raises CertificateError when the CA is missing or its index is damaged.
    """
    with site_authority(settings, _pki_dir(settings, chain)) as ca:
        return ca.records()


def export_ca_chain(
    settings: Settings,
    *,
    chain: Chain = Chain.modern,
    fmt: ChainFormat = ChainFormat.pem,
    out: Path | None = None,
) -> ExportedChain:
    """Encode the CA chain as ``fmt`` (and write it to ``out``, 0644, when given).

    Raises CertificateError when the CA is missing.
    """
    ca = _load(settings, chain)
    certs = [ca.cert]
    data = export_chain(certs, fmt.value)
    if out is not None:
        write_atomic(out, data)
    return ExportedChain(data, tuple(CertificateFacts.of(c) for c in certs), out)


class DeviceCertIssuer:
    """Device certificates for simulated phones, from one site CA loaded once.

    A boot storm issues one certificate per phone; loading the CA key once
    keeps that fast.
    """

    def __init__(self, pki_dir: Path) -> None:
        """Load the CA in ``pki_dir``; raise CertificateError with the fix if missing or damaged."""
        self._ca = CertificateAuthority.load(pki_dir)

    @classmethod
    def for_phone(cls, pki_dir: Path, mac: MacAddress) -> DeviceCertIssuer:
        """Return the issuer that makes ``mac``'s certificate; raise ConfigError when
        ``pki_dir`` holds no CA at all."""
        if not CertificateAuthority.exists(pki_dir):
            raise ConfigError(
                f"no CA in {pki_dir} to issue a device certificate for {mac}",
                "Run `phoneprov init --site DIR` first, or pass --cert and --key.",
            )
        return cls(pki_dir)

    def write_pair(self, mac: MacAddress, folder: Path) -> DevicePair:
        """Issue a device certificate for ``mac``; write ``<mac>.pem`` and ``<mac>.key``
        (0600) into ``folder`` and return them."""
        issued = self._ca.issue_device(mac)
        folder.mkdir(exist_ok=True)
        cert = folder / f"{mac.value}.pem"
        key = folder / f"{mac.value}.key"
        write_private(key, issued.key_pem)
        cert.write_bytes(issued.cert_pem)
        return DevicePair(cert, key)
