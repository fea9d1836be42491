"""Build and sign certificates from a :class:`CertSpec` with ``cryptography`` (SHA-2)."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from phoneprov.pki.keys import PrivateKey
from phoneprov.pki.profiles import CertSpec, Usage

HASHES: dict[str, hashes.SHA256 | hashes.SHA384] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
}


def subject_name(common_name: str) -> x509.Name:
    """Return the subject: CN only, as phones and Polycom factory certs use."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(spec: CertSpec) -> x509.KeyUsage:
    is_root = spec.usage is Usage.ROOT
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=spec.rsa_key and not is_root,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=is_root,
        crl_sign=is_root,
        encipher_only=False,
        decipher_only=False,
    )


def build_certificate(
    spec: CertSpec,
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate | None,
    issuer_key: PrivateKey,
) -> x509.Certificate:
    """Return the certificate ``spec`` describes, signed by ``issuer_key``.

    ``issuer`` None means self-signed (a root). Raises ValueError from
    ``cryptography`` only for programming errors (spec is already validated).
    """
    subject = subject_name(spec.common_name)
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(public_key)
        .serial_number(spec.serial)
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
        .add_extension(
            x509.BasicConstraints(ca=spec.usage is Usage.ROOT, path_length=None), critical=True
        )
        .add_extension(_key_usage(spec), critical=True)
        .add_extension(ski, critical=False)
    )
    if issuer is not None:
        issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
            critical=False,
        )
    if spec.usage is Usage.SERVER:
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in spec.sans.dns]
        names += [x509.IPAddress(ip) for ip in spec.sans.ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    elif spec.usage is Usage.DEVICE:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, HASHES[spec.hash_name])
