"""Request and response bodies of the admin API (pydantic v2: JSON Schema 2020-12, as
OpenAPI 3.1 uses). Built from the service layer's frozen records."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from phoneprov.records import AuditEntry, DeviceRecord, Event, TokenRecord

MAC_PATTERN = r"^[0-9a-fA-F]{2}([:-]?[0-9a-fA-F]{2}){5}$|^[0-9a-fA-F]{4}(\.[0-9a-fA-F]{4}){2}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """An RFC 9457 problem document; ``detail`` and ``hint`` are the CLI's message and hint."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    hint: str = ""
    errors: list[str] = Field(default_factory=list, description="Every bad row of an import.")


class Device(BaseModel):
    mac: str
    status: str
    model: str
    family: str
    firmware: str
    stage: str
    ip: str
    protocol: str
    cert_kind: str
    site: str
    group: str
    label: str
    first_seen: float | None
    last_seen: float | None
    requests: int
    flags: list[str]

    @classmethod
    def of(cls, r: DeviceRecord) -> Device:
        return cls(
            mac=r.mac.value,
            status=r.status.value,
            model=r.model,
            family=r.family,
            firmware=r.firmware,
            stage=r.stage,
            ip=r.ip,
            protocol=r.protocol,
            cert_kind=r.cert_kind,
            site=r.site,
            group=r.group_name,
            label=r.label,
            first_seen=r.first_seen,
            last_seen=r.last_seen,
            requests=r.requests,
            flags=list(r.flags),
        )


class Line(BaseModel):
    index: int
    ext: str
    user: str
    server: str
    password: str = Field(description="Masked unless the role may read secrets (admin).")


class DeviceDetail(Device):
    lines: list[Line]
    overrides: dict[str, str] = Field(description="Settings changed on the phone, by file.")


class DevicePage(BaseModel):
    items: list[Device]
    next: str | None = Field(description="Cursor of the next page; null on the last one.")


class DeviceChange(Strict):
    """Fields to set; those left out keep their value. ``lines``: ``N:ext=...,user=...,
    password=...,server=...`` as ``phoneprov device add --line`` takes them."""

    model: str | None = Field(None, max_length=64)
    site: str | None = Field(None, max_length=64)
    group: str | None = Field(None, max_length=64)
    label: str | None = Field(None, max_length=128)
    lines: list[str] = Field(default_factory=list, max_length=64)


class DeviceCreate(DeviceChange):
    mac: str = Field(pattern=MAC_PATTERN)


class StatusChange(BaseModel):
    mac: str
    previous: str
    status: str
    released: list[str] = Field(default_factory=list)


class DeviceEvent(BaseModel):
    time: float
    kind: str
    detail: str

    @classmethod
    def of(cls, e: Event) -> DeviceEvent:
        return cls(time=e.time, kind=e.kind, detail=e.detail)


class RenderedFile(BaseModel):
    name: str
    body: str | None = Field(description="Null: served from the boot directory as it is.")


class ImportReport(BaseModel):
    rows: int
    created: int
    updated: int
    problems: list[str]
    dry_run: bool


class AuditRecord(BaseModel):
    id: int
    time: float
    actor: str
    action: str
    target: str
    changes: dict[str, list[Any]]

    @classmethod
    def of(cls, e: AuditEntry) -> AuditRecord:
        return cls(
            id=e.id, time=e.time, actor=e.actor, action=e.action, target=e.target, changes=e.changes
        )


class Administrator(BaseModel):
    name: str
    role: str
    created: float


class Token(BaseModel):
    name: str
    role: str
    created: float
    expires: float | None
    revoked: float | None
    created_by: str

    @classmethod
    def of(cls, t: TokenRecord) -> Token:
        return cls(
            name=t.name,
            role=t.role,
            created=t.created,
            expires=t.expires,
            revoked=t.revoked,
            created_by=t.created_by,
        )


class TokenCreate(Strict):
    name: str = Field(min_length=1, max_length=64)
    role: str = Field(pattern="^(viewer|operator|admin)$")
    expires: str | None = Field(None, description="Lifetime: 90d, 12h or 30m.")


class TokenSecret(BaseModel):
    name: str
    role: str
    expires: float | None
    token: str = Field(description="Shown once: only its SHA-256 is kept.")


class Account(BaseModel):
    username: str
    kind: str
    mac: str
    realm: str


class Health(BaseModel):
    status: str
    problems: list[str] = Field(default_factory=list)
