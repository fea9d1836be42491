"""Signing phone CSRs (``<MAC>.csr``, as a phone uploads it or an administrator hands it in).

A Polycom phone makes an RSA-2048 key and a SHA-256 CSR whose common name the
user typed on the phone (UCS "Create a Certificate Signing Request"). We sign it
as a device certificate only when it is sound: valid self-signature, an RSA key
of 2048 to 4096 bits or a P-256/P-384 key, a common name, and, when we know
which phone sent it, that phone's MAC as the common name.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from phoneprov.errors import CertificateError, InputError
from phoneprov.model import MacAddress
from phoneprov.pki.authority import CertificateAuthority, IssuedCert
from phoneprov.pki.keys import PublicKey, describe_public_key
from phoneprov.pki.profiles import Slot, Usage, check_slot

MIN_RSA_BITS = 2048
# Platform slots hold at most a 4096-byte key file (SPEC §7); RSA-4096 PEM is ~3.2 kB.
MAX_RSA_BITS = 4096
ALLOWED_CURVES = ("secp256r1", "secp384r1")
# Factory and phone-made device certificates last ten years; ours do the same by default.
DEVICE_DAYS = 3650


def load_csr(data: bytes, source: str = "the CSR") -> x509.CertificateSigningRequest:
    """Parse a PEM or DER CSR; raise CertificateError naming ``source`` if it is neither."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError as error:
        raise CertificateError(
            f"{source} is not a certificate signing request: {error}",
            "Pass the <MAC>.csr file the phone uploaded (PEM or DER).",
        ) from None


def csr_common_name(csr: x509.CertificateSigningRequest) -> str:
    """Return the CSR's common name; raise CertificateError if it has none."""
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    if not text.strip():
        raise CertificateError(
            "the CSR has no common name",
            "On the phone, enter the MAC address as Common Name when creating the CSR.",
        )
    return text.strip()


def check_csr_key(csr: x509.CertificateSigningRequest) -> PublicKey:
    """Return the CSR's public key if phones and our listener can use it; raise CertificateError."""
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise CertificateError(
                f"the CSR key is RSA-{key.key_size}; a device key must be "
                f"RSA-{MIN_RSA_BITS} to RSA-{MAX_RSA_BITS}",
                "Create the CSR again on the phone (it makes RSA-2048 keys).",
            )
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ALLOWED_CURVES:
        return key
    raise CertificateError(
        f"the CSR key is {describe_public_key(key)}; a device key must be RSA-2048..4096 "
        "or EC P-256/P-384",
        "Create the CSR again with an RSA-2048 key.",
    )


def check_csr_signature(csr: x509.CertificateSigningRequest) -> None:
    """Raise CertificateError unless the CSR's self-signature is valid (proof of the key)."""
    try:
        valid = csr.is_signature_valid
    except (UnsupportedAlgorithm, ValueError) as error:
        raise CertificateError(f"the CSR signature cannot be checked: {error}") from None
    if not valid:
        raise CertificateError(
            "the CSR signature is not valid: it was altered or not made with its own key",
            "Ask the phone for a new CSR; do not edit the file.",
        )


def sign_csr(
    ca: CertificateAuthority,
    csr_pem: bytes,
    *,
    expected_mac: MacAddress | None,
    slot: Slot | None = None,
    days: int = DEVICE_DAYS,
) -> IssuedCert:
    """Check a phone CSR and sign it as a device certificate; return it (``key_pem`` empty).

    The common name is kept (a MAC is written in canonical 12-hex-digit form).
    When ``expected_mac`` is given (from the upload's mTLS identity, the file
    name or ``--mac``) the common name must be that MAC. Raises CertificateError
    for a bad signature, key or common name, InputError for a bad slot or days.
    """
    if slot is not None:
        check_slot(slot)
    csr = load_csr(csr_pem)
    check_csr_signature(csr)
    public_key = check_csr_key(csr)
    common_name = csr_common_name(csr)
    try:
        cn_mac: MacAddress | None = MacAddress.parse(common_name)
    except InputError:
        cn_mac = None
    if expected_mac is not None and cn_mac != expected_mac:
        raise CertificateError(
            f"the CSR common name {common_name!r} is not the MAC {expected_mac} it came from",
            f"Create the CSR on phone {expected_mac} with Common Name {expected_mac}, or pass "
            "--mac with the phone's real MAC.",
        )
    cert = ca.sign_public_key(
        Usage.DEVICE,
        cn_mac.value if cn_mac is not None else common_name,
        public_key,
        days,
        "csr",
        mac=cn_mac,
        slot=slot,
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    return IssuedCert(cert, b"", cert_pem, cert_pem)
