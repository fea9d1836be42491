"""Tables of the state several nodes share: the CA index, site secrets, nonces, nodes,
the Lync/SfB device update catalog.

Created by the Alembic revisions ``0006`` and ``0009`` (``store/migrations/versions/``),
which spell them out as they were then; these definitions are what the code queries.
Times are seconds since the epoch (floats), as in the other tables.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# What each CA issued and revoked. ``ca`` is the SHA-256 of the CA's root certificate,
# so a replaced root (`ca init --force`) starts an index of its own. Serials are up to
# 159 bits: kept as upper-case hex, as openssl prints them.
ca_certificates = sa.Table(
    "ca_certificates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),  # issue order
    sa.Column("ca", sa.String(64), nullable=False),
    sa.Column("serial", sa.String(42), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # server | device | csr
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
    sa.Index("ix_ca_certificates_mac", "ca", "mac"),
)

# One row per CA: the last CRL number used and that CRL (PEM).
ca_state = sa.Table(
    "ca_state",
    metadata,
    sa.Column("ca", sa.String(64), primary_key=True),
    sa.Column("crl_number", sa.Integer, nullable=False),
    sa.Column("crl_pem", sa.Text, nullable=False, server_default=""),
    sa.Column("revision", sa.Integer, nullable=False, server_default="0"),  # + 1 per revocation
)

# Keys every node needs alike (the digest nonce key), sealed with the site key.
site_secrets = sa.Table(
    "site_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(512), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)

# Digest nonce counts seen by any node (RFC 7616 §3.4: nc must grow); a row lives
# until its nonce expires, after which the nonce is answered stale anyway.
digest_nonces = sa.Table(
    "digest_nonces",
    metadata,
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("nc", sa.BigInteger, nullable=False),
    sa.Column("expires", sa.Float, nullable=False, index=True),
)

# Nodes serving this database: a row per `phoneprov serve` start, its heartbeat.
cluster_nodes = sa.Table(
    "cluster_nodes",
    metadata,
    sa.Column("node_id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("site_dir", sa.String(1024), nullable=False, server_default=""),
    sa.Column("listeners", sa.Text, nullable=False, server_default=""),  # JSON {name: url}
    sa.Column("started", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False, index=True),
    sa.Column("stopped", sa.Float, nullable=True),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("last_error_at", sa.Float, nullable=True),
)

# The Lync/SfB device update catalog (revision 0009): what <site>/ucupdate/catalog.json
# held, packages and assignments, as one JSON document in one row (id 1). ``revision``
# grows with each write; a write names the revision it read (store/lynccatalog.py).
lync_catalog = sa.Table(
    "lync_catalog",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
)
