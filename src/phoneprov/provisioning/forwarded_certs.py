"""A client certificate nginx forwarded (edge mode): checked again before it names a phone.

nginx terminates mutual TLS and sends the certificate it verified, URL-encoded PEM
(``$ssl_client_escaped_cert``), with its verdict (``$ssl_client_verify``). phoneprov
believes neither blindly: the verdict must be ``SUCCESS`` (or, when the site tolerates
expired device certificates, nginx's expiry failure alone), and the certificate must
chain, signature by signature, to a self-signed certificate of the trust directory, as
OpenSSL requires of the direct HTTPS listener. Revocation, expiry policy and the MAC
are then the phone handler's, with the same ``CertIdentifier`` as direct TLS.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from phoneprov.config import Settings
from phoneprov.pki.chain import MAX_DEPTH, is_self_issued, signed_by
from phoneprov.pki.trust import load_trust_anchors

CACHE_SIZE = 20_000
# nginx's $ssl_client_verify for a chain that failed on time alone (OpenSSL's messages).
TIME_FAILURES = frozenset({"FAILED:certificate has expired", "FAILED:certificate is not yet valid"})


@dataclass(frozen=True, slots=True)
class Forwarded:
    """The certificate to identify the phone by (DER), or why there is none."""

    der: bytes | None
    refusal: str = ""  # empty: no certificate was forwarded at all


class ForwardedCerts:
    """Checks the certificate and verdict nginx forwarded against the site's trust anchors."""

    def __init__(self, anchors: list[x509.Certificate], tolerate_expired: bool) -> None:
        self.anchors = anchors
        self.tolerate_expired = tolerate_expired
        self._paths: OrderedDict[bytes, tuple[x509.Certificate, ...] | None] = OrderedDict()

    @classmethod
    def for_site(cls, settings: Settings) -> ForwardedCerts:
        """The site's trust directory (raises CertificateError when it is missing)."""
        return cls(
            load_trust_anchors(settings.trust_dir),
            settings.https.tolerate_expired_device_certs,
        )

    def check(self, escaped_pem: str, verify: str, now: dt.datetime) -> Forwarded:
        if not escaped_pem:
            return Forwarded(None)
        if verify != "SUCCESS" and not (self.tolerate_expired and verify in TIME_FAILURES):
            return Forwarded(None, f"nginx-verify:{verify or 'missing'}")
        try:
            leaf = x509.load_pem_x509_certificate(unquote(escaped_pem).encode())
        except ValueError:
            return Forwarded(None, "unreadable-forwarded-certificate")
        der = leaf.public_bytes(serialization.Encoding.DER)
        path = self._path(der, leaf)
        if path is None:
            return Forwarded(None, "certificate-not-from-a-trusted-ca")
        if not self.tolerate_expired and any(_outside(cert, now) for cert in path):
            return Forwarded(None, "certificate-or-its-ca-expired")
        return Forwarded(der)

    def _path(self, der: bytes, leaf: x509.Certificate) -> tuple[x509.Certificate, ...] | None:
        """The chain from the leaf to a self-signed trust anchor (cached), or None."""
        if der in self._paths:
            self._paths.move_to_end(der)
            return self._paths[der]
        path = self._walk(leaf)
        self._paths[der] = path
        if len(self._paths) > CACHE_SIZE:
            self._paths.popitem(last=False)
        return path

    def _walk(self, leaf: x509.Certificate) -> tuple[x509.Certificate, ...] | None:
        path = [leaf]
        while len(path) <= MAX_DEPTH:
            current = path[-1]
            if len(path) > 1 and is_self_issued(current):
                return tuple(path)
            issuer = next(
                (ca for ca in self.anchors if _may_issue(ca) and signed_by(current, ca)), None
            )
            if issuer is None or issuer in path[1:]:
                return None
            path.append(issuer)
        return None


def _may_issue(cert: x509.Certificate) -> bool:
    """False for a certificate marked as no CA (basicConstraints CA:FALSE)."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return True
    return constraints.ca


def _outside(cert: x509.Certificate, now: dt.datetime) -> bool:
    return not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
