"""What a device certificate is, in the words of the phone's Status menu.

:func:`classify_device_cert` is what the HTTPS listener calls per connection.
Python 3.11's ``ssl`` hands over only the leaf, so classification works from
the leaf alone: its issuer is looked up among the known Polycom intermediates
(shipped in the package, pinned by SHA-1 thumbprint) and our own roots, and
the signature is checked against that issuer's key. A certificate is genuine
``factory`` only if it chains to the Polycom Root CA through a Polycom
intermediate *and* that intermediate's thumbprint is a known one (SPEC §7).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from phoneprov.errors import CertificateError
from phoneprov.model import CertKind, MacAddress
from phoneprov.pki.chain import (
    MAX_DEPTH,
    colon_hex,
    common_name,
    is_self_issued,
    mac_of,
    signed_by,
)
from phoneprov.pki.trust import polycom_chain

VerdictName = Literal["factory", "self-signed", "custom", "invalid"]
Origin = Literal["factory", "self-signed", "custom", "unknown"]

# SHA-1 thumbprints of Polycom Equipment Issuing CA 1 and 2 (research §6, checked
# with `openssl x509 -fingerprint -sha1`); the shipped PEM files must match them.
POLYCOM_ISSUING_SHA1 = frozenset(
    {
        "0D:95:6E:55:10:5F:F2:DF:BE:7E:CB:8D:A3:E8:E6:F3:A9:F5:08:01",
        "91:AA:85:97:D8:EF:36:EF:66:58:F3:79:81:89:B7:2D:FE:5F:17:F9",
    }
)

_CERT_KINDS: dict[Origin, CertKind] = {
    "factory": CertKind.FACTORY,
    "self-signed": CertKind.SELF_SIGNED,
    "custom": CertKind.OURS,
    "unknown": CertKind.OTHER,
}


@dataclass(frozen=True)
class Verdict:
    """The verdict on a device certificate, and why.

    ``origin`` is what the certificate is regardless of time, so a listener that
    tolerates expired factory certificates can still accept ``invalid`` +
    ``expired`` + ``origin == "factory"``.
    """

    verdict: VerdictName
    reason: str
    mac: MacAddress | None
    origin: Origin
    expired: bool = False

    @property
    def cert_kind(self) -> CertKind:
        """The origin as the policy layer's CertKind."""
        return _CERT_KINDS[self.origin]


@dataclass(frozen=True)
class PolycomAnchors:
    """The Polycom root, its intermediates, and the thumbprints of the issuing CAs.

    Production uses :meth:`shipped`; tests build a Polycom-like chain of their
    own and pass it with :meth:`from_chain`.
    """

    root: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    issuing_thumbprints: frozenset[str]

    @classmethod
    def from_chain(
        cls,
        root: x509.Certificate,
        policy: x509.Certificate,
        issuing: Sequence[x509.Certificate],
        thumbprints: frozenset[str] | None = None,
    ) -> PolycomAnchors:
        """Build anchors from root -> policy CA -> issuing CAs; raise CertificateError if
        the certificates do not sign each other. ``thumbprints`` (colon hex, SHA-1 or
        MD5) default to those of ``issuing``."""
        if not signed_by(policy, root) or not all(signed_by(ca, policy) for ca in issuing):
            raise CertificateError(
                "the Polycom chain does not link: root -> policy CA -> issuing CAs",
                "Reinstall phoneprov; the shipped Polycom certificates are damaged.",
            )
        if thumbprints is None:
            thumbprints = frozenset(_thumbprint(ca, hashes.SHA1()) for ca in issuing)
        return cls(root, (policy, *issuing), thumbprints)

    @classmethod
    @functools.cache
    def shipped(cls) -> PolycomAnchors:
        """Return the anchors from the package data, pinned to the known thumbprints.

        Raises CertificateError if the shipped files do not match the pins.
        """
        root, policy, *issuing = polycom_chain()
        found = {_thumbprint(ca, hashes.SHA1()) for ca in issuing}
        if found != POLYCOM_ISSUING_SHA1:
            raise CertificateError(
                "the shipped Polycom Equipment Issuing CA files do not match their "
                "known SHA-1 thumbprints",
                "Reinstall phoneprov from a trusted source.",
            )
        md5 = {_thumbprint(ca, hashes.MD5()) for ca in issuing}
        return cls.from_chain(root, policy, issuing, frozenset(POLYCOM_ISSUING_SHA1 | md5))

    def is_known_issuing(self, cert: x509.Certificate) -> bool:
        """True if ``cert``'s SHA-1 or MD5 thumbprint is a known issuing CA's."""
        return bool(
            {_thumbprint(cert, hashes.SHA1()), _thumbprint(cert, hashes.MD5())}
            & self.issuing_thumbprints
        )


def _thumbprint(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> str:
    return colon_hex(cert.fingerprint(algorithm))


def _label(cert: x509.Certificate) -> str:
    return common_name(cert) or cert.subject.rfc4514_string() or "(empty subject)"


def _build_path(
    leaf: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> tuple[list[x509.Certificate], str]:
    """Walk issuers from ``leaf`` up to a self-issued certificate.

    Returns (path starting with the leaf, "") or (partial path, reason it stops).
    """
    path = [leaf]
    while not is_self_issued(path[-1]):
        if len(path) > MAX_DEPTH:
            return path, f"chain longer than {MAX_DEPTH} certificates"
        current = path[-1]
        named = [c for c in candidates if c.subject == current.issuer]
        if not named:
            return path, f"unknown issuer {current.issuer.rfc4514_string()}"
        parent = next((c for c in named if signed_by(current, c)), None)
        if parent is None:
            return path, f"bad signature: not signed by {_label(named[0])}"
        path.append(parent)
    return path, ""


def _origin(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    our_roots: Sequence[x509.Certificate],
    anchors: PolycomAnchors,
) -> tuple[Origin, str]:
    """Return (origin, reason); origin ``unknown`` means the reason is why it is invalid."""
    mac = mac_of(leaf)
    if leaf == anchors.root or leaf in anchors.intermediates or leaf in our_roots:
        return "unknown", f"{_label(leaf)} is a CA certificate, not a device certificate"
    if is_self_issued(leaf):
        if not signed_by(leaf, leaf):
            return "unknown", "bad signature: self-signed certificate not signed by its own key"
        if mac is None:
            return "unknown", f"unknown issuer: self-signed by {_label(leaf)}, not by a MAC"
        return "self-signed", f"issuer and subject are the MAC {mac}"
    candidates = [*our_roots, anchors.root, *anchors.intermediates, *intermediates]
    path, problem = _build_path(leaf, candidates)
    if problem:
        return "unknown", problem
    top = path[-1]
    if top in our_roots:
        return "custom", f"issued by this site's CA {_label(top)}"
    if top == anchors.root:
        issuer = path[1]
        if anchors.is_known_issuing(issuer):
            return "factory", (
                f"issued by {_label(issuer)} (SHA-1 {_thumbprint(issuer, hashes.SHA1())}) "
                f"under {_label(top)}"
            )
        return "unknown", (
            f"bad issuer: {_label(issuer)} chains to {_label(top)} but its thumbprint "
            "matches no known Polycom Equipment Issuing CA"
        )
    return "unknown", f"unknown issuer: {_label(top)} is neither Polycom's nor this site's CA"


def classify_device_cert(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    *,
    our_roots: list[x509.Certificate],
    now: datetime,
    polycom: PolycomAnchors | None = None,
) -> Verdict:
    """Classify a device certificate as factory, self-signed, custom or invalid.

    ``intermediates`` are extra certificates the device sent (may be empty);
    ``our_roots`` are this site's CA roots; ``polycom`` defaults to the shipped,
    thumbprint-pinned Polycom chain. Never raises for a bad certificate: the
    reason is in the verdict.
    """
    anchors = polycom if polycom is not None else PolycomAnchors.shipped()
    mac = mac_of(leaf)
    origin, reason = _origin(leaf, intermediates, our_roots, anchors)
    expired = now > leaf.not_valid_after_utc
    if origin == "unknown":
        return Verdict("invalid", reason, mac, origin, expired)
    if expired:
        day = leaf.not_valid_after_utc.date().isoformat()
        return Verdict("invalid", f"expired on {day} ({reason})", mac, origin, True)
    if now < leaf.not_valid_before_utc:
        day = leaf.not_valid_before_utc.isoformat()
        return Verdict("invalid", f"not valid before {day} ({reason})", mac, origin)
    return Verdict(origin, reason, mac, origin)


def malformed(error: str) -> Verdict:
    """Return the verdict for bytes that are not a certificate at all."""
    return Verdict("invalid", f"malformed: {error}", None, "unknown")
