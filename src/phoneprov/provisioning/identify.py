"""Who is on the other end of a TLS connection: the device certificate -> identity facts.

The TLS layer has already checked the chain against the site's trust anchors;
here the leaf is read for its MAC (the CN, as Polycom factory certificates and
ours carry it), its kind, its validity and whether we revoked it. Revocations
are re-read when ``<pki>/crl.pem`` changes, so ``phoneprov ca revoke`` takes
effect from the next handshake without a restart.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from phoneprov.model import CertKind, MacAddress


@dataclass(frozen=True, slots=True)
class DeviceCertFacts:
    mac: MacAddress | None
    common_name: str
    kind: CertKind
    serial: int
    expired: bool
    revoked: bool


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


class CertIdentifier:
    """Classifies client certificates for one site (our CA, the Polycom issuers, our CRL)."""

    def __init__(
        self,
        our_ca: x509.Certificate | None,
        factory_issuers: list[x509.Certificate],
        crl_path: Path,
    ) -> None:
        self.our_subject = our_ca.subject if our_ca is not None else None
        self.factory_subjects = {cert.subject for cert in factory_issuers}
        self.crl_path = crl_path
        self._crl_stamp: tuple[int, int] | None = None
        self._revoked: frozenset[int] = frozenset()

    def revoked_serials(self) -> frozenset[int]:
        """Serials in our CRL, re-read when the file changes (one stat per handshake)."""
        try:
            st = os.stat(self.crl_path)
        except FileNotFoundError:
            self._crl_stamp, self._revoked = None, frozenset()
            return self._revoked
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._crl_stamp:
            crl = x509.load_pem_x509_crl(self.crl_path.read_bytes())
            self._revoked = frozenset(entry.serial_number for entry in crl)
            self._crl_stamp = stamp
        return self._revoked

    def identify(self, der: bytes, now: dt.datetime) -> DeviceCertFacts:
        cert = x509.load_der_x509_certificate(der)
        cn = _common_name(cert.subject)
        mac = MacAddress.maybe(cn.replace(":", "").replace("-", ""))
        if self.our_subject is not None and cert.issuer == self.our_subject:
            kind = CertKind.OURS
        elif cert.issuer == cert.subject:
            kind = CertKind.SELF_SIGNED
        elif cert.issuer in self.factory_subjects:
            kind = CertKind.FACTORY
        else:
            kind = CertKind.OTHER
        revoked = kind is CertKind.OURS and cert.serial_number in self.revoked_serials()
        return DeviceCertFacts(
            mac=mac,
            common_name=cn,
            kind=kind,
            serial=cert.serial_number,
            expired=cert.not_valid_after_utc < now,
            revoked=revoked,
        )
