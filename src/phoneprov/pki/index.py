"""The CA's record of what it issued and revoked: ``<pki_dir>/index.json``.

One small JSON file (plus each issued certificate under ``issued/``) so the CA
works before any database exists; writers take an exclusive ``flock`` so the
server's automatic CSR signing and an administrator's ``ca revoke`` never lose
each other's update.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from phoneprov.errors import CertificateError
from phoneprov.pki.files import write_atomic

INDEX_FILE = "index.json"
LOCK_FILE = ".index.lock"
ISSUED_DIR = "issued"
RecordKind = Literal["server", "device", "csr"]
T = TypeVar("T")


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


def update_index(pki_dir: Path, change: Callable[[IndexState], tuple[IndexState, T]]) -> T:
    """Apply ``change`` to the index under an exclusive lock; return what it returns.

    ``change`` gets the current state and returns (new state, result); the new
    state is written atomically before the lock is released.
    """
    with _locked(pki_dir):
        state = read_index(pki_dir)
        new_state, result = change(state)
        if new_state != state:
            _write_index(pki_dir, new_state)
        return result


def issued_path(pki_dir: Path, serial_hex: str) -> Path:
    """Return where the certificate with ``serial_hex`` is kept."""
    return pki_dir / ISSUED_DIR / f"{serial_hex}.pem"
