"""Rollouts that protect the fleet (issue 18): a per-phone REST port, when a rollout
finished and was last checked, each phone's baseline when its wave started, and an
index to find a phone's rollout on every firmware request.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("phone_access", sa.Column("rest_port", sa.Integer, nullable=True))
    op.add_column("rollouts", sa.Column("finished", sa.Float, nullable=True))
    op.add_column("rollouts", sa.Column("checked", sa.Float, nullable=True))
    op.add_column(
        "rollout_phones",
        sa.Column("baseline", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_rollout_phones_mac", "rollout_phones", ["mac"])
