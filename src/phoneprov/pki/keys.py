"""Private keys: generation (always with ``cryptography``) and PEM forms."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
)

from phoneprov.errors import CertificateError
from phoneprov.pki.profiles import KeyType, check_key_type

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def generate_key(key_type: KeyType) -> PrivateKey:
    """Return a new private key of ``key_type``; raise InputError for unknown types."""
    check_key_type(key_type)
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    # 65537 is the only exponent every phone TLS stack is known to accept.
    return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))


def private_pem(key: PrivateKey) -> bytes:
    """Return ``key`` as unencrypted PKCS#8 PEM (the ``PRIVATE KEY`` PEM label)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_pem(data: bytes, source: str) -> PrivateKey:
    """Parse an unencrypted PEM RSA or EC key; raise CertificateError naming ``source``."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise CertificateError(
            f"{source} is not an unencrypted PEM private key: {error}",
            "Export the key without a passphrase, in PEM form.",
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertificateError(
            f"{source} holds a {type(key).__name__}; phoneprov uses RSA or EC keys only"
        )
    return key


def describe_public_key(key: CertificatePublicKeyTypes) -> str:
    """Return ``RSA-2048``, ``EC-secp256r1``, ``Ed25519`` and so on (lint and inspect)."""
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC-{key.curve.name}"
    return type(key).__name__.removesuffix("PublicKey").lstrip("_")
