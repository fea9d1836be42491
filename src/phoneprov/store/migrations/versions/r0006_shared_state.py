"""State several nodes share: the CA index and CRL, site secrets, digest nonces, nodes.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ca_certificates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ca", sa.String(64), nullable=False),
        sa.Column("serial", sa.String(42), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("mac", sa.String(12), nullable=True),
        sa.Column("slot", sa.String(32), nullable=True),
        sa.Column("not_before", sa.Float, nullable=False),
        sa.Column("not_after", sa.Float, nullable=False),
        sa.Column("issued_at", sa.Float, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("pem", sa.Text, nullable=False),
        sa.UniqueConstraint("ca", "serial", name="uq_ca_certificates_serial"),
    )
    op.create_index("ix_ca_certificates_mac", "ca_certificates", ["ca", "mac"])
    op.create_table(
        "ca_state",
        sa.Column("ca", sa.String(64), primary_key=True),
        sa.Column("crl_number", sa.Integer, nullable=False),
        sa.Column("crl_pem", sa.Text, nullable=False, server_default=""),
        sa.Column("revision", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "site_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(512), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "digest_nonces",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("nc", sa.BigInteger, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
    )
    op.create_index("ix_digest_nonces_expires", "digest_nonces", ["expires"])
    op.create_table(
        "cluster_nodes",
        sa.Column("node_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("site_dir", sa.String(1024), nullable=False, server_default=""),
        sa.Column("listeners", sa.Text, nullable=False, server_default=""),
        sa.Column("started", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("stopped", sa.Float, nullable=True),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("last_error_at", sa.Float, nullable=True),
    )
    op.create_index("ix_cluster_nodes_last_seen", "cluster_nodes", ["last_seen"])
