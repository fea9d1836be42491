"""Request and response bodies of the CA, firmware, DHCP, doctor, history and
administrator routes (pydantic v2, JSON Schema 2020-12 as OpenAPI 3.1 uses)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from phoneprov.provisioning.certificates import KeyKind, RevocationReason
from phoneprov.provisioning.phone_history import LogFindings, Moment, Upload
from phoneprov.provisioning.signing import IssuedCertificate, QueuedCsr
from phoneprov.servers.admin.models import Strict


class CertificateDetail(BaseModel):
    serial: str
    kind: str
    subject: str
    issuer: str
    mac: str | None
    slot: str | None
    not_before: str
    not_after: str
    issued_at: str
    revoked: str | None = Field(description="When it was revoked (ISO 8601), null if valid.")
    reason: str | None
    key: str
    signature_algorithm: str
    fingerprints: dict[str, str] = Field(description="md5, sha1 and sha256, colon hex.")
    pem: str

    @classmethod
    def of(cls, issued: IssuedCertificate) -> CertificateDetail:
        r, facts = issued.record, issued.facts
        return cls(
            serial=r.serial_hex,
            kind=str(r.kind),
            subject=facts.subject,
            issuer=facts.issuer,
            mac=r.mac,
            slot=r.slot,
            not_before=facts.not_before.isoformat(),
            not_after=facts.not_after.isoformat(),
            issued_at=r.issued_at.isoformat(),
            revoked=r.revoked_at.isoformat() if r.revoked_at else None,
            reason=r.reason,
            key=facts.key,
            signature_algorithm=facts.signature_algorithm,
            fingerprints=dict(facts.fingerprints),
            pem=issued.pem.decode("ascii"),
        )


class ServerCertRequest(Strict):
    """``phoneprov ca issue-server``: every name goes in the SAN, the first is the CN."""

    names: list[str] = Field(min_length=1, max_length=32)
    key: KeyKind = KeyKind.ec_p256
    days: int = Field(825, ge=1, le=3650)


class ServerCertIssued(BaseModel):
    serial: str
    subject: str
    not_after: str
    installed: str = Field(description="The file it was installed as, in the site's pki folder.")
    pem: str


class RevokeRequest(Strict):
    reason: RevocationReason = RevocationReason.unspecified


class Revoked(BaseModel):
    serials: list[str]
    crl: str = Field(description="The CRL file, re-signed with them in it.")


class Csr(BaseModel):
    name: str
    mac: str | None
    size: int
    received: float
    subject: str
    problem: str = Field(description="Why it cannot be signed as it is; empty when it parses.")

    @classmethod
    def of(cls, q: QueuedCsr) -> Csr:
        mac = q.mac.value if q.mac else None
        return cls(
            name=q.name,
            mac=mac,
            size=q.size,
            received=q.received,
            subject=q.subject,
            problem=q.problem,
        )


class CsrSigned(BaseModel):
    name: str
    serial: str
    subject: str
    not_after: str
    slot: str | None
    pem: str


class CsrReject(Strict):
    reason: str = Field("", max_length=200, description="Recorded on the phone's timeline.")


class FirmwareImage(BaseModel):
    version: str
    part: str
    models: list[str]
    sha256: str
    size: int
    new: bool = Field(description="False when these bytes were in the catalog already.")


class FirmwareAssign(Strict):
    """``phoneprov firmware assign``: to models (site-wide), or to a group."""

    version: str = Field(min_length=1, max_length=64)
    models: list[str] = Field(default_factory=list, max_length=64)
    group: str = Field("", max_length=64)


class FirmwareAssigned(BaseModel):
    version: str
    targets: list[str]


class VersionCount(BaseModel):
    version: str = Field(description="As the phones report it; empty: not known yet.")
    phones: int


class DhcpOption(BaseModel):
    code: int
    vendor_class: str | None
    name: str
    hex: str
    value: str
    notes: list[str]


class DhcpValues(BaseModel):
    provisioning_url: str
    options: list[DhcpOption]


class DoctorFinding(BaseModel):
    check: str
    severity: Literal["pass", "warn", "fail"]
    message: str
    fix: str


class DoctorReport(BaseModel):
    findings: list[DoctorFinding]
    summary: dict[str, int]


class TimelineEntry(BaseModel):
    time: float
    source: Literal["event", "audit"]
    kind: str
    detail: str
    actor: str = Field(description="Who made the change; empty for the phone's own events.")

    @classmethod
    def of(cls, m: Moment) -> TimelineEntry:
        source: Literal["event", "audit"] = "audit" if m.source == "audit" else "event"
        return cls(time=m.time, source=source, kind=m.kind, detail=m.detail, actor=m.actor)


class UploadedFile(BaseModel):
    name: str
    kind: str
    path: str
    size: int
    modified: float
    held: bool = Field(description="Kept aside until the phone is approved.")

    @classmethod
    def of(cls, u: Upload) -> UploadedFile:
        return cls(
            name=u.name,
            kind=u.kind.value,
            path=u.path,
            size=u.size,
            modified=u.modified,
            held=u.held,
        )


class LogReport(BaseModel):
    log: UploadedFile
    lines: int
    error: str = Field(description="Why the log could not be read; empty when it was.")
    findings: list[dict[str, Any]] = Field(
        description="kind, severity, lines, cause, fix, as `phoneprov logs analyze --json`."
    )

    @classmethod
    def of(cls, f: LogFindings) -> LogReport:
        return cls(
            log=UploadedFile.of(f.upload),
            lines=f.lines,
            error=f.error,
            findings=[finding.to_json() for finding in f.findings],
        )


class AdministratorCreate(Strict):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["viewer", "operator", "admin"]
    password: str = Field(min_length=1, max_length=1024)
