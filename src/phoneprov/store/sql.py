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

from phoneprov import __version__
from phoneprov.errors import StoreError
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.records import (
    OWN_IDENTITY_FLAG,
    Account,
    DeviceRecord,
    Event,
    Sighting,
    merge_sightings,
)
from phoneprov.store import schema
from phoneprov.store.admin import AdminStore
from phoneprov.store.certificates import CertificateBook
from phoneprov.store.firmware import FirmwareStore
from phoneprov.store.fleet import FleetViews
from phoneprov.store.fleetactions import FleetActionStore
from phoneprov.store.inventory import InventoryStore
from phoneprov.store.lync import LyncLog
from phoneprov.store.lynccatalog import LyncCatalogStore
from phoneprov.store.migrate import SchemaMode, current_version, migrate
from phoneprov.store.nodes import NodeBook
from phoneprov.store.nonces import SharedNonceCounts, SiteSecrets
from phoneprov.store.secrets import KEY_FILE, PREFIX, SecretBox

log = logging.getLogger("phoneprov.store")


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

    def __init__(
        self, url: str, box: SecretBox | None = None, *, mode: SchemaMode = "upgrade"
    ) -> None:
        """Open ``url`` and migrate it as ``mode`` says (``store/migrate.py``); "as-is"
        changes nothing in it (``db upgrade --check``). ``versions`` is the schema
        version before and after."""
        self.url = url
        self.box = box  # encrypts SIP passwords and digest HA1 values at rest (store/secrets.py)
        try:
            self.engine = sa.create_engine(url, future=True)
            if url.startswith("sqlite"):
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self.versions = (0, 0) if mode == "as-is" else migrate(self.engine, mode, __version__)
            if mode != "as-is" and box is not None:
                self._seal_clear_ha1()
        except StoreError:
            self.engine.dispose()
            raise
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
        self._lync_catalog = LyncCatalogStore(self.engine)
        self._admin = AdminStore(self.engine, _row_to_device)
        self._fleet_actions = FleetActionStore(self.engine, box)
        self._fleet = FleetViews(self.engine, _row_to_device)
        self.certificates = CertificateBook(self.engine)
        self.secrets = SiteSecrets(self.engine, box)
        self.nonces = SharedNonceCounts(self.engine)
        self.nodes = NodeBook(self.engine)

    @property
    def inventory(self) -> InventoryStore:
        return self._inventory

    @property
    def firmware(self) -> FirmwareStore:
        return self._firmware

    @property
    def lync(self) -> LyncLog:
        return self._lync

    @property
    def lync_catalog(self) -> LyncCatalogStore:
        return self._lync_catalog

    @property
    def admin(self) -> AdminStore:
        return self._admin

    @property
    def fleet_actions(self) -> FleetActionStore:
        return self._fleet_actions

    @property
    def fleet(self) -> FleetViews:
        return self._fleet

    def schema_version(self) -> int:
        """The schema version of this database (0: none), read without migrating.

        Raises StoreError when the database cannot be reached (a store opened with
        ``migrate=False`` has not connected yet).
        """
        try:
            with self.engine.connect() as conn:
                return current_version(conn)
        except sa.exc.SQLAlchemyError as error:
            raise StoreError(
                f"cannot read the schema version of {_safe_url(self.url)}: "
                f"{error.__class__.__name__}: {error.args[0] if error.args else ''}",
                "Check [site] database in phoneprov.toml and that the server is reachable.",
            ) from None

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
            # A phone listener saw these phones: records the anonymous Lync/SfB update
            # endpoint created are no longer only its word (store/lync.py).
            LyncLog.confirm(conn, list(merged))
            # Where each phone proved who it is from: the only address fleet actions use.
            FleetActionStore.note_addresses(conn, merged.values())
            owned = [mac for mac, s in merged.items() if s.own_identity]
            if owned:
                # Once set, never cleared: the public account may no longer write the files
                # this phone reads back (docs/decisions/0008-public-account-writes.md).
                flags = table.c.flags
                conn.execute(
                    table.update()
                    .where(table.c.mac.in_(owned))
                    .where(~(sa.literal(",") + flags + ",").contains(f",{OWN_IDENTITY_FLAG},"))
                    .values(
                        flags=sa.case(
                            (flags == "", OWN_IDENTITY_FLAG),
                            else_=flags + f",{OWN_IDENTITY_FLAG}",
                        )
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
                    ha1=self.box.seal(ha1) if self.box is not None else ha1,
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
        return self._account(row)

    def list_accounts(self) -> list[Account]:
        table = schema.credentials
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.username)).all()
        return [self._account(r) for r in rows]

    def _account(self, row: sa.Row[tuple[object, ...]]) -> Account:
        """An account as stored, its HA1 opened with the site key.

        Raises StoreError for a sealed HA1 without the key: no stand-in (an empty or
        sealed string) may be checked against, since anyone who knew it could compute
        a valid digest response (RFC 7616 §3.4.1).
        """
        ha1 = str(row.ha1)
        if ha1.startswith(PREFIX):
            if self.box is None:
                raise StoreError(
                    f"the digest HA1 of account {row.username!r} is encrypted with the site "
                    "key, and this database was opened without it",
                    "Open the database through its site folder (--site), whose "
                    f"pki/{KEY_FILE} holds the key.",
                )
            ha1 = self.box.open(ha1)
        return Account(row.username, row.kind, row.mac, row.realm, ha1, row.password_hash)

    def _seal_clear_ha1(self) -> None:
        """Seal the HA1 values an older phoneprov stored in clear (once, on upgrade).

        The update names the old value, so nodes opening one database together seal
        each row once. A database this process may only read keeps them in clear
        (they still work) until a process that may write opens it.
        """
        assert self.box is not None
        table = schema.credentials
        try:
            with self.engine.begin() as conn:
                rows = conn.execute(
                    sa.select(table.c.username, table.c.ha1).where(
                        table.c.ha1 != "", ~table.c.ha1.startswith(PREFIX)
                    )
                ).all()
                for row in rows:
                    conn.execute(
                        table.update()
                        .where(table.c.username == row.username, table.c.ha1 == row.ha1)
                        .values(ha1=self.box.seal(row.ha1))
                    )
        except sa.exc.OperationalError as error:
            # The driver's message only: SQLAlchemy's own would list the values (secrets).
            log.warning("digest HA1 values stay in clear: %s", error.orig)
            return
        if rows:
            log.info("sealed %d digest HA1 value(s) an older phoneprov stored in clear", len(rows))

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
