"""Database snapshots for backups: SQLite's online backup API, ``pg_dump`` for PostgreSQL.

Both give a consistent picture of a database that servers keep writing to:
SQLite's backup API copies the pages under one read transaction, and
``pg_dump`` reads inside one repeatable-read snapshot. A SQLite snapshot is a
database file of its own (rollback journal, no ``-wal`` beside it); a PostgreSQL
snapshot is ``pg_dump``'s custom format, which ``pg_restore`` loads. The
password of a PostgreSQL URL goes to the tools in ``PGPASSWORD``, never on a
command line that ``ps`` shows.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Literal

import sqlalchemy as sa

from phoneprov.errors import StoreError

DumpKind = Literal["sqlite", "postgresql"]
DUMP_NAMES: dict[DumpKind, str] = {"sqlite": "phoneprov.sqlite3", "postgresql": "phoneprov.pgdump"}
_CLIENT_HINT = (
    "Install the PostgreSQL client tools (Debian: apt-get install postgresql-client), "
    "of the server's major version or newer."
)


def database_kind(url: str) -> DumpKind:
    """``sqlite`` or ``postgresql``; StoreError for any other database URL."""
    backend = _url(url).get_backend_name()
    if backend in ("sqlite", "postgresql"):
        return backend  # type: ignore[return-value]
    raise StoreError(
        f"cannot back up a {backend} database: phoneprov backs up SQLite and PostgreSQL",
        "Set [site] database in phoneprov.toml to a SQLite or PostgreSQL URL.",
    )


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL and in-memory SQLite)."""
    parsed = _url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def dump_database(url: str, dest: Path) -> DumpKind:
    """Write a consistent snapshot of the database at ``url`` to ``dest``; return its kind.

    Raises StoreError when there is no database to copy or the copy fails.
    """
    kind = database_kind(url)
    if kind == "postgresql":
        _run_pg("pg_dump", url, "--format=custom", "--no-owner", "--no-privileges", "-f", dest)
        return kind
    path = sqlite_file(url)
    if path is None or not path.is_file():
        raise StoreError(
            f"there is no SQLite database at {path or url} to back up",
            "Check [site] database in phoneprov.toml; `phoneprov init` or `serve` creates it.",
        )
    try:
        source = sqlite3.connect(path)
        try:
            target = sqlite3.connect(dest)
            try:
                source.backup(target)
                # A file that stands alone: no -wal of its own to carry beside it.
                target.execute("PRAGMA journal_mode=DELETE")
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.Error as error:
        raise StoreError(
            f"cannot copy the SQLite database {path}: {error}",
            "Check that the file is readable by this user and the disk has room.",
        ) from None
    return kind


def load_database(url: str, source: Path, kind: DumpKind) -> None:
    """Load the snapshot ``source`` into the database at ``url``.

    SQLite: the snapshot becomes the database file, which must not exist yet.
    PostgreSQL: ``pg_restore`` in one transaction, dropping the objects the
    snapshot holds first; on failure the database is left as it was.
    Raises StoreError naming what failed.
    """
    if database_kind(url) != kind:
        raise StoreError(
            f"the backup holds a {kind} database, and phoneprov.toml names a "
            f"{database_kind(url)} one",
            "Restore with the phoneprov.toml the backup holds ([site] database).",
        )
    if kind == "postgresql":
        _run_pg(
            "pg_restore",
            url,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            source,
        )
        return
    path = sqlite_file(url)
    assert path is not None  # database_kind said sqlite, and a snapshot is never :memory:
    if path.exists():
        raise StoreError(
            f"a SQLite database already exists at {path}", "Move it away, then restore again."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.restoring")
    shutil.copyfile(source, partial)
    os.replace(partial, path)


def _run_pg(tool: str, url: str, *args: str | Path) -> None:
    """Run a PostgreSQL client tool against ``url``; StoreError with its message on failure."""
    binary = shutil.which(tool)
    if binary is None:
        raise StoreError(f"{tool} is not installed", _CLIENT_HINT)
    parsed = _url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    conninfo = parsed.set(drivername="postgresql", password=None).render_as_string(
        hide_password=False
    )
    result = subprocess.run(
        [binary, "--dbname", conninfo, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        message = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        raise StoreError(
            f"{tool} failed for {parsed.render_as_string(hide_password=True)}: {message}",
            "Check that the database server is reachable with these credentials. " + _CLIENT_HINT,
        )


def _url(url: str) -> sa.engine.URL:
    try:
        return sa.make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(
            "[site] database is not a database URL",
            "Use e.g. postgresql+psycopg://user@dbhost/phoneprov, or leave it empty for SQLite.",
        ) from None
