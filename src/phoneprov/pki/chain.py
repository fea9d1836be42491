"""Certificate facts shared by inspect and lint: signatures, fingerprints, chain order.

Signatures are checked with the public-key primitives, not
``verify_directly_issued_by``, because ``cryptography`` refuses SHA-1 there and
old factory and CX700-era certificates are SHA-1 signed.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from phoneprov.errors import InputError
from phoneprov.model import MacAddress

# Polycom's chain is four certificates deep (root, policy, issuing, device); 8 is
# far beyond anything real and stops a loop in a hostile bundle.
MAX_DEPTH = 8


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True if ``issuer``'s name is ``cert``'s issuer and its key made ``cert``'s signature."""
    if cert.issuer != issuer.subject:
        return False
    key = issuer.public_key()
    algorithm = cert.signature_hash_algorithm
    params = cert.signature_algorithm_parameters
    try:
        if isinstance(key, rsa.RSAPublicKey) and isinstance(params, padding.PKCS1v15 | padding.PSS):
            if algorithm is None:
                return False
            key.verify(cert.signature, cert.tbs_certificate_bytes, params, algorithm)
            return True
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(params, ec.ECDSA):
            key.verify(cert.signature, cert.tbs_certificate_bytes, params)
            return True
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return False


def is_self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def common_name(cert: x509.Certificate) -> str | None:
    """Return the subject CN as text, or None if there is none."""
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not values:
        return None
    value = values[0].value
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def mac_of(cert: x509.Certificate) -> MacAddress | None:
    """Return the MAC in the subject CN (how phones name themselves), or None."""
    cn = common_name(cert)
    if cn is None:
        return None
    try:
        return MacAddress.parse(cn)
    except InputError:
        return None


def colon_hex(data: bytes) -> str:
    """Return bytes as openssl prints fingerprints: ``AB:CD:...``."""
    return ":".join(f"{b:02X}" for b in data)


def fingerprints(cert: x509.Certificate) -> dict[str, str]:
    """Return the MD5, SHA-1 and SHA-256 fingerprints as ``openssl x509 -fingerprint`` does."""
    return {
        "md5": colon_hex(cert.fingerprint(hashes.MD5())),
        "sha1": colon_hex(cert.fingerprint(hashes.SHA1())),
        "sha256": colon_hex(cert.fingerprint(hashes.SHA256())),
    }


def serial_hex(cert: x509.Certificate) -> str:
    text = f"{cert.serial_number:X}"
    return text if len(text) % 2 == 0 else "0" + text


def order_chain(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    """Return ``certs`` leaf first, each followed by its issuer when present.

    The leaf is the certificate that issued none of the others; certificates
    that do not fit the path are appended at the end in their original order.
    """
    if len(certs) < 2:
        return list(certs)
    issuers = {id(c) for c in certs for other in certs if other is not c and signed_by(other, c)}
    leaves = [c for c in certs if id(c) not in issuers] or [certs[0]]
    path = [leaves[0]]
    while len(path) < min(len(certs), MAX_DEPTH) and not is_self_issued(path[-1]):
        parent = next((c for c in certs if c not in path and signed_by(path[-1], c)), None)
        if parent is None:
            break
        path.append(parent)
    return path + [c for c in certs if c not in path]
