"""The Lync/SfB device update catalog every node shares (issue 17): packages and
assignments as one JSON document with a revision, where each node kept
``<site>/ucupdate/catalog.json`` (adopted on first use, provisioning/lync/catalog.py).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lync_catalog",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
    )
