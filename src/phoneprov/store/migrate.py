"""The database schema: Alembic revisions, applied by one process at a time.

Versions are numbers: the custom migrations of ``store/schema.py`` recorded 1
to 5 in ``schema_version``; Alembic revisions go on from there (``0005`` is the
baseline that builds or completes those five, ``0006`` the shared state of
several nodes). An upgrade runs in one transaction that first takes a lock:
``pg_advisory_xact_lock`` on PostgreSQL, an exclusive ``flock`` on
``<database>.lock`` beside a SQLite file. Two nodes starting together thus
migrate once: the second waits, then finds the schema current.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from phoneprov.errors import StoreError
from phoneprov.store import schema
from phoneprov.store.dump import sqlite_file

MIGRATION_LOCK = 0x70686F6E  # pg_advisory_xact_lock key: "phon"
SCRIPTS = Path(__file__).with_name("migrations")
# "upgrade": apply every missing revision. "create": build an empty database, but
# refuse one that is older or newer than the code. "as-is": change nothing.
SchemaMode = Literal["upgrade", "create", "as-is"]


def _config(conn: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = conn
    return config


def head_version() -> int:
    """The schema version this code builds: its newest revision."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    return int(head or 0)


SCHEMA_VERSION = head_version()


def current_version(conn: sa.Connection) -> int:
    """The schema version of the database behind ``conn`` (0: none), read only."""
    inspector = sa.inspect(conn)
    if inspector.has_table("alembic_version"):
        revision = MigrationContext.configure(conn).get_current_revision()
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
            command.upgrade(_config(conn), "head")
        return before, current_version(conn)
