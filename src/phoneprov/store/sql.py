"""The ``Store`` over SQLAlchemy Core: SQLite by default, PostgreSQL by URL.

Nothing outside ``store/`` names ``SqlStore``: ``store.open_store`` builds it.
Hot-path writes (a device seen, an event) go through ``store.recorder``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from phoneprov.errors import StoreError
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.records import Account, DeviceRecord, Event, Sighting, merge_sightings
from phoneprov.store import schema
from phoneprov.store.firmware import FirmwareStore
from phoneprov.store.inventory import InventoryStore
from phoneprov.store.lync import LyncLog
from phoneprov.store.secrets import SecretBox

log = logging.getLogger("phoneprov.store")
MIGRATION_LOCK = 0x70686F6E  # pg_advisory_xact_lock key: "phon"


def _row_to_device(row: sa.Row[tuple[object, ...]]) -> DeviceRecord:
    m = row._mapping
    return DeviceRecord(
        mac=MacAddress(str(m["mac"])),
        status=DeviceStatus(str(m["status"])),
        model=str(m["model"]),
        family=str(m["family"]),
        firmware=str(m["firmware"]),
        updater_version=str(m["updater_version"]),
        stage=str(m["stage"]),
        ip=str(m["ip"]),
        protocol=str(m["protocol"]),
        cert_kind=str(m["cert_kind"]),
        user_agent=str(m["user_agent"]),
        site=str(m["site"]),
        group_name=str(m["group_name"]),
        label=str(m["label"]),
        first_seen=m["first_seen"],
        last_seen=m["last_seen"],
        requests=int(m["requests"]),
        flags=tuple(f for f in str(m["flags"]).split(",") if f),
    )


class SqlStore:
    """Devices, events and credentials in one database."""

    def __init__(self, url: str, box: SecretBox | None = None) -> None:
        self.url = url
        self.box = box  # encrypts SIP passwords at rest (store/secrets.py)
        try:
            self.engine = sa.create_engine(url, future=True)
            if url.startswith("sqlite"):
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self.migrate()
        except sa.exc.SQLAlchemyError as error:
            self.engine.dispose()  # a failed start must not keep a pooled connection open
            raise StoreError(
                f"cannot open the database {_safe_url(url)}: {error.__class__.__name__}: "
                f"{error.args[0] if error.args else ''}",
                "Check [site] database in phoneprov.toml and that the server is reachable.",
            ) from None

        self._inventory = InventoryStore(self.engine, box)
        self._firmware = FirmwareStore(self.engine)
        self._lync = LyncLog(self.engine)

    @property
    def inventory(self) -> InventoryStore:
        return self._inventory

    @property
    def firmware(self) -> FirmwareStore:
        return self._firmware

    @property
    def lync(self) -> LyncLog:
        return self._lync

    def migrate(self) -> None:
        """Bring the schema up to date; nodes starting together migrate one at a time."""
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # Held until this transaction ends: a second node waits, then finds the
                # schema current (two CREATE TABLEs at once fail on pg_type's index).
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            schema.schema_version.create(conn, checkfirst=True)
            current = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version)))
            version = current.scalar() or 0
            for number, migration in enumerate(schema.MIGRATIONS, start=1):
                if number > version:
                    migration(conn)
                    conn.execute(schema.schema_version.insert().values(version=number))

    def close(self) -> None:
        self.engine.dispose()

    def _insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT with ON CONFLICT (PostgreSQL and SQLite 3.24+ have it)."""
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # devices
    def get_device(self, mac: MacAddress) -> DeviceRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(schema.devices).where(schema.devices.c.mac == mac.value)
            ).first()
        return _row_to_device(row) if row is not None else None

    def list_devices(self, status: DeviceStatus | None = None) -> list[DeviceRecord]:
        query = sa.select(schema.devices).order_by(schema.devices.c.mac)
        if status is not None:
            query = query.where(schema.devices.c.status == status.value)
        with self.engine.connect() as conn:
            return [_row_to_device(row) for row in conn.execute(query)]

    def set_status(self, mac: MacAddress, status: DeviceStatus) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                schema.devices.update()
                .where(schema.devices.c.mac == mac.value)
                .values(status=status.value)
            )
            return bool(result.rowcount)

    def upsert_device(self, mac: MacAddress, status: DeviceStatus, **fields: str) -> None:
        """Create or update a device row with ``fields`` (tests and imports set up devices)."""
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(schema.devices.c.mac).where(schema.devices.c.mac == mac.value)
            ).first()
            if exists:
                conn.execute(
                    schema.devices.update()
                    .where(schema.devices.c.mac == mac.value)
                    .values(status=status.value, **fields)
                )
            else:
                conn.execute(
                    schema.devices.insert().values(mac=mac.value, status=status.value, **fields)
                )

    def record(
        self,
        sightings: Iterable[Sighting],
        events: Iterable[Event],
        counts: dict[str, int] | None = None,
    ) -> None:
        """Apply a batch of sightings and events in one transaction.

        ``counts`` gives the number of requests each MAC's sighting stands for
        (the recorder merges many requests into one sighting); default one each.
        """
        merged: dict[str, Sighting] = {}
        tally: dict[str, int] = {}
        for sighting in sightings:
            merged[sighting.mac.value] = merge_sightings(merged.get(sighting.mac.value), sighting)
            tally[sighting.mac.value] = tally.get(sighting.mac.value, 0) + 1
        counts = {mac: (counts or {}).get(mac, n) for mac, n in tally.items()}
        table = schema.devices
        with self.engine.begin() as conn:
            for mac, s in merged.items():
                values = {
                    key: getattr(s, key)
                    for key in (
                        "model",
                        "family",
                        "firmware",
                        "updater_version",
                        "stage",
                        "cert_kind",
                        "user_agent",
                    )
                    if getattr(s, key)
                }
                values.update(ip=s.ip, protocol=s.protocol, last_seen=s.time)
                # One statement, so two nodes seeing a new phone at once cannot both insert.
                insert = self._insert(table).values(
                    mac=mac,
                    status=s.status_if_new.value,
                    first_seen=s.time,
                    requests=counts[mac],
                    **values,
                )
                conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=[table.c.mac],
                        set_={
                            "requests": table.c.requests + insert.excluded.requests,
                            **{key: insert.excluded[key] for key in values},
                        },
                    )
                )
            rows = [
                {"time": e.time, "mac": e.mac, "kind": e.kind, "detail": e.detail} for e in events
            ]
            if rows:
                conn.execute(schema.events.insert(), rows)

    def events_for(self, mac: MacAddress | None = None, limit: int = 100) -> list[Event]:
        query = sa.select(schema.events).order_by(schema.events.c.id.desc()).limit(limit)
        if mac is not None:
            query = query.where(schema.events.c.mac == mac.value)
        with self.engine.connect() as conn:
            return [
                Event(time=r.time, mac=r.mac, kind=r.kind, detail=r.detail)
                for r in conn.execute(query)
            ]

    # credentials
    def put_account(
        self, username: str, kind: str, realm: str, ha1: str, password_hash: str, mac: str = ""
    ) -> None:
        table = schema.credentials
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.username == username))
            conn.execute(
                table.insert().values(
                    username=username,
                    kind=kind,
                    mac=mac,
                    realm=realm,
                    ha1=ha1,
                    password_hash=password_hash,
                    created=time.time(),
                )
            )

    def get_account(self, username: str) -> Account | None:
        table = schema.credentials
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.username == username)).first()
        if row is None:
            return None
        return Account(row.username, row.kind, row.mac, row.realm, row.ha1, row.password_hash)

    def list_accounts(self) -> list[Account]:
        table = schema.credentials
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.username)).all()
        return [Account(r.username, r.kind, r.mac, r.realm, r.ha1, r.password_hash) for r in rows]

    def remove_account(self, username: str) -> bool:
        table = schema.credentials
        with self.engine.begin() as conn:
            return bool(conn.execute(table.delete().where(table.c.username == username)).rowcount)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _safe_url(url: str) -> str:
    """The URL without a password, for messages."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)
