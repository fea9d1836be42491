"""Baseline: the schema the custom migrations of ``store/schema.py`` built (version 5).

Revision ID: 0005
Revises: -

On an empty database it runs those five steps; on a database an older
phoneprov left at version 1 to 4 it runs the steps it lacks; at version 5 it
changes nothing. Either way ``schema_version`` ends at 5 and Alembic takes over.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from phoneprov.store import schema

revision = "0005"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    schema.schema_version.create(conn, checkfirst=True)
    current = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version)))
    version = current.scalar() or 0
    for number, migration in enumerate(schema.MIGRATIONS, start=1):
        if number > version:
            migration(conn)
            conn.execute(schema.schema_version.insert().values(version=number))
