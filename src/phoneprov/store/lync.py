"""Device update requests in the store: the raw body per request, device flags, lookups.

Separate from ``store.sql`` (which builds it on its engine) so the Lync/SfB service owns its table
(``ucupdate_requests``, added by a migration in ``store.schema``). Each call is
one short transaction; the server runs them off the event loop.
"""

from __future__ import annotations

import sqlalchemy as sa

from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.records import RequestRow
from phoneprov.store import schema

KEEP_PER_DEVICE = 50  # rows kept per MAC: enough for the loop guard and `device show`


class LyncLog:
    """The ``ucupdate_requests`` table and the device facts the service needs."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, row: RequestRow) -> None:
        """Insert ``row`` and keep only the latest KEEP_PER_DEVICE rows for its MAC."""
        table = schema.ucupdate_requests
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
                    body=row.body,
                )
            )
            if row.mac:
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
