"""The database schema: Alembic revisions, applied by one process at a time.

Versions are numbers: the custom migrations of ``store/schema.py`` recorded 1
to 5 in ``schema_version``; Alembic revisions go on from there (``0005`` is the
baseline that builds or completes those five, ``0006`` the shared state of
several nodes). An upgrade runs in one transaction that first takes a lock:
``pg_advisory_xact_lock`` on PostgreSQL, an exclusive ``flock`` on
``<database>.lock`` beside a SQLite file. Two nodes starting together thus
migrate once: the second waits, then finds the schema current.

Alembic is imported only to upgrade: every command opens the store, and loading
Alembic costs each of them a sixth of a second for nothing. So the code's version
comes from the revision files' names (``r0009_*.py``; a unit test holds it equal
to Alembic's head) and the database's from its ``alembic_version`` row.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa

from phoneprov.errors import StoreError
from phoneprov.store import schema
from phoneprov.store.dump import sqlite_file

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATION_LOCK = 0x70686F6E  # pg_advisory_xact_lock key: "phon"
SCRIPTS = Path(__file__).with_name("migrations")
# "upgrade": apply every missing revision. "create": build an empty database, but
# refuse one that is older or newer than the code. "as-is": change nothing.
SchemaMode = Literal["upgrade", "create", "as-is"]


def _config(conn: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = conn
    return config


_REVISION_FILE = re.compile(r"r(\d{4})_\w+\.py")


def head_version() -> int:
    """The schema version this code builds: its newest revision file's number."""
    numbers = (_REVISION_FILE.fullmatch(path.name) for path in (SCRIPTS / "versions").iterdir())
    return max(int(found.group(1)) for found in numbers if found)


SCHEMA_VERSION = head_version()


def current_version(conn: sa.Connection) -> int:
    """The schema version of the database behind ``conn`` (0: none), read only."""
    inspector = sa.inspect(conn)
    if inspector.has_table("alembic_version"):
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        if revision is not None:
            return int(revision)
    if inspector.has_table(schema.schema_version.name):
        found = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version)))
        return int(found.scalar() or 0)
    return 0


def newer_error(version: int, release: str) -> StoreError:
    return StoreError(
        f"the database schema is version {version}, newer than phoneprov {release} "
        f"knows (version {SCHEMA_VERSION})",
        "Install the phoneprov release that wrote it (or newer), or restore the backup "
        "taken before the upgrade (docs/upgrade.md).",
    )


def older_error(version: int, release: str) -> StoreError:
    return StoreError(
        f"the database schema is version {version}; phoneprov {release} needs version "
        f"{SCHEMA_VERSION}",
        "Back up the site, then run `phoneprov db upgrade` once (docs/upgrade.md); "
        "nodes on the older release keep working until they are upgraded.",
    )


@contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    with lock_path.open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def migrate(engine: sa.Engine, mode: SchemaMode, release: str) -> tuple[int, int]:
    """Bring the schema of ``engine``'s database to this code's, as ``mode`` allows.

    Returns the versions before and after, both read under the lock. Raises
    StoreError for a database newer than the code, and in ``create`` mode for
    one older than the code but not empty.
    """
    if mode == "as-is":
        with engine.connect() as conn:
            version = current_version(conn)
        return version, version
    postgres = engine.dialect.name == "postgresql"
    file_lock: AbstractContextManager[None] = (
        nullcontext() if postgres else _file_lock(sqlite_file(engine.url.render_as_string()))
    )
    with file_lock, engine.begin() as conn:
        if postgres:
            # Held until this transaction ends: a second node waits here, then finds
            # the schema current (two CREATE TABLEs at once fail on pg_type's index).
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        before = current_version(conn)
        if before > SCHEMA_VERSION:
            raise newer_error(before, release)
        if mode == "create" and 0 < before < SCHEMA_VERSION:
            raise older_error(before, release)
        if before < SCHEMA_VERSION:
            from alembic import command

            command.upgrade(_config(conn), "head")
        return before, current_version(conn)
