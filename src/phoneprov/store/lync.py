"""Device update requests in the store: the raw body per request, device flags, lookups.

Separate from ``store.sql`` (which builds it on its engine) so the Lync/SfB service owns its table
(``ucupdate_requests``, added by a migration in ``store.schema``). Each call is
one short transaction; the server runs them off the event loop.

The update endpoint is anonymous, so what a request says about a device is an
unverified sighting (``sighted``): it creates a record flagged ``unverified``
within the limits it is given, updates only records so flagged, and never
writes over a record a phone listener or the administrator wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.records import UNVERIFIED_FLAG, RequestRow, Sighted, Sighting
from phoneprov.store import schema

KEEP_PER_DEVICE = 50  # rows kept per MAC (and for requests without one): loop guard, `device show`
BODY_KEPT = 4096  # bytes of a request body kept: a real request is a few hundred bytes
RATE_WINDOW = 60.0  # seconds over which new unverified devices are counted
CHUNK = 500  # MACs per IN (...): SQLite's variable limit is 999 on old builds
_OBSERVED = ("model", "family", "firmware", "stage", "user_agent")  # what a request tells


def _flagged(flags: sa.ColumnElement[str], flag: str) -> sa.ColumnElement[bool]:
    """SQL: ``flag`` is one of the comma-separated ``flags`` (SQLite and PostgreSQL)."""
    return (sa.literal(",") + flags + ",").contains(f",{flag},")


class LyncLog:
    """The ``ucupdate_requests`` table and the device facts the service needs."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, row: RequestRow) -> None:
        """Insert ``row`` and keep only the latest KEEP_PER_DEVICE rows for its MAC."""
        table = schema.ucupdate_requests
        body = row.body
        if len(body) > BODY_KEPT:
            body = f"{body[:BODY_KEPT]}... [{len(row.body) - BODY_KEPT} more characters not kept]"
        with self.engine.begin() as conn:
            conn.execute(
                table.insert().values(
                    time=row.time,
                    mac=row.mac,
                    ip=row.ip,
                    side=row.side,
                    package=row.package,
                    reported=row.reported,
                    offered=row.offered,
                    outcome=row.outcome,
                    body=body,
                )
            )
            # Requests without a MAC share one allowance ("" is their key): anyone may
            # send them, so they must not pile up either.
            keep = (
                sa.select(table.c.id)
                .where(table.c.mac == row.mac)
                .order_by(table.c.id.desc())
                .limit(KEEP_PER_DEVICE)
            )
            conn.execute(
                table.delete().where(
                    table.c.mac == row.mac, table.c.id.not_in(keep.scalar_subquery())
                )
            )

    def sighted(self, sighting: Sighting, *, per_minute: int, cap: int) -> Sighted:
        """Record what an anonymous update request says about its device; return what it did.

        A record flagged unverified gets the request's model, firmware and address. A
        record without the flag (a phone listener or the administrator wrote it) is
        left as it is. A device without a record gets one, flagged unverified, when
        fewer than ``per_minute`` unverified records were created in the last minute
        and fewer than ``cap`` exist (counted in the database, so across every node).
        """
        table = schema.devices
        mac = sighting.mac.value
        observed = {key: getattr(sighting, key) for key in _OBSERVED if getattr(sighting, key)}
        with self.engine.begin() as conn:
            current = conn.execute(sa.select(table.c.flags).where(table.c.mac == mac)).first()
            if current is not None:
                if UNVERIFIED_FLAG not in str(current[0]).split(","):
                    return Sighted.UNTOUCHED
                conn.execute(
                    table.update()
                    .where(table.c.mac == mac, _flagged(table.c.flags, UNVERIFIED_FLAG))
                    .values(
                        ip=sighting.ip,
                        protocol=sighting.protocol,
                        last_seen=sighting.time,
                        requests=table.c.requests + 1,
                        **observed,
                    )
                )
                return Sighted.UPDATED
            since = sighting.time - RATE_WINDOW
            total, recent = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(
                        sa.func.sum(sa.case((table.c.first_seen >= since, 1), else_=0)), 0
                    ),
                ).where(_flagged(table.c.flags, UNVERIFIED_FLAG))
            ).one()
            if int(total) >= cap:
                return Sighted.OVER_CAP
            if int(recent) >= per_minute:
                return Sighted.OVER_RATE
            # A phone listener may record the same MAC at this moment: its record wins.
            conn.execute(
                self._insert(table)
                .values(
                    mac=mac,
                    status=sighting.status_if_new.value,
                    first_seen=sighting.time,
                    last_seen=sighting.time,
                    ip=sighting.ip,
                    protocol=sighting.protocol,
                    requests=1,
                    flags=UNVERIFIED_FLAG,
                    **observed,
                )
                .on_conflict_do_nothing(index_elements=[table.c.mac])
            )
            return Sighted.CREATED

    @staticmethod
    def confirm(conn: sa.Connection, macs: Sequence[str]) -> None:
        """Drop the unverified flag of ``macs`` (a phone listener saw them), in ``conn``."""
        table = schema.devices
        flagged: dict[str, str] = {}
        for start in range(0, len(macs), CHUNK):
            rows = conn.execute(
                sa.select(table.c.mac, table.c.flags).where(
                    table.c.mac.in_(macs[start : start + CHUNK]),
                    _flagged(table.c.flags, UNVERIFIED_FLAG),
                )
            )
            flagged.update({str(row.mac): str(row.flags) for row in rows})
        for mac, flags in flagged.items():
            kept = ",".join(f for f in flags.split(",") if f and f != UNVERIFIED_FLAG)
            conn.execute(table.update().where(table.c.mac == mac).values(flags=kept))

    def _insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT with ON CONFLICT (PostgreSQL and SQLite 3.24+ have it)."""
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def recent(self, mac: MacAddress, limit: int = 10) -> list[RequestRow]:
        """The latest ``limit`` requests of ``mac``, newest first."""
        table = schema.ucupdate_requests
        query = (
            sa.select(table)
            .where(table.c.mac == mac.value)
            .order_by(table.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                RequestRow(
                    r.time, r.mac, r.ip, r.side, r.package, r.reported, r.offered, r.outcome, r.body
                )
                for r in conn.execute(query)
            ]

    def model_at_ip(self, ip: str, since: float) -> str:
        """The model of the device last seen at ``ip`` (device update request after ``since``,
        else the device record with that address), or ''."""
        requests, devices = schema.ucupdate_requests, schema.devices
        with self.engine.connect() as conn:
            package = conn.execute(
                sa.select(requests.c.package)
                .where(requests.c.ip == ip, requests.c.time >= since)
                .order_by(requests.c.id.desc())
                .limit(1)
            ).scalar()
            if package:
                parts = str(package).split("/")
                return parts[2] if len(parts) > 2 else ""
            model = conn.execute(
                sa.select(devices.c.model)
                .where(devices.c.ip == ip)
                .order_by(devices.c.last_seen.desc())
                .limit(1)
            ).scalar()
        return str(model or "")

    def group_of(self, mac: MacAddress) -> str:
        """The device's inventory group ('' when it has none or is unknown)."""
        table = schema.devices
        with self.engine.connect() as conn:
            group = conn.execute(
                sa.select(table.c.group_name).where(table.c.mac == mac.value)
            ).scalar()
        return str(group or "")

    def set_flag(
        self,
        mac: MacAddress,
        flag: str,
        on: bool,
        status_if_new: DeviceStatus = DeviceStatus.DISCOVERED,
    ) -> bool:
        """Add or remove ``flag`` in ``devices.flags`` (comma-separated); create the row if needed.

        Returns True when the flags changed.
        """
        table = schema.devices
        with self.engine.begin() as conn:
            current = conn.execute(sa.select(table.c.flags).where(table.c.mac == mac.value)).first()
            if current is None:
                if not on:
                    return False
                conn.execute(
                    table.insert().values(mac=mac.value, status=status_if_new.value, flags=flag)
                )
                return True
            flags = [f for f in str(current[0]).split(",") if f]
            if (flag in flags) == on:
                return False
            flags = [*flags, flag] if on else [f for f in flags if f != flag]
            conn.execute(
                table.update().where(table.c.mac == mac.value).values(flags=",".join(flags))
            )
            return True

    def models(self) -> dict[str, int]:
        """How many devices of each model the store knows (device records)."""
        table = schema.devices
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table.c.model, sa.func.count()).group_by(table.c.model)
            ).all()
        return {str(model): int(count) for model, count in rows if model}

    def flagged(self, flag: str) -> list[MacAddress]:
        """MACs whose device record carries ``flag``."""
        table = schema.devices
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table.c.mac, table.c.flags).where(table.c.flags.contains(flag))
            ).all()
        return [MacAddress(str(mac)) for mac, flags in rows if flag in str(flags).split(",")]
