"""The store over SQLAlchemy Core: SQLite by default, PostgreSQL by URL.

Hot-path writes (a device seen, an event) go through ``Recorder``: a queue
drained by one background thread in batches, so the event loop never waits on
the database.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from phoneprov.config import Settings
from phoneprov.errors import StoreError
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.store import schema
from phoneprov.store.secrets import SecretBox, site_box

log = logging.getLogger("phoneprov.store")


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    mac: MacAddress
    status: DeviceStatus
    model: str = ""
    family: str = ""
    firmware: str = ""
    updater_version: str = ""
    stage: str = ""
    ip: str = ""
    protocol: str = ""
    cert_kind: str = ""
    user_agent: str = ""
    site: str = ""
    group_name: str = ""
    label: str = ""
    first_seen: float | None = None
    last_seen: float | None = None
    requests: int = 0
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sighting:
    """What one request tells about a device (queued, written in batches)."""

    mac: MacAddress
    time: float
    ip: str
    protocol: str
    status_if_new: DeviceStatus
    model: str = ""
    family: str = ""
    firmware: str = ""
    updater_version: str = ""
    stage: str = ""
    cert_kind: str = ""
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    time: float
    mac: str
    kind: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    kind: str
    mac: str
    realm: str
    ha1: str
    password_hash: str


def hash_password(password: str, salt: bytes | None = None) -> str:
    """scrypt hash in the form ``scrypt$n$r$p$salt_hex$hash_hex``."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(digest) // 2,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


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
            raise StoreError(
                f"cannot open the database {_safe_url(url)}: {error.__class__.__name__}: "
                f"{error.args[0] if error.args else ''}",
                "Check [site] database in phoneprov.toml and that the server is reachable.",
            ) from None

    @classmethod
    def for_site(cls, settings: Settings) -> SqlStore:
        """The site's database, with the site's key for secrets at rest."""
        return cls(settings.database_url, site_box(settings.pki_dir))

    def migrate(self) -> None:
        with self.engine.begin() as conn:
            schema.schema_version.create(conn, checkfirst=True)
            current = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version)))
            version = current.scalar() or 0
            for number, migration in enumerate(schema.MIGRATIONS, start=1):
                if number > version:
                    migration(conn)
                    conn.execute(schema.schema_version.insert().values(version=number))

    def close(self) -> None:
        self.engine.dispose()

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
            merged[sighting.mac.value] = _merge(merged.get(sighting.mac.value), sighting)
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
                updated = conn.execute(
                    table.update()
                    .where(table.c.mac == mac)
                    .values(requests=table.c.requests + counts[mac], **values)
                )
                if not updated.rowcount:
                    conn.execute(
                        table.insert().values(
                            mac=mac,
                            status=s.status_if_new.value,
                            first_seen=s.time,
                            requests=counts[mac],
                            **values,
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


def _merge(old: Sighting | None, new: Sighting) -> Sighting:
    if old is None:
        return new
    keep = {
        key: getattr(new, key) or getattr(old, key)
        for key in (
            "model",
            "family",
            "firmware",
            "updater_version",
            "stage",
            "cert_kind",
            "user_agent",
        )
    }
    return Sighting(
        mac=new.mac,
        time=new.time,
        ip=new.ip,
        protocol=new.protocol,
        status_if_new=old.status_if_new,
        **keep,
    )


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _safe_url(url: str) -> str:
    """The URL without a password, for messages."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


class Recorder:
    """Writes device sightings and events from a background thread.

    A phone's boot is 10 to 15 requests in a few seconds; sightings are merged
    per MAC in memory (a dict update under a lock, no thread wake-up) and
    written once per ``interval``. Events and deferred bookkeeping go through
    a queue, in order.
    """

    def __init__(self, store: SqlStore, interval: float = 0.5) -> None:
        self.store = store
        self.interval = interval
        self._queue: queue.Queue[Event | Callable[[], None] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._pending: dict[str, Sighting] = {}
        self._counts: dict[str, int] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="phoneprov-recorder", daemon=True)
        self._thread.start()

    def sighting(self, sighting: Sighting) -> None:
        key = sighting.mac.value
        with self._lock:
            self._pending[key] = _merge(self._pending.get(key), sighting)
            self._counts[key] = self._counts.get(key, 0) + 1

    def event(self, event: Event) -> None:
        self._queue.put(event)

    def defer(self, work: Callable[[], None]) -> None:
        """Run bookkeeping that writes to the database on the recorder's thread."""
        self._queue.put(work)

    def stop(self) -> None:
        """Flush what is queued and stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            items: list[Event | Callable[[], None]] = []
            try:
                item = self._queue.get(timeout=self.interval)
                while item is not None:
                    items.append(item)
                    if len(items) >= 500:
                        break
                    item = self._queue.get_nowait()
                stopping = item is None
            except queue.Empty:
                pass
            self._flush(items)

    def _flush(self, items: list[Event | Callable[[], None]]) -> None:
        for work in items:
            if not isinstance(work, Event):
                try:
                    work()
                except Exception:
                    log.exception("deferred bookkeeping failed")
        with self._lock:
            sightings, counts = list(self._pending.values()), self._counts
            self._pending, self._counts = {}, {}
        events = [item for item in items if isinstance(item, Event)]
        if not sightings and not events:
            return
        last: Exception | None = None
        for attempt in range(3):
            try:
                self.store.record(sightings, events, counts)
                return
            except sa.exc.OperationalError as error:
                last = error
                time.sleep(0.2 * (attempt + 1))
        # Device records are bookkeeping: phones keep being served when the database
        # is down, and the administrator learns what was lost.
        log.error(
            "dropped %d device sightings and %d events: database unavailable (%s)",
            len(sightings),
            len(events),
            last.__class__.__name__,
        )
