"""Trust anchors: the public Polycom chain shipped with phoneprov and the site's trust directory.

``<site>/trust/`` holds every certificate the HTTPS listener accepts device
certificates from: the Polycom chain (root, Equipment Policy CA, Equipment
Issuing CA 1 and 2) and our own root. The files are plain PEM; a file may hold
several certificates.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from phoneprov.errors import CertificateError
from phoneprov.pki.files import write_atomic

# Root first, then the Equipment Policy CA, then the two Equipment Issuing CAs (SPEC §7).
POLYCOM_FILES = (
    "root.pem",
    "equipment-policy-ca.pem",
    "equipment-issuing-ca-1.pem",
    "equipment-issuing-ca-2.pem",
)
POLYCOM_TRUST_FILE = "polycom.pem"
OUR_ROOT_TRUST_FILE = "phoneprov-root.pem"


def polycom_chain_pems() -> list[bytes]:
    """Return the shipped public Polycom certificates as PEM, root first."""
    folder = resources.files("phoneprov") / "data" / "polycom-pki"
    return [(folder / name).read_bytes() for name in POLYCOM_FILES]


def polycom_chain() -> list[x509.Certificate]:
    """Return the shipped Polycom certificates parsed, root first."""
    return [x509.load_pem_x509_certificate(pem) for pem in polycom_chain_pems()]


def load_pem_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Parse every certificate in a PEM bundle; raise CertificateError naming ``source``."""
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise CertificateError(
            f"{source} holds no readable PEM certificate: {error}",
            "Each file in the trust directory must contain -----BEGIN CERTIFICATE----- blocks.",
        ) from None


def load_trust_anchors(trust_dir: Path) -> list[x509.Certificate]:
    """Return every certificate in ``trust_dir/*.pem`` (files in name order).

    Raises CertificateError if the directory is missing or a file cannot be parsed.
    """
    if not trust_dir.is_dir():
        raise CertificateError(
            f"trust directory {trust_dir} does not exist",
            "Run `phoneprov init` for the site, or create it with the Polycom chain and "
            "our root: `phoneprov ca export --format pem --out <site>/trust/phoneprov-root.pem`.",
        )
    anchors: list[x509.Certificate] = []
    for path in sorted(trust_dir.glob("*.pem")):
        anchors.extend(load_pem_certificates(path.read_bytes(), str(path)))
    return anchors


def install_trust_anchors(trust_dir: Path, our_root: x509.Certificate) -> list[Path]:
    """Write the Polycom chain and our root into ``trust_dir``; return the files written."""
    polycom = b"".join(polycom_chain_pems())
    ours = our_root.public_bytes(serialization.Encoding.PEM)
    return [
        write_atomic(trust_dir / POLYCOM_TRUST_FILE, polycom),
        write_atomic(trust_dir / OUR_ROOT_TRUST_FILE, ours),
    ]
