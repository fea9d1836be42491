"""Revocation: mark certificates revoked in the CA's index and publish its CRL.

The index (``pki/index.py``: the site database, or ``index.json`` for a CA
without one) is the authority; each revocation signs the next CRL from it,
keeps it in the index and writes it to ``<pki_dir>/crl.pem`` for tools that
read a file (``openssl verify -crl_check``). Running listeners do not read the
file: they keep the revoked serials in memory, refreshed from the database
(``provisioning/revocations.py``), so every node refuses a revoked certificate
within seconds and no handshake waits for a query.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from phoneprov.errors import CertificateError, InputError
from phoneprov.model import MacAddress
from phoneprov.pki.files import write_atomic
from phoneprov.pki.index import CRL_FILE, CertRecord
from phoneprov.pki.keys import PrivateKey, PublicKey

if TYPE_CHECKING:
    from phoneprov.pki.authority import CertificateAuthority

# Only our own listener reads this CRL, and it ignores nextUpdate; a long life keeps a
# strict verifier (openssl verify -crl_check, nginx) from failing a year after a revoke.
CRL_LIFETIME = timedelta(days=365)

REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key-compromise": x509.ReasonFlags.key_compromise,
    "ca-compromise": x509.ReasonFlags.ca_compromise,
    "affiliation-changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation-of-operation": x509.ReasonFlags.cessation_of_operation,
    "certificate-hold": x509.ReasonFlags.certificate_hold,
    "privilege-withdrawn": x509.ReasonFlags.privilege_withdrawn,
}


def crl_path(pki_dir: Path) -> Path:
    """Return where the CA in ``pki_dir`` publishes its CRL."""
    return pki_dir / CRL_FILE


def check_reason(reason: str) -> str:
    """Return ``reason`` if it is a CRL reason name; raise InputError listing them otherwise."""
    if reason not in REASONS:
        raise InputError(
            f"revocation reason {reason!r} is not known", f"Use one of: {', '.join(REASONS)}."
        )
    return reason


def build_crl(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    records: tuple[CertRecord, ...],
    number: int,
    now: datetime,
) -> x509.CertificateRevocationList:
    """Return a CRL signed by the CA listing every revoked record (RFC 5280 §5).

    The reason extension is left out for ``unspecified``, as RFC 5280 §5.3.1 asks.
    SHA-256 even for the legacy CA: ``cryptography`` cannot sign SHA-1 and only
    our own listener reads the CRL.
    """
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(now + CRL_LIFETIME)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    for record in records:
        if record.revoked_at is None:
            continue
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(record.serial)
            .revocation_date(record.revoked_at)
        )
        flag = REASONS.get(record.reason or "unspecified", x509.ReasonFlags.unspecified)
        if flag is not x509.ReasonFlags.unspecified:
            entry = entry.add_extension(x509.CRLReason(flag), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    algorithm = ca_cert.signature_hash_algorithm
    digest = hashes.SHA384() if isinstance(algorithm, hashes.SHA384) else hashes.SHA256()
    return builder.sign(ca_key, digest)


def _publish(ca: CertificateAuthority, key: PrivateKey, now: datetime) -> bytes:
    """Sign the next CRL from the index, write it to crl.pem; return its PEM."""

    def sign(records: tuple[CertRecord, ...], number: int) -> bytes:
        crl = build_crl(ca.cert, key, records, number, now)
        return crl.public_bytes(serialization.Encoding.PEM)

    pem = ca.index.publish(sign)
    write_atomic(crl_path(ca.pki_dir), pem)
    return pem


def revoke(
    ca: CertificateAuthority,
    key: PrivateKey,
    target: int | MacAddress,
    reason: str,
    now: datetime,
) -> list[CertRecord]:
    """Revoke a serial or every certificate issued to a MAC, then publish a new CRL.

    Returns the affected records. Raises InputError for an unknown reason, or
    when no certificate of this CA has that serial or MAC.
    """
    check_reason(reason)
    when = now.replace(microsecond=0)
    if isinstance(target, MacAddress):
        serials = [r.serial for r in ca.index.for_mac(target.value)]
        missing = f"no certificate of this CA was issued to MAC {target}"
    else:
        serials = [target]
        missing = f"serial {target:X} was not issued by the CA in {ca.pki_dir}"
    done = ca.index.revoke(serials, when, reason) if serials else []
    if not done:
        raise InputError(missing, "List what was issued with `phoneprov ca list`.")
    _publish(ca, key, when)
    return done


def write_crl(ca: CertificateAuthority, key: PrivateKey, now: datetime) -> Path:
    """Sign and write a fresh CRL for ``ca``; return its path."""
    _publish(ca, key, now.replace(microsecond=0))
    return crl_path(ca.pki_dir)


def load_crl(pki_dir: Path) -> x509.CertificateRevocationList | None:
    """Return the CA's CRL, None if there is none; raise CertificateError if its
    signature does not match ``ca.pem``."""
    path = crl_path(pki_dir)
    if not path.is_file():
        return None
    try:
        crl = x509.load_pem_x509_crl(path.read_bytes())
        ca_cert = x509.load_pem_x509_certificate((pki_dir / "ca.pem").read_bytes())
    except (ValueError, OSError) as error:
        raise CertificateError(
            f"{path} cannot be read: {error}", "Run `phoneprov ca crl`."
        ) from None
    public_key = ca_cert.public_key()
    if not isinstance(public_key, PublicKey) or not crl.is_signature_valid(public_key):
        raise CertificateError(
            f"{path} is not signed by {pki_dir / 'ca.pem'}", "Run `phoneprov ca crl` to re-sign it."
        )
    return crl


def revoked_serials(pki_dir: Path) -> frozenset[int]:
    """Return the serials listed in ``<pki_dir>/crl.pem`` (empty if there is no CRL)."""
    crl = load_crl(pki_dir)
    return frozenset(entry.serial_number for entry in crl) if crl is not None else frozenset()
