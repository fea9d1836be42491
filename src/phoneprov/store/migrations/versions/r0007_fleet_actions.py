"""Fleet actions and rollouts (issue 18): phone addresses and REST admin passwords,
resync and restart results, rollouts and their phones.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "phone_access",
        sa.Column("mac", sa.String(12), primary_key=True),
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
        sa.Column("seen", sa.Float, nullable=True),
        sa.Column("admin_password", sa.String(256), nullable=False, server_default=""),
    )
    op.create_table(
        "fleet_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("mac", sa.String(12), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("confirmed", sa.Float, nullable=True),
    )
    op.create_index("ix_fleet_actions_mac", "fleet_actions", ["mac"])
    op.create_table(
        "rollouts",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("wave", sa.Integer, nullable=False, server_default="0"),
        sa.Column("wave_started", sa.Float, nullable=True),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "rollout_phones",
        sa.Column("rollout", sa.String(64), primary_key=True),
        sa.Column("mac", sa.String(12), primary_key=True),
        sa.Column("wave", sa.Integer, nullable=False),
        sa.Column("previous", sa.String(32), nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )
