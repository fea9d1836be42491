"""Reading certificate files the way administrators have them: PEM, DER, PKCS#7."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from phoneprov.errors import InputError

PKCS7_BEGIN = b"-----BEGIN PKCS7-----"


def read_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Return every certificate in ``data``: PEM (one or many), DER, or PKCS#7 (PEM or DER).

    Raises InputError (exit 2) naming ``source`` when nothing readable is found.
    """
    try:
        if PKCS7_BEGIN in data:
            return pkcs7.load_pem_pkcs7_certificates(data)
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificates(data)
        if data[:1] == b"\x30":
            try:
                return [x509.load_der_x509_certificate(data)]
            except ValueError:
                return pkcs7.load_der_pkcs7_certificates(data)
    except ValueError as error:
        raise InputError(
            f"{source} cannot be read as a certificate: {error}",
            "Pass a PEM (-----BEGIN CERTIFICATE-----), DER or PKCS#7 (.p7b) file.",
        ) from None
    raise InputError(
        f"{source} holds no certificate (no PEM block, not DER, not PKCS#7)",
        "Pass a PEM (-----BEGIN CERTIFICATE-----), DER or PKCS#7 (.p7b) file.",
    )
