"""Device trust anchors: the CAs whose device certificates the HTTPS listener accepts.

Each ``<site>/trust/*.pem`` holds one or more CA certificates; the listener
reads them when it starts and on a reload (SIGHUP, ``systemctl reload phoneprov``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.pki.trust import load_pem_certificates, load_trust_anchors
from phoneprov.provisioning import trail


@dataclass(frozen=True, slots=True)
class TrustedCA:
    """One trusted CA certificate and the trust-directory file holding it."""

    subject: str  # RFC 4514
    not_after: dt.date
    file: str


def _trusted(cert: x509.Certificate, file: str) -> TrustedCA:
    return TrustedCA(cert.subject.rfc4514_string(), cert.not_valid_after_utc.date(), file)


@trail.audited("trust.add", target="name")
def add_trusted_ca(settings: Settings, source: Path, name: str | None = None) -> list[TrustedCA]:
    """Copy the PEM bundle ``source`` into the trust directory as ``name`` (default: its
    file name, ``.pem`` added); returns the CAs it holds.

    Raises InputError for a missing file or a name already taken, CertificateError
    when the file holds no readable certificate.
    """
    if not source.is_file():
        raise InputError(f"{source} does not exist", "Give the path of a PEM file.")
    data = source.read_bytes()
    certs = load_pem_certificates(data, str(source))
    target = settings.trust_dir / (name or source.name)
    if target.suffix != ".pem":
        target = target.with_suffix(".pem")
    if target.exists():
        raise InputError(f"{target} already exists", "Pick another --name.")
    settings.trust_dir.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return [_trusted(cert, target.name) for cert in certs]


def trusted_cas(settings: Settings) -> list[TrustedCA]:
    """Every CA in the trust directory, files in name order (empty: nothing trusted).

    Raises CertificateError when the directory is missing or a file cannot be parsed.
    """
    found = [
        _trusted(cert, path.name)
        for path in sorted(settings.trust_dir.glob("*.pem"))
        for cert in load_pem_certificates(path.read_bytes(), str(path))
    ]
    if not found:
        # Nothing listed: either an empty directory or none at all; the loader says which.
        load_trust_anchors(settings.trust_dir)
    return found
