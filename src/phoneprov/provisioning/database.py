"""``phoneprov db upgrade``: the database schema, checked and brought up to this release.

Migrations are Alembic revisions (``store/migrate.py``) run under a lock
(PostgreSQL advisory lock, or a file lock beside a SQLite file), so nodes and
administrators upgrading at once migrate once. ``serve`` and every other
command build an empty database but refuse an older one, naming ``phoneprov db
upgrade``: the upgrade is done on purpose, once, after a backup.
``check_schema`` opens the database without migrating and changes nothing: a
deployment script runs it to know whether an upgrade is due. A database newer
than this code (a downgrade) is refused either way: older code cannot know what
the newer migrations changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from phoneprov import __version__
from phoneprov.config import Settings
from phoneprov.errors import StoreError
from phoneprov.store import SCHEMA_VERSION, open_store, upgrade_database


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """The schema version before and after, and the one this code expects."""

    before: int
    after: int
    code: int

    @property
    def pending(self) -> int:
        """Migrations this code would still apply (0: current)."""
        return max(self.code - self.after, 0)


def _version(settings: Settings) -> int:
    store = open_store(settings, migrate=False)
    try:
        version = store.schema_version()
    finally:
        store.close()
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the database schema is version {version}, newer than phoneprov {__version__} "
            f"knows (version {SCHEMA_VERSION})",
            "Install the phoneprov release that wrote it (or newer), or restore the backup "
            "taken before the upgrade (docs/upgrade.md).",
        )
    return version


def check_schema(settings: Settings) -> SchemaStatus:
    """The site database's schema version, read without changing anything.

    Raises StoreError when the database cannot be read or is newer than this code.
    """
    version = _version(settings)
    return SchemaStatus(before=version, after=version, code=SCHEMA_VERSION)


def upgrade_schema(settings: Settings) -> SchemaStatus:
    """Apply the migrations the site database lacks; return the versions before and after.

    Raises StoreError when the database cannot be opened or is newer than this code.
    """
    _version(settings)
    before, after = upgrade_database(settings)
    return SchemaStatus(before=before, after=after, code=SCHEMA_VERSION)
