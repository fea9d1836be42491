"""The CA index in the database: what each CA issued and revoked, and its CRL.

``CertificateBook.index(ca)`` is the ``pki.index.CertIndex`` of one CA, keyed by
the SHA-256 of its root, so every node sharing the database signs, lists and
revokes against one index. A new certificate is one INSERT (a serial taken by
another node makes it fail, and the signer draws another); publishing a CRL
bumps the CA's row first, so two nodes never sign two CRLs with one number.
``revision`` grows with each revocation: listeners poll it to refresh the
revoked serials they keep in memory (``provisioning/revocations.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from phoneprov.pki.index import CertRecord, CrlSigner, IndexState
from phoneprov.store.tables import ca_certificates, ca_state


def _hex(serial: int) -> str:
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


def _time(value: datetime) -> float:
    return value.timestamp()


def _date(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _record(row: sa.Row[Any]) -> CertRecord:
    m = row._mapping
    return CertRecord(
        serial=int(m["serial"], 16),
        kind=m["kind"],
        subject=m["subject"],
        not_before=datetime.fromtimestamp(m["not_before"], UTC),
        not_after=datetime.fromtimestamp(m["not_after"], UTC),
        sha256=m["sha256"],
        issued_at=datetime.fromtimestamp(m["issued_at"], UTC),
        mac=m["mac"],
        slot=m["slot"],
        revoked_at=_date(m["revoked_at"]),
        reason=m["reason"],
    )


def _values(ca: str, record: CertRecord, pem: bytes) -> dict[str, Any]:
    return {
        "ca": ca,
        "serial": record.serial_hex,
        "kind": record.kind,
        "subject": record.subject,
        "mac": record.mac,
        "slot": record.slot,
        "not_before": _time(record.not_before),
        "not_after": _time(record.not_after),
        "issued_at": _time(record.issued_at),
        "sha256": record.sha256,
        "revoked_at": _time(record.revoked_at) if record.revoked_at is not None else None,
        "reason": record.reason,
        "pem": pem.decode("ascii"),
    }


class SqlCertIndex:
    """One CA's index in the database (``pki.index.CertIndex``)."""

    def __init__(self, engine: sa.Engine, ca: str) -> None:
        self.engine = engine
        self.ca = ca

    def _select(self) -> sa.Select[Any]:
        table = ca_certificates
        columns = [c for c in table.c if c.name != "pem"]
        return sa.select(*columns).where(table.c.ca == self.ca).order_by(table.c.id)

    def records(self) -> tuple[CertRecord, ...]:
        with self.engine.connect() as conn:
            return tuple(_record(row) for row in conn.execute(self._select()))

    def for_mac(self, mac: str) -> tuple[CertRecord, ...]:
        query = self._select().where(ca_certificates.c.mac == mac)
        with self.engine.connect() as conn:
            return tuple(_record(row) for row in conn.execute(query))

    def add(self, record: CertRecord, pem: bytes) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(ca_certificates.insert().values(**_values(self.ca, record, pem)))
        except sa.exc.IntegrityError:
            return False
        return True

    def pem(self, serial: int) -> bytes | None:
        table = ca_certificates
        query = sa.select(table.c.pem).where(table.c.ca == self.ca, table.c.serial == _hex(serial))
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return str(value).encode("ascii") if value is not None else None

    def revoke(self, serials: Sequence[int], when: datetime, reason: str) -> list[CertRecord]:
        table = ca_certificates
        wanted = [_hex(serial) for serial in serials]
        with self.engine.begin() as conn:
            self._ensure_state(conn)
            changed = conn.execute(
                table.update()
                .where(table.c.ca == self.ca, table.c.serial.in_(wanted))
                .where(table.c.revoked_at.is_(None))
                .values(revoked_at=_time(when), reason=reason)
            ).rowcount
            if changed:
                conn.execute(
                    ca_state.update()
                    .where(ca_state.c.ca == self.ca)
                    .values(revision=ca_state.c.revision + 1)
                )
            rows = conn.execute(self._select().where(table.c.serial.in_(wanted))).all()
        return [_record(row) for row in rows]

    def revoked_serials(self) -> frozenset[int]:
        table = ca_certificates
        query = sa.select(table.c.serial).where(
            table.c.ca == self.ca, table.c.revoked_at.is_not(None)
        )
        with self.engine.connect() as conn:
            return frozenset(int(serial, 16) for serial in conn.execute(query).scalars())

    def revision(self) -> int:
        """Grows with every revocation of this CA (0: none yet)."""
        query = sa.select(ca_state.c.revision).where(ca_state.c.ca == self.ca)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def publish(self, sign: CrlSigner) -> bytes:
        table = ca_certificates
        with self.engine.begin() as conn:
            self._ensure_state(conn)
            # The UPDATE locks the CA's row until commit: the next publisher waits here.
            conn.execute(
                ca_state.update()
                .where(ca_state.c.ca == self.ca)
                .values(crl_number=ca_state.c.crl_number + 1)
            )
            number = int(
                conn.execute(
                    sa.select(ca_state.c.crl_number).where(ca_state.c.ca == self.ca)
                ).scalar_one()
            )
            revoked = conn.execute(self._select().where(table.c.revoked_at.is_not(None))).all()
            pem = sign(tuple(_record(row) for row in revoked), number)
            conn.execute(
                ca_state.update()
                .where(ca_state.c.ca == self.ca)
                .values(crl_pem=pem.decode("ascii"))
            )
        return pem

    def crl(self) -> bytes | None:
        query = sa.select(ca_state.c.crl_pem).where(ca_state.c.ca == self.ca)
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return str(value).encode("ascii") if value else None

    def adopt(self, state: IndexState, pems: dict[int, bytes]) -> int:
        """Load an ``index.json`` (its records, issued copies and CRL number) into an
        empty index, in one transaction; return the number of records. A CA another
        node adopted already is left as it is (0)."""
        with self.engine.begin() as conn:
            insert = _insert(conn, ca_state).values(
                ca=self.ca, crl_number=state.crl_number, crl_pem="", revision=0
            )
            # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT.
            if (
                conn.execute(insert.on_conflict_do_nothing().returning(ca_state.c.ca)).first()
                is None
            ):
                return 0
            rows = [_values(self.ca, r, pems.get(r.serial, b"")) for r in state.records]
            if rows:
                conn.execute(ca_certificates.insert(), rows)
        return len(rows)

    def _ensure_state(self, conn: sa.Connection) -> None:
        insert = _insert(conn, ca_state).values(ca=self.ca, crl_number=0, crl_pem="", revision=0)
        conn.execute(insert.on_conflict_do_nothing())


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


class CertificateBook:
    """The CA indexes of a site's database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def index(self, ca: str) -> SqlCertIndex:
        """The index of the CA whose root certificate has SHA-256 ``ca`` (hex)."""
        return SqlCertIndex(self.engine, ca)
