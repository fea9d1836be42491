"""The admin side's tables: administrators, API tokens, the audit trail, fleet pages.

Tokens are stored by their SHA-256 only. The audit trail is append-only: this
module has no statement that updates or deletes one of its rows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import sqlalchemy as sa

from phoneprov.records import (
    AdminRecord,
    AuditEntry,
    DeviceQuery,
    DeviceRecord,
    FleetCounts,
    TokenRecord,
)
from phoneprov.store import schema

# Columns a fleet page may be sorted by (the API names them; ``group`` is group_name).
SORTS: dict[str, sa.Column[object]] = {
    "mac": schema.devices.c.mac,
    "status": schema.devices.c.status,
    "model": schema.devices.c.model,
    "firmware": schema.devices.c.firmware,
    "group": schema.devices.c.group_name,
    "label": schema.devices.c.label,
    "ip": schema.devices.c.ip,
    "last_seen": schema.devices.c.last_seen,
}


def _token(row: sa.Row[tuple[object, ...]]) -> TokenRecord:
    m = row._mapping
    return TokenRecord(
        name=str(m["name"]),
        role=str(m["role"]),
        sha256=str(m["sha256"]),
        created=float(m["created"]),
        expires=m["expires"],
        revoked=m["revoked"],
        created_by=str(m["created_by"]),
    )


def _entry(row: sa.Row[tuple[object, ...]]) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        time=float(m["time"]),
        actor=str(m["actor"]),
        action=str(m["action"]),
        target=str(m["target"]),
        changes=json.loads(str(m["changes"])),
        id=int(m["id"]),
    )


class AdminStore:
    """Administrators, tokens and audit rows on an engine shared with ``SqlStore``."""

    def __init__(
        self, engine: sa.Engine, device: Callable[[sa.Row[tuple[object, ...]]], DeviceRecord]
    ) -> None:
        self.engine = engine
        self._device = device  # SqlStore's row -> DeviceRecord converter

    # administrators
    def put_admin(self, name: str, role: str, password_hash: str) -> bool:
        """Create or replace an administrator; True when one of that name existed."""
        table = schema.administrators
        with self.engine.begin() as conn:
            old = conn.execute(sa.select(table.c.created).where(table.c.name == name)).first()
            conn.execute(table.delete().where(table.c.name == name))
            conn.execute(
                table.insert().values(
                    name=name,
                    role=role,
                    password_hash=password_hash,
                    created=float(old.created) if old is not None else time.time(),
                )
            )
        return old is not None

    def get_admin(self, name: str) -> AdminRecord | None:
        table = schema.administrators
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.name == name)).first()
        if row is None:
            return None
        return AdminRecord(row.name, row.role, row.password_hash, float(row.created))

    def admins(self) -> list[AdminRecord]:
        table = schema.administrators
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.name)).all()
        return [AdminRecord(r.name, r.role, r.password_hash, float(r.created)) for r in rows]

    def remove_admin(self, name: str) -> bool:
        table = schema.administrators
        with self.engine.begin() as conn:
            return bool(conn.execute(table.delete().where(table.c.name == name)).rowcount)

    # tokens
    def put_token(self, token: TokenRecord) -> None:
        """Store a new token; StoreError-free: the caller checks the name is free first."""
        with self.engine.begin() as conn:
            conn.execute(
                schema.admin_tokens.insert().values(
                    name=token.name,
                    role=token.role,
                    sha256=token.sha256,
                    created=token.created,
                    expires=token.expires,
                    revoked=token.revoked,
                    created_by=token.created_by,
                )
            )

    def token(self, *, name: str | None = None, sha256: str | None = None) -> TokenRecord | None:
        table = schema.admin_tokens
        query = sa.select(table)
        query = query.where(table.c.name == name) if name is not None else query
        query = query.where(table.c.sha256 == sha256) if sha256 is not None else query
        with self.engine.connect() as conn:
            row = conn.execute(query.limit(1)).first()
        return _token(row) if row is not None else None

    def tokens(self) -> list[TokenRecord]:
        table = schema.admin_tokens
        with self.engine.connect() as conn:
            return [_token(r) for r in conn.execute(sa.select(table).order_by(table.c.name))]

    def revoke_token(self, name: str, when: float) -> bool:
        """Mark a token revoked; False when there is none of that name or it already is."""
        table = schema.admin_tokens
        with self.engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(table.c.name == name, table.c.revoked.is_(None))
                .values(revoked=when)
            )
            return bool(result.rowcount)

    # the audit trail
    def append_audit(self, entry: AuditEntry) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                schema.audit_log.insert().values(
                    time=entry.time,
                    actor=entry.actor,
                    action=entry.action,
                    target=entry.target,
                    changes=json.dumps(entry.changes, sort_keys=True, default=str),
                )
            )
            key = result.inserted_primary_key
            return int(key[0]) if key else 0

    def audit(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        actor: str | None = None,
        target: str | None = None,
        action: str | None = None,
    ) -> list[AuditEntry]:
        """Newest first; ``before``: only entries with a smaller id (the next page)."""
        table = schema.audit_log
        query = sa.select(table).order_by(table.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(table.c.id < before)
        if actor is not None:
            query = query.where(table.c.actor == actor)
        if target is not None:
            query = query.where(table.c.target == target)
        if action is not None:
            query = query.where(table.c.action == action)
        with self.engine.connect() as conn:
            return [_entry(r) for r in conn.execute(query)]

    # the fleet
    def devices_page(self, query: DeviceQuery) -> list[DeviceRecord]:
        """One page of devices, filtered in SQL, ordered by (sort column, MAC)."""
        table = schema.devices
        column = SORTS[query.sort]
        key = sa.func.coalesce(column, -1.0) if query.sort == "last_seen" else column
        select = sa.select(table)
        for value, col in (
            (query.status, table.c.status),
            (query.model, table.c.model),
            (query.group, table.c.group_name),
            (query.site, table.c.site),
            (query.firmware, table.c.firmware),
        ):
            if value is not None:
                select = select.where(col == value)
        if query.text:
            pattern = (
                "%" + query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            select = select.where(
                sa.or_(
                    *(
                        c.ilike(pattern, escape="\\")
                        for c in (table.c.mac, table.c.label, table.c.model, table.c.ip)
                    )
                )
            )
        if query.after is not None:
            last: object = float(query.after[0]) if query.sort == "last_seen" else query.after[0]
            mac = query.after[1]
            if query.descending:
                select = select.where(sa.or_(key < last, sa.and_(key == last, table.c.mac < mac)))
            else:
                select = select.where(sa.or_(key > last, sa.and_(key == last, table.c.mac > mac)))
        order = (key.desc(), table.c.mac.desc()) if query.descending else (key, table.c.mac)
        select = select.order_by(*order).limit(query.limit)
        with self.engine.connect() as conn:
            return [self._device(row) for row in conn.execute(select)]

    def fleet_counts(self, not_seen_before: float) -> FleetCounts:
        """Phones by model, firmware, boot stage and status, and those not seen lately."""
        table = schema.devices
        counts: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for name, column in (
                ("model", table.c.model),
                ("firmware", table.c.firmware),
                ("stage", table.c.stage),
                ("status", table.c.status),
            ):
                rows = conn.execute(sa.select(column, sa.func.count()).group_by(column))
                counts[name] = {str(value): int(n) for value, n in rows}
            stale = conn.execute(
                sa.select(sa.func.count()).where(
                    sa.or_(table.c.last_seen.is_(None), table.c.last_seen < not_seen_before)
                )
            ).scalar()
        return FleetCounts(
            by_model=counts["model"],
            by_firmware=counts["firmware"],
            by_stage=counts["stage"],
            by_status=counts["status"],
            not_seen=int(stale or 0),
        )

    def ping(self) -> int:
        """The schema version, read over a new connection (not a pooled one, which would
        still reach a database file that was removed); raises SQLAlchemyError when the
        database cannot be reached."""
        engine = sa.create_engine(self.engine.url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                found = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version)))
                return int(found.scalar() or 0)
        finally:
            engine.dispose()
