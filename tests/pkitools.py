"""Test PKIs: a Polycom-like factory chain and stray CAs, built with cryptography.

We do not have Polycom's keys, so tests build a chain with the same shape and
names (Root CA -> Equipment Policy CA -> Equipment Issuing CA 1 -> device with
CN = MAC) and install its root as a trust anchor, exercising the factory path
exactly as the real chain does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def new_key(kind: str = "ec") -> Key:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class Issuer:
    cert: x509.Certificate
    key: Key
    chain: list[x509.Certificate] = field(default_factory=list)  # intermediates above, leaf-up

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def make_ca(
    cn: str,
    parent: Issuer | None = None,
    *,
    kind: str = "ec",
    not_before: dt.datetime | None = None,
    days: int = 3650,
) -> Issuer:
    key = new_key(kind)
    start = not_before or NOW - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(parent.cert.subject if parent else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    signer = parent.key if parent else key
    cert = builder.sign(signer, hashes.SHA256())
    chain = [parent.cert, *parent.chain] if parent else []
    return Issuer(cert, key, chain)


@dataclass
class DeviceCert:
    cert: x509.Certificate
    key: Key
    chain: list[x509.Certificate]

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write <stem>.pem (leaf + intermediates, as a phone sends) and <stem>.key."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_bytes(
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [self.cert, *self.chain])
        )
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        return cert_path, key_path


def make_device(
    issuer: Issuer,
    cn: str,
    *,
    kind: str = "ec",
    not_before: dt.datetime | None = None,
    days: int = 3650,
    self_signed: bool = False,
) -> DeviceCert:
    key = new_key(kind)
    start = not_before or NOW - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn) if self_signed else issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                (key if self_signed else issuer.key).public_key()
            ),
            critical=False,
        )
    )
    cert = builder.sign(key if self_signed else issuer.key, hashes.SHA256())
    chain = [] if self_signed else [issuer.cert, *issuer.chain[:-1]]
    return DeviceCert(cert, key, chain)


@dataclass
class FactoryPki:
    """Polycom-shaped chain: root, Equipment Policy CA, Equipment Issuing CA 1."""

    root: Issuer
    policy: Issuer
    issuing: Issuer

    def device(self, mac: str, **kwargs: object) -> DeviceCert:
        return make_device(self.issuing, mac, **kwargs)  # type: ignore[arg-type]


def factory_pki(vendor: str = "Polycom") -> FactoryPki:
    """The chain's names start with ``vendor``. Servers that also trust the real
    Polycom chain need another vendor name: OpenSSL picks issuers by name."""
    root = make_ca(f"{vendor} Root CA", kind="rsa", days=9000)
    policy = make_ca(f"{vendor} Equipment Policy CA", root, kind="rsa", days=8000)
    issuing = make_ca(f"{vendor} Equipment Issuing CA 1", policy, kind="rsa", days=7000)
    return FactoryPki(root, policy, issuing)
