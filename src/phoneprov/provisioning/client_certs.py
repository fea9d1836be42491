"""Who is on the other end of a TLS connection: the device certificate -> identity facts.

The TLS layer has already checked the chain against the site's trust anchors;
here the leaf is read for its MAC (the CN, as Polycom factory certificates and
ours carry it), its kind (``pki.inspect``: factory only when the issuing CA's
thumbprint is a known Polycom one), its validity and whether we revoked it.
Revocations come from a ``RevocationWatch`` (``provisioning/revocations.py``):
in memory, refreshed from the site database, so ``phoneprov ca revoke`` on any
node takes effect on every node within seconds, without a restart and without
a query per handshake. Phones open a new connection per file, so facts are
cached per certificate.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.x509.oid import NameOID

from phoneprov.config import Settings
from phoneprov.model import CertKind, MacAddress
from phoneprov.pki.authority import LEGACY_DIR, CertificateAuthority
from phoneprov.pki.inspect import PolycomAnchors, classify_device_cert

CACHE_SIZE = 20_000


class Revocations(Protocol):
    """The serials our CAs revoked (``RevocationWatch``)."""

    def get(self) -> frozenset[int]: ...


@dataclass(frozen=True, slots=True)
class DeviceCertFacts:
    mac: MacAddress | None
    common_name: str
    kind: CertKind
    serial: int
    not_after: dt.datetime
    issued_by_us: bool

    def expired(self, now: dt.datetime) -> bool:
        return self.not_after < now


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


class CertIdentifier:
    """Classifies client certificates for one site (our CAs, the Polycom chain, our CRL)."""

    def __init__(
        self,
        our_roots: list[x509.Certificate],
        revocations: Revocations,
        polycom: PolycomAnchors | None = None,
    ) -> None:
        self.our_roots = our_roots
        self.polycom = polycom
        self.revocations = revocations
        self._cache: OrderedDict[bytes, DeviceCertFacts] = OrderedDict()

    @classmethod
    def for_site(cls, settings: Settings, revocations: Revocations) -> CertIdentifier:
        """The site's identifier: its CA, and the legacy SHA-1 CA when the site has one."""
        roots = [CertificateAuthority.load(settings.pki_dir).cert]
        legacy_dir = settings.pki_dir / LEGACY_DIR
        if CertificateAuthority.exists(legacy_dir):
            roots.append(CertificateAuthority.load(legacy_dir).cert)
        return cls(roots, revocations)

    def facts(self, der: bytes, now: dt.datetime) -> DeviceCertFacts:
        """What the certificate says (cached per certificate)."""
        hit = self._cache.get(der)
        if hit is not None:
            self._cache.move_to_end(der)
            return hit
        cert = x509.load_der_x509_certificate(der)
        cn = _common_name(cert.subject)
        verdict = classify_device_cert(
            cert, [], our_roots=self.our_roots, now=now, polycom=self.polycom
        )
        facts = DeviceCertFacts(
            mac=MacAddress.maybe(cn.replace(":", "").replace("-", "")),
            common_name=cn,
            kind=verdict.cert_kind,
            serial=cert.serial_number,
            not_after=cert.not_valid_after_utc,
            issued_by_us=verdict.origin == "custom",
        )
        self._cache[der] = facts
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return facts

    def revoked(self, facts: DeviceCertFacts) -> bool:
        """True when one of our CAs revoked this certificate (a lookup in memory)."""
        return facts.issued_by_us and facts.serial in self.revocations.get()
