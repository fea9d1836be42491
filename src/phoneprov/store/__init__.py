"""Storage behind the ``Store`` protocol (``store/base.py``); ``open_store`` builds it.

Services are handed a ``Store``; nothing outside this package names the
SQLAlchemy implementation, so a second backend changes this factory only.
Backups take their database snapshot through ``dump_database`` and
``load_database`` (``store/dump.py``).
"""

from __future__ import annotations

from phoneprov.config import Settings
from phoneprov.store.base import Store
from phoneprov.store.dump import (
    DUMP_NAMES,
    DumpKind,
    database_kind,
    dump_database,
    load_database,
    sqlite_file,
)
from phoneprov.store.migrate import SCHEMA_VERSION
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
    "upgrade_database",
]


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """The site's database at this code's schema, with the site's key for secrets at rest.

    An empty database gets the schema; one older or newer than the code is
    refused (StoreError naming `phoneprov db upgrade`): upgrading is done on
    purpose, once, not by whichever node starts first. ``migrate=False`` opens
    it as it is, to read ``schema_version()``: nothing in the database or the
    site folder changes, and no site key is read or made, so sealed secrets
    stay closed. Raises StoreError naming the database when it cannot be opened.
    """
    if not migrate:
        return SqlStore(settings.database_url, mode="as-is")
    return SqlStore(settings.database_url, site_box(settings.pki_dir), mode="create")


def upgrade_database(settings: Settings) -> tuple[int, int]:
    """Apply every migration the site database lacks; return the versions before and after.

    Both are read under the migration lock, so of two processes upgrading at
    once one reports the work and the other finds nothing to do. Raises
    StoreError when the database cannot be opened or is newer than the code.
    """
    store = SqlStore(settings.database_url, site_box(settings.pki_dir), mode="upgrade")
    store.close()
    return store.versions


def open_database(url: str) -> Store:
    """A database by URL without the site key (SIP passwords then read as empty).

    For tools that look at a database without a site folder (benchmarks, a
    second node's checks); raises StoreError like ``open_store``.
    """
    return SqlStore(url)
