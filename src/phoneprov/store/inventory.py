"""Inventory records over the SqlStore's engine: devices with their lines, groups.

Inventory devices live in the same ``devices`` table the boot server records
sightings in (status ``known``); their SIP registrations are in
``device_lines``. Writes of many devices (a CSV import) go in one transaction
with executemany, so 10,000 rows take a second or two on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.records import InventoryEntry, Line, SaveCount
from phoneprov.store import schema
from phoneprov.store.secrets import PREFIX, SecretBox

CHUNK = 500  # rows per IN (...) clause: SQLite's variable limit is 999 on old builds


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


class InventoryStore:
    """Inventory reads and writes on an engine shared with ``SqlStore``."""

    def __init__(self, engine: sa.Engine, box: SecretBox | None = None) -> None:
        self.engine = engine
        self.box = box

    def _seal(self, password: str) -> str:
        return self.box.seal(password) if self.box is not None else password

    def _line(self, row: sa.Row[tuple[object, ...]]) -> Line:
        """A line as stored; without the key a sealed password reads as ''."""
        stored = str(row.password)
        if self.box is not None:
            password = self.box.open(stored)
        else:
            password = "" if stored.startswith(PREFIX) else stored
        return Line(int(row.line), str(row.ext), str(row.user), password, str(row.server))

    def save(self, entries: Sequence[InventoryEntry]) -> SaveCount:
        """Create or update ``entries`` (status known, lines replaced) in one transaction.

        A blocked device stays blocked: adding it to the inventory does not undo a block.
        Returns how many were created and updated.
        """
        devices, lines = schema.devices, schema.device_lines
        macs = [entry.mac.value for entry in entries]
        with self.engine.begin() as conn:
            existing: dict[str, str] = {}
            for chunk in _chunks(macs):
                rows = conn.execute(
                    sa.select(devices.c.mac, devices.c.status).where(devices.c.mac.in_(chunk))
                )
                existing.update({str(r.mac): str(r.status) for r in rows})
            new = [e for e in entries if e.mac.value not in existing]
            old = [e for e in entries if e.mac.value in existing]
            if new:
                conn.execute(
                    devices.insert(),
                    [
                        {
                            "mac": e.mac.value,
                            "status": DeviceStatus.KNOWN.value,
                            "model": e.model,
                            "site": e.site,
                            "group_name": e.group,
                            "label": e.label,
                        }
                        for e in new
                    ],
                )
            if old:
                conn.execute(
                    devices.update()
                    .where(devices.c.mac == sa.bindparam("b_mac"))
                    .values(
                        status=sa.bindparam("b_status"),
                        model=sa.bindparam("b_model"),
                        site=sa.bindparam("b_site"),
                        group_name=sa.bindparam("b_group"),
                        label=sa.bindparam("b_label"),
                    ),
                    [
                        {
                            "b_mac": e.mac.value,
                            "b_model": e.model,
                            "b_site": e.site,
                            "b_group": e.group,
                            "b_label": e.label,
                            "b_status": DeviceStatus.BLOCKED.value
                            if existing[e.mac.value] == DeviceStatus.BLOCKED.value
                            else DeviceStatus.KNOWN.value,
                        }
                        for e in old
                    ],
                )
            for chunk in _chunks([e.mac.value for e in old]):
                conn.execute(lines.delete().where(lines.c.mac.in_(chunk)))
            line_rows = [
                {
                    "mac": e.mac.value,
                    "line": ln.index,
                    "ext": ln.ext,
                    "user": ln.user,
                    "password": self._seal(ln.password),
                    "server": ln.server,
                }
                for e in entries
                for ln in e.lines
            ]
            if line_rows:
                conn.execute(lines.insert(), line_rows)
        return SaveCount(created=len(new), updated=len(old))

    def lines(self, mac: MacAddress) -> tuple[Line, ...]:
        """The device's registrations, by line index."""
        table = schema.device_lines
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table).where(table.c.mac == mac.value).order_by(table.c.line)
            ).all()
        return tuple(self._line(r) for r in rows)

    def entry(self, mac: MacAddress) -> InventoryEntry | None:
        """The inventory view of one device record (None when there is no record)."""
        found = self.entries(macs=[mac])
        return found[0] if found else None

    def entries_by_mac(self, macs: Sequence[MacAddress]) -> dict[str, InventoryEntry]:
        """Entries of the devices among ``macs`` that have a record, keyed by MAC."""
        found: dict[str, InventoryEntry] = {}
        for start in range(0, len(macs), CHUNK):
            for entry in self.entries(macs=macs[start : start + CHUNK]):
                found[entry.mac.value] = entry
        return found

    def entries(
        self,
        *,
        site: str | None = None,
        group: str | None = None,
        status: DeviceStatus | None = None,
        macs: Sequence[MacAddress] | None = None,
    ) -> list[InventoryEntry]:
        """Device records with their lines, ordered by MAC, filtered as asked."""
        devices, table = schema.devices, schema.device_lines
        query = sa.select(devices).order_by(devices.c.mac)
        if site is not None:
            query = query.where(devices.c.site == site)
        if group is not None:
            query = query.where(devices.c.group_name == group)
        if status is not None:
            query = query.where(devices.c.status == status.value)
        if macs is not None:
            query = query.where(devices.c.mac.in_([m.value for m in macs]))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            by_mac: dict[str, list[Line]] = {}
            line_query = sa.select(table).order_by(table.c.mac, table.c.line)
            if macs is not None:
                line_query = line_query.where(table.c.mac.in_([m.value for m in macs]))
            for r in conn.execute(line_query):
                by_mac.setdefault(str(r.mac), []).append(self._line(r))
        return [
            InventoryEntry(
                MacAddress(str(r.mac)),
                str(r.model),
                str(r.site),
                str(r.group_name),
                str(r.label),
                tuple(by_mac.get(str(r.mac), ())),
            )
            for r in rows
        ]

    def remove(self, mac: MacAddress) -> bool:
        """Forget a device: its record, lines and firmware download counts."""
        with self.engine.begin() as conn:
            conn.execute(schema.device_lines.delete().where(schema.device_lines.c.mac == mac.value))
            conn.execute(
                schema.firmware_downloads.delete().where(
                    schema.firmware_downloads.c.mac == mac.value
                )
            )
            result = conn.execute(schema.devices.delete().where(schema.devices.c.mac == mac.value))
        return bool(result.rowcount)

    def groups(self) -> set[str]:
        """Every group name some device carries."""
        devices = schema.devices
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(devices.c.group_name).distinct())
            return {str(r.group_name) for r in rows if r.group_name}

    def set_flag(self, mac: MacAddress, flag: str, on: bool) -> None:
        """Add or remove one flag in the device's ``flags`` column (comma list)."""
        devices = schema.devices
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(devices.c.flags).where(devices.c.mac == mac.value)).first()
            if row is None:
                return
            flags = [f for f in str(row.flags).split(",") if f and f != flag]
            if on:
                flags.append(flag)
            conn.execute(
                devices.update()
                .where(devices.c.mac == mac.value)
                .values(flags=",".join(sorted(flags)))
            )
