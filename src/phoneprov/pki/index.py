"""The CA's record of what it issued and revoked, behind the ``CertIndex`` protocol.

A site's CA keeps its index in the site database (``store/certificates.py``),
so every node sharing the database sees what any node signed or revoked, and
the CRL is generated from that table. ``FileIndex`` keeps it in
``<pki_dir>/index.json`` (each issued certificate under ``issued/``) for a CA
used without a database: tools and tests that make certificates from a bare
pki folder. Its writers take an exclusive ``flock`` so two processes never lose
each other's update; a database index adopts that file once (``adopt``).
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from phoneprov.errors import CertificateError
from phoneprov.pki.files import write_atomic

INDEX_FILE = "index.json"
LOCK_FILE = ".index.lock"
ISSUED_DIR = "issued"
CRL_FILE = "crl.pem"
RecordKind = Literal["server", "device", "csr"]
# Signs a CRL for the revoked records with the given CRL number; returns its PEM.
CrlSigner = Callable[[tuple["CertRecord", ...], int], bytes]


@dataclass(frozen=True)
class CertRecord:
    """One certificate this CA issued, and its revocation if any."""

    serial: int
    kind: RecordKind
    subject: str
    not_before: datetime
    not_after: datetime
    sha256: str
    issued_at: datetime
    mac: str | None = None
    slot: str | None = None
    revoked_at: datetime | None = None
    reason: str | None = None

    @property
    def serial_hex(self) -> str:
        """The serial as openssl prints it: upper-case hex, even length."""
        text = f"{self.serial:X}"
        return text if len(text) % 2 == 0 else "0" + text

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_json(self) -> dict[str, Any]:
        """Return the record as JSON-ready values (serial as hex, times as ISO 8601)."""
        data = asdict(self)
        data["serial"] = self.serial_hex
        for key in ("not_before", "not_after", "issued_at", "revoked_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CertRecord:
        """Parse one record written by :meth:`to_json`; raise KeyError/ValueError if damaged."""
        times = {
            key: datetime.fromisoformat(data[key]) if data.get(key) else None
            for key in ("not_before", "not_after", "issued_at", "revoked_at")
        }
        return cls(
            serial=int(data["serial"], 16),
            kind=data["kind"],
            subject=data["subject"],
            sha256=data["sha256"],
            mac=data.get("mac"),
            slot=data.get("slot"),
            reason=data.get("reason"),
            not_before=times["not_before"],  # type: ignore[arg-type]
            not_after=times["not_after"],  # type: ignore[arg-type]
            issued_at=times["issued_at"],  # type: ignore[arg-type]
            revoked_at=times["revoked_at"],
        )

    def revoke(self, when: datetime, reason: str) -> CertRecord:
        """Return a copy marked revoked at ``when`` for ``reason``."""
        return replace(self, revoked_at=when, reason=reason)


@dataclass(frozen=True)
class IndexState:
    """The whole index: records in issue order and the last CRL number used."""

    records: tuple[CertRecord, ...] = ()
    crl_number: int = 0

    def find(self, serial: int) -> CertRecord | None:
        return next((r for r in self.records if r.serial == serial), None)

    def with_record(self, record: CertRecord) -> IndexState:
        """Return a state where ``record`` replaces the one with its serial, or is appended."""
        others = tuple(r for r in self.records if r.serial != record.serial)
        if len(others) == len(self.records):
            return replace(self, records=(*self.records, record))
        return replace(
            self,
            records=tuple(record if r.serial == record.serial else r for r in self.records),
        )


class CertIndex(Protocol):
    """Where one CA records what it issued and revoked, and its latest CRL."""

    def records(self) -> tuple[CertRecord, ...]:
        """Every certificate this CA issued, in issue order."""
        ...

    def for_mac(self, mac: str) -> tuple[CertRecord, ...]:
        """The certificates issued to ``mac`` (12 lower-case hex digits), in issue order."""
        ...

    def add(self, record: CertRecord, pem: bytes) -> bool:
        """Record a new certificate; False (nothing written) when its serial is taken."""
        ...

    def pem(self, serial: int) -> bytes | None:
        """The issued certificate with ``serial`` as PEM, None if unknown."""
        ...

    def revoke(self, serials: Sequence[int], when: datetime, reason: str) -> list[CertRecord]:
        """Mark ``serials`` revoked (those already revoked stay as they are); return them all."""
        ...

    def revoked_serials(self) -> frozenset[int]:
        """The serials revoked so far."""
        ...

    def publish(self, sign: CrlSigner) -> bytes:
        """Take the next CRL number, sign a CRL of every revocation with it, keep and return it.

        One publisher at a time: two nodes never sign two CRLs with one number.
        """
        ...

    def crl(self) -> bytes | None:
        """The last CRL published, as PEM (None before the first)."""
        ...


def read_index(pki_dir: Path) -> IndexState:
    """Return the index of ``pki_dir`` (empty if none); raise CertificateError if damaged."""
    path = pki_dir / INDEX_FILE
    if not path.exists():
        return IndexState()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        records = tuple(CertRecord.from_json(item) for item in raw["certificates"])
        return IndexState(records, int(raw.get("crl_number", 0)))
    except (ValueError, KeyError, TypeError) as error:
        raise CertificateError(
            f"{path} is damaged: {error}",
            f"Restore {path} from a backup; the issued certificates are in {pki_dir / ISSUED_DIR}.",
        ) from None


def _write_index(pki_dir: Path, state: IndexState) -> None:
    payload = {
        "version": 1,
        "crl_number": state.crl_number,
        "certificates": [r.to_json() for r in state.records],
    }
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    write_atomic(pki_dir / INDEX_FILE, text.encode())


@contextmanager
def _locked(pki_dir: Path) -> Iterator[None]:
    pki_dir.mkdir(parents=True, exist_ok=True)
    with (pki_dir / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def issued_path(pki_dir: Path, serial_hex: str) -> Path:
    """Return where a ``FileIndex`` keeps the certificate with ``serial_hex``."""
    return pki_dir / ISSUED_DIR / f"{serial_hex}.pem"


class FileIndex:
    """The index in ``<pki_dir>/index.json``, the CRL in ``crl.pem`` beside it."""

    def __init__(self, pki_dir: Path) -> None:
        self.pki_dir = pki_dir

    def records(self) -> tuple[CertRecord, ...]:
        return read_index(self.pki_dir).records

    def for_mac(self, mac: str) -> tuple[CertRecord, ...]:
        return tuple(r for r in self.records() if r.mac == mac)

    def add(self, record: CertRecord, pem: bytes) -> bool:
        with _locked(self.pki_dir):
            state = read_index(self.pki_dir)
            if state.find(record.serial) is not None:
                return False
            write_atomic(issued_path(self.pki_dir, record.serial_hex), pem)
            _write_index(self.pki_dir, state.with_record(record))
            return True

    def pem(self, serial: int) -> bytes | None:
        record = read_index(self.pki_dir).find(serial)
        path = issued_path(self.pki_dir, record.serial_hex) if record is not None else None
        return path.read_bytes() if path is not None and path.is_file() else None

    def revoke(self, serials: Sequence[int], when: datetime, reason: str) -> list[CertRecord]:
        with _locked(self.pki_dir):
            state = read_index(self.pki_dir)
            done: list[CertRecord] = []
            for serial in serials:
                record = state.find(serial)
                if record is None:
                    continue
                updated = record if record.revoked else record.revoke(when, reason)
                state = state.with_record(updated)
                done.append(updated)
            _write_index(self.pki_dir, state)
            return done

    def revoked_serials(self) -> frozenset[int]:
        return frozenset(r.serial for r in self.records() if r.revoked)

    def publish(self, sign: CrlSigner) -> bytes:
        with _locked(self.pki_dir):
            state = read_index(self.pki_dir)
            state = replace(state, crl_number=state.crl_number + 1)
            pem = sign(tuple(r for r in state.records if r.revoked), state.crl_number)
            _write_index(self.pki_dir, state)
            write_atomic(self.pki_dir / CRL_FILE, pem)
            return pem

    def crl(self) -> bytes | None:
        path = self.pki_dir / CRL_FILE
        return path.read_bytes() if path.is_file() else None
