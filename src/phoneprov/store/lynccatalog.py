"""The Lync/SfB device update catalog in the database: one JSON document and its revision.

What ``<site>/ucupdate/catalog.json`` held on each node (packages and assignments)
is one row of ``lync_catalog``, so every node serving the database offers the same
packages; the document is read and written by ``provisioning/lync/catalog.py``.
``revision`` grows by one with each write, and a write names the revision it read
(compare and swap): of two nodes changing the catalog at once, one writes and the
other is told to read it again and redo its change, so neither change is lost.
Listeners poll ``revision`` to know when to read the document again.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from phoneprov.store.tables import lync_catalog

ROW = 1  # the id of the one row


class LyncCatalogStore:
    """The ``lync_catalog`` table (``store.base.LyncCatalogRepo``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def read(self) -> tuple[str, int] | None:
        """The document and its revision; None when no catalog was written yet."""
        query = sa.select(lync_catalog.c.document, lync_catalog.c.revision).where(
            lync_catalog.c.id == ROW
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return (str(row.document), int(row.revision)) if row is not None else None

    def revision(self) -> int:
        """The revision of the document (0: no catalog yet): one indexed row, for polling."""
        query = sa.select(lync_catalog.c.revision).where(lync_catalog.c.id == ROW)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def write(self, document: str, revision: int) -> int | None:
        """Replace the document read at ``revision`` (0: there was none) in one statement.

        Returns the new revision, or None when another writer changed the catalog
        since ``revision`` was read (nothing written: read it again, redo the change).
        """
        with self.engine.begin() as conn:
            if revision == 0:
                insert = _insert(conn).values(id=ROW, document=document, revision=1)
                # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT.
                done = conn.execute(
                    insert.on_conflict_do_nothing().returning(lync_catalog.c.revision)
                ).first()
                return 1 if done is not None else None
            changed = conn.execute(
                lync_catalog.update()
                .where(lync_catalog.c.id == ROW, lync_catalog.c.revision == revision)
                .values(document=document, revision=revision + 1)
            ).rowcount
        return revision + 1 if changed == 1 else None


def _insert(conn: sa.Connection) -> Any:
    """The dialect's INSERT with ON CONFLICT (PostgreSQL and SQLite 3.24+ have it)."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(lync_catalog)
