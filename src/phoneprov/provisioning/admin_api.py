"""The services behind the admin API (and the web console): one object per process.

``AdminServices`` shares the phone listeners' store; it authenticates callers
(tokens, passwords) with the phone accounts' back-off, asks ``policy.decide``
whether a role may do something, and reads the fleet a page at a time. Changes
go through the same service functions as the CLI (``provisioning/devices.py``,
...), run inside ``trail.acting_as`` so the audit trail names the caller.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.policy import Action, Decision, PolicyRules, decide
from phoneprov.protocols.polycom import Resource, ResourceKind
from phoneprov.provisioning import admins
from phoneprov.provisioning.audit import Audit
from phoneprov.provisioning.devicecsv import write_csv
from phoneprov.provisioning.lockout import Lockout, Login
from phoneprov.provisioning.metrics import Metrics
from phoneprov.provisioning.preview import preview_files
from phoneprov.reasons import Reason
from phoneprov.records import AuditEntry, DeviceQuery, DeviceRecord, Event
from phoneprov.store import Store, open_store

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Page:
    """One page of devices and the cursor of the next (None on the last page)."""

    devices: list[DeviceRecord]
    next: str | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a caller is not let in: no or a bad credential, or a lock (seconds to wait)."""

    reason: Reason
    retry_after: int | None = None


def encode_cursor(sort: str, record: DeviceRecord) -> str:
    value = getattr(record, "group_name" if sort == "group" else sort)
    raw = json.dumps([sort, "" if value is None else str(value), record.mac.value])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[str, str]:
    """The (sort value, MAC) a cursor carries; InputError when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        kind, value, mac = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if kind != sort or not isinstance(value, str):
            raise ValueError(kind)
        if sort == "last_seen":
            float(value or "-1")
        return (value or "-1") if sort == "last_seen" else value, MacAddress(mac).value
    except (ValueError, TypeError, UnicodeDecodeError, InputError):
        raise InputError(
            "the cursor is not one this server gave for this sort",
            "Pass the `next` value of the previous page unchanged, with the same sort.",
        ) from None


class NotFound(InputError):
    """What the caller names does not exist (HTTP 404)."""


class AdminServices:
    """What the admin listener (and the console) of one process use."""

    def __init__(
        self, settings: Settings, store: Store, audit: Audit, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.audit = audit
        self.lockout = Lockout(settings.lockout, audit)
        self.metrics = metrics
        self.rules = PolicyRules(folders=dict(settings.policy.folders))

    # who is asking
    def authenticate_token(self, secret: str, ip: str) -> admins.Admin | Refusal:
        """The token's Admin, or why not (logged to the security log, with back-off)."""
        login = Login("admin-api", ip, "api-token", "token")
        wait = self.lockout.refused(login)
        if wait is not None:
            return Refusal(Reason.LOCKED_OUT, wait)
        admin = admins.authenticate_token(self.store, secret)
        if admin is not None:
            return admin
        self.audit.refused(
            protocol="admin-api", ip=ip, identity="token", reason=Reason.BAD_TOKEN.value
        )
        lock = self.lockout.failed(login)
        return Refusal(Reason.BAD_TOKEN, lock)

    def login(self, name: str, password: str, ip: str) -> admins.Admin | Refusal:
        """The administrator for a password login (the console), or why not."""
        login = Login("admin-api", ip, f"admin:{name}", f"admin:{name}")
        wait = self.lockout.refused(login)
        if wait is not None:
            return Refusal(Reason.LOCKED_OUT, wait)
        admin = admins.login(self.store, name, password)
        if admin is not None:
            return admin
        self.audit.refused(
            protocol="admin-api",
            ip=ip,
            identity=f"admin:{name}",
            reason=Reason.BAD_PASSWORD.value,
        )
        return Refusal(Reason.BAD_PASSWORD, self.lockout.failed(login))

    def decide(self, admin: admins.Admin, action: Action, kind: ResourceKind) -> Decision:
        """What the policy table says about ``admin`` doing ``action`` on ``kind``."""
        return decide(admin.principal(), action, Resource(kind.value, kind), self.rules)

    # the fleet
    def devices(self, query: DeviceQuery, cursor: str | None = None) -> Page:
        if not 1 <= query.limit <= MAX_PAGE:
            raise InputError(
                f"limit {query.limit} is out of range", f"Ask for 1 to {MAX_PAGE} per page."
            )
        after = decode_cursor(cursor, query.sort) if cursor else None
        query = dataclasses.replace(query, after=after, limit=query.limit + 1)
        rows = self.store.admin.devices_page(query)
        more = len(rows) == query.limit
        rows = rows[: query.limit - 1]
        return Page(rows, encode_cursor(query.sort, rows[-1]) if more and rows else None)

    def device(self, mac: MacAddress) -> DeviceRecord:
        record = self.store.get_device(mac)
        if record is None:
            raise NotFound(
                f"no device {mac} in this site", "List the phones with GET /api/v1/devices."
            )
        return record

    def events(self, mac: MacAddress, limit: int = 100) -> list[Event]:
        self.device(mac)
        return self.store.events_for(mac, limit=min(max(limit, 1), MAX_PAGE))

    def rendered(self, mac: MacAddress) -> list[tuple[str, str | None]]:
        """The files the phone gets, rendered with SIP passwords masked."""
        self.device(mac)
        return [
            (f.name, f.body.decode("utf-8", "replace") if f.body is not None else None)
            for f in preview_files(self.settings, mac, masked=True)
        ]

    def export_csv(self, passwords: bool) -> str:
        out = io.StringIO()
        write_csv(self.store.inventory.entries(), out, passwords=passwords)
        return out.getvalue()

    def audit_entries(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        actor: str | None = None,
        target: str | None = None,
        action: str | None = None,
    ) -> list[AuditEntry]:
        return self.store.admin.audit(
            limit=limit, before=before, actor=actor, target=target, action=action
        )

    # health
    def problems(self, listeners_bound: Callable[[], bool]) -> list[str]:
        """What keeps this server from being ready (empty: ready)."""
        found: list[str] = []
        try:
            self.store.admin.ping()
        except Exception as error:  # the driver's error, whichever: the database is gone
            found.append(f"database unreachable: {error.__class__.__name__}")
        ca = self.settings.pki_dir / "ca.pem"
        try:
            ca.read_bytes()
        except OSError as error:
            found.append(f"CA certificate unreadable: {error.strerror}")
        if not listeners_bound():
            found.append("listeners not bound")
        return found


def audit_entries(
    settings: Settings,
    *,
    limit: int = 100,
    actor: str | None = None,
    target: str | None = None,
    action: str | None = None,
) -> list[AuditEntry]:
    """The audit trail, newest first (``phoneprov audit list``)."""
    with closing(open_store(settings)) as store:
        return store.admin.audit(limit=limit, actor=actor, target=target, action=action)
