"""Storage behind the ``Store`` protocol (``store/base.py``); ``open_store`` builds it.

Services are handed a ``Store``; nothing outside this package names the
SQLAlchemy implementation, so a second backend changes this factory only.
Backups take their database snapshot through ``dump_database`` and
``load_database`` (``store/dump.py``).
"""

from __future__ import annotations

from phoneprov.config import Settings
from phoneprov.store import schema
from phoneprov.store.base import Store
from phoneprov.store.dump import (
    DUMP_NAMES,
    DumpKind,
    database_kind,
    dump_database,
    load_database,
    sqlite_file,
)
from phoneprov.store.recorder import Recorder
from phoneprov.store.secrets import site_box
from phoneprov.store.sql import SqlStore

__all__ = [
    "DUMP_NAMES",
    "SCHEMA_VERSION",
    "DumpKind",
    "Recorder",
    "Store",
    "database_kind",
    "dump_database",
    "load_database",
    "open_database",
    "open_store",
    "sqlite_file",
]

# The schema this code migrates databases to: the number of migrations it knows.
SCHEMA_VERSION = len(schema.MIGRATIONS)


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """The site's database, migrated, with the site's key for secrets at rest.

    ``migrate=False`` opens it as it is, to read ``schema_version()``: nothing in
    the database or the site folder changes, and no site key is read or made, so
    sealed secrets stay closed. Raises StoreError naming the database when it
    cannot be opened.
    """
    if not migrate:
        return SqlStore(settings.database_url, migrate=False)
    return SqlStore(settings.database_url, site_box(settings.pki_dir))


def open_database(url: str) -> Store:
    """A database by URL without the site key (SIP passwords then read as empty).

    For tools that look at a database without a site folder (benchmarks, a
    second node's checks); raises StoreError like ``open_store``.
    """
    return SqlStore(url)
