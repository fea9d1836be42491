"""Alembic environment: runs on the connection ``store/migrate.py`` hands over.

That connection is already inside the transaction that holds the migration
lock, so Alembic joins it and commits nothing itself.
"""

from __future__ import annotations

from alembic import context

context.configure(connection=context.config.attributes["connection"], target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
