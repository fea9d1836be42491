"""The site CA as the admin API reads and drives it: one certificate with its PEM,
the queue of phone CSRs waiting for a signature, and the CRL.

With ``[policy] csr_policy = "manual"`` a phone's ``<MAC>.csr`` upload waits in
the boot directory's CSR folder (``enrolment.handle_csr``). Signing it here
checks it like ``phoneprov ca sign-csr`` (signature, key, the MAC it must name),
records the certificate, and takes it out of the queue; rejecting it deletes it.
Both are events on the phone's timeline and audit events.
"""

from __future__ import annotations

import re
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from phoneprov.config import Settings
from phoneprov.model import MacAddress
from phoneprov.pki.index import CertRecord
from phoneprov.pki.revocation import crl_path
from phoneprov.protocols.polycom import UploadKind
from phoneprov.provisioning import trail
from phoneprov.provisioning.admin_api import NotFound
from phoneprov.provisioning.authority import site_authority
from phoneprov.provisioning.certificates import (
    CertificateFacts,
    SignedCsr,
    parse_serial,
    sign_device_csr,
)
from phoneprov.records import Event
from phoneprov.store import open_store

_CSR_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,63}\.csr")


@dataclass(frozen=True, slots=True)
class QueuedCsr:
    """A CSR a phone uploaded that waits for an administrator."""

    name: str
    mac: MacAddress | None  # the phone its name says it came from
    size: int
    received: float  # when it was stored (file time)
    subject: str  # the CSR's subject, or "" when it does not parse
    problem: str  # why it cannot be signed as it is ("" when it parses)


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """One certificate the site CA issued: its index row, what it says, and its PEM."""

    record: CertRecord
    facts: CertificateFacts
    pem: bytes


def csr_folder(settings: Settings) -> Path:
    return settings.boot_dir / settings.policy.folders[UploadKind.CSR]


def _describe(path: Path) -> QueuedCsr:
    data = path.read_bytes()
    stat = path.stat()
    try:
        csr = (
            x509.load_pem_x509_csr(data)
            if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_csr(data)
        )
        subject, problem = csr.subject.rfc4514_string(), ""
        if not csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
            problem = "its subject has no common name"
    except ValueError:
        subject, problem = "", "not a PEM or DER certificate request"
    mac = MacAddress.maybe(path.name[:12])
    return QueuedCsr(path.name, mac, stat.st_size, stat.st_mtime, subject, problem)


def queued_csrs(settings: Settings) -> list[QueuedCsr]:
    """The CSRs waiting in the queue, by name."""
    folder = csr_folder(settings)
    if not folder.is_dir():
        return []
    return [_describe(p) for p in sorted(folder.glob("*.csr")) if p.is_file()]


def _queued(settings: Settings, name: str) -> Path:
    """The queued CSR ``name`` (a bare file name); NotFound when none waits by that name."""
    path = csr_folder(settings) / name
    if not _CSR_NAME.fullmatch(name) or not path.is_file():
        raise NotFound(
            f"no CSR named {name!r} is waiting",
            "List the queue with GET /api/v1/csrs; names look like 0004f2abcdef.csr.",
        )
    return path


def _event(settings: Settings, mac: MacAddress | None, kind: str, detail: str) -> None:
    if mac is None:
        return
    with closing(open_store(settings)) as store:
        store.record([], [Event(time.time(), mac.value, kind, detail)])


def sign_queued_csr(settings: Settings, name: str) -> SignedCsr:
    """Sign the queued CSR ``name`` for the slot in ``[policy] csr_slot`` and take it out
    of the queue; the phone gets the certificate with its next configuration.

    Raises NotFound when no such CSR waits, CertificateError when it does not pass
    the checks (it stays queued, to be rejected).
    """
    path = _queued(settings, name)
    mac = MacAddress.maybe(name[:12])
    signed = sign_device_csr(settings, path.read_bytes(), mac=mac, slot=settings.policy.csr_slot)
    path.unlink(missing_ok=True)
    detail = f"serial {signed.facts.serial_hex} for slot {settings.policy.csr_slot}"
    _event(settings, mac, "csr-signed", detail)
    return signed


@trail.audited("cert.csr.reject", target="name")
def reject_csr(settings: Settings, name: str, reason: str = "") -> QueuedCsr:
    """Delete the queued CSR ``name`` unsigned; returns what it was.

    The phone keeps its factory certificate and may upload a new CSR. Raises
    NotFound when no such CSR waits.
    """
    path = _queued(settings, name)
    queued = _describe(path)
    path.unlink(missing_ok=True)
    _event(settings, queued.mac, "csr-rejected", f"{name}: {reason or 'rejected'}")
    return queued


def certificate(settings: Settings, serial: str) -> IssuedCertificate:
    """The certificate with ``serial`` (hex, as ``phoneprov ca list`` prints it).

    Raises InputError for a malformed serial, NotFound for one this CA never
    issued, CertificateError when the CA is missing.
    """
    number = parse_serial(serial)
    with site_authority(settings, settings.pki_dir) as ca:
        record = next((r for r in ca.records() if r.serial == number), None)
        pem = ca.index.pem(number) if record is not None else None
    if record is None or pem is None:
        raise NotFound(
            f"the site CA issued no certificate with serial {serial}",
            "List them with GET /api/v1/certificates.",
        )
    cert = x509.load_pem_x509_certificate(pem)
    return IssuedCertificate(record, CertificateFacts.of(cert), pem)


def crl_der(settings: Settings) -> bytes:
    """The site CA's current CRL, DER-encoded (RFC 5280 §5, as application/pkix-crl).

    Raises NotFound when the CA has not published one yet.
    """
    path = crl_path(settings.pki_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(
            f"the site CA has published no CRL yet ({path})",
            "Publish one with `phoneprov ca crl`; revoking a certificate publishes one too.",
        ) from None
    return x509.load_pem_x509_crl(data).public_bytes(Encoding.DER)
