"""Tables and forward-only migrations.

Each migration is a function applied once, in order; ``schema_version`` records
the last one applied. Never edit a released migration: add the next one.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("mac", sa.String(12), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("model", sa.String(64), nullable=False, server_default=""),
    sa.Column("family", sa.String(64), nullable=False, server_default=""),
    sa.Column("firmware", sa.String(64), nullable=False, server_default=""),
    sa.Column("updater_version", sa.String(64), nullable=False, server_default=""),
    sa.Column("stage", sa.String(16), nullable=False, server_default=""),
    sa.Column("ip", sa.String(64), nullable=False, server_default=""),
    sa.Column("protocol", sa.String(8), nullable=False, server_default=""),
    sa.Column("cert_kind", sa.String(16), nullable=False, server_default=""),
    sa.Column("user_agent", sa.String(256), nullable=False, server_default=""),
    sa.Column("site", sa.String(64), nullable=False, server_default=""),
    sa.Column("group_name", sa.String(64), nullable=False, server_default=""),
    sa.Column("label", sa.String(128), nullable=False, server_default=""),
    sa.Column("first_seen", sa.Float, nullable=True),
    sa.Column("last_seen", sa.Float, nullable=True),
    sa.Column("requests", sa.Integer, nullable=False, server_default="0"),
    sa.Column("flags", sa.String(256), nullable=False, server_default=""),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.Float, nullable=False, index=True),
    sa.Column("mac", sa.String(12), nullable=False, server_default="", index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("username", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # bootstrap | site | device
    sa.Column("mac", sa.String(12), nullable=False, server_default=""),
    sa.Column("realm", sa.String(128), nullable=False),
    # MD5(user:realm:password) for digest, sealed with the site key (store/secrets.py);
    # a sealed value is about 150 characters (_sealed_ha1 widened the column).
    sa.Column("ha1", sa.String(256), nullable=False),
    sa.Column("password_hash", sa.String(256), nullable=False),  # scrypt, for FTP and Basic
    sa.Column("created", sa.Float, nullable=False),
)


def _v1(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[devices, events, credentials])


# Lync/SfB device update requests (issue 8): the raw body the device POSTed is kept
# with what it reported and what it was offered; the loop guard reads the latest rows.
ucupdate_requests = sa.Table(
    "ucupdate_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("mac", sa.String(12), nullable=False, server_default="", index=True),
    sa.Column("ip", sa.String(64), nullable=False, server_default="", index=True),
    sa.Column("side", sa.String(8), nullable=False, server_default=""),
    sa.Column("package", sa.String(400), nullable=False, server_default=""),
    sa.Column("reported", sa.String(256), nullable=False, server_default=""),
    sa.Column("offered", sa.String(256), nullable=False, server_default=""),
    sa.Column("outcome", sa.String(32), nullable=False, server_default=""),
    sa.Column("body", sa.Text, nullable=False, server_default=""),
)


def _ucupdate_requests(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[ucupdate_requests])


device_lines = sa.Table(
    "device_lines",
    metadata,
    sa.Column("mac", sa.String(12), primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True),  # reg.N on the phone, from 1
    sa.Column("ext", sa.String(64), nullable=False),  # reg.N.address
    sa.Column("user", sa.String(128), nullable=False, server_default=""),  # reg.N.auth.userId
    sa.Column("password", sa.String(256), nullable=False, server_default=""),
    sa.Column("server", sa.String(255), nullable=False, server_default=""),
)

firmware_images = sa.Table(
    "firmware_images",
    metadata,
    sa.Column("version", sa.String(32), primary_key=True),
    sa.Column("part", sa.String(32), primary_key=True),  # "" for the combined sip.ld
    sa.Column("models", sa.String(512), nullable=False, server_default=""),  # comma list
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("filename", sa.String(255), nullable=False, server_default=""),
    sa.Column("added", sa.Float, nullable=False),
)

firmware_assignments = sa.Table(
    "firmware_assignments",
    metadata,
    sa.Column("scope", sa.String(8), primary_key=True),  # model | group
    sa.Column("target", sa.String(64), primary_key=True),  # model token or group name
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("assigned", sa.Float, nullable=False),
)

firmware_downloads = sa.Table(
    "firmware_downloads",
    metadata,
    sa.Column("mac", sa.String(12), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("first", sa.Float, nullable=False),
    sa.Column("last", sa.Float, nullable=False),
)


def _inventory(conn: sa.Connection) -> None:
    """Inventory lines, the firmware catalog and assignments, firmware download counts."""
    metadata.create_all(
        conn, tables=[device_lines, firmware_images, firmware_assignments, firmware_downloads]
    )
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_devices_group ON devices (group_name)"))


def _sealed_ha1(conn: sa.Connection) -> None:
    """Room for sealed HA1 values; SQLite does not enforce VARCHAR lengths."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("ALTER TABLE credentials ALTER COLUMN ha1 TYPE VARCHAR(256)"))


# The admin API (issue 14): administrators, API tokens, the append-only audit trail.
administrators = sa.Table(
    "administrators",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(256), nullable=False),  # argon2id
    sa.Column("created", sa.Float, nullable=False),
)

admin_tokens = sa.Table(
    "admin_tokens",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=True),
    sa.Column("revoked", sa.Float, nullable=True),
    sa.Column("created_by", sa.String(128), nullable=False, server_default=""),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("target", sa.String(256), nullable=False, server_default="", index=True),
    sa.Column("changes", sa.Text, nullable=False, server_default="{}"),  # JSON
)


def _admin(conn: sa.Connection) -> None:
    """Administrators, API tokens and the audit trail; indexes for the fleet pages."""
    metadata.create_all(conn, tables=[administrators, admin_tokens, audit_log])
    for column in ("model", "firmware", "last_seen", "status"):
        conn.execute(
            sa.text(f"CREATE INDEX IF NOT EXISTS ix_devices_{column} ON devices ({column}, mac)")
        )


# Fleet actions and rollouts (issue 18), created by the Alembic revision ``0007``
# (store/migrations/versions/r0007_fleet_actions.py). ``phone_access`` holds the address each phone
# last proved who it is from (its certificate or device account) and its admin password
# for the REST API, sealed with the site key like SIP passwords (store/secrets.py).
phone_access = sa.Table(
    "phone_access",
    metadata,
    sa.Column("mac", sa.String(12), primary_key=True),
    sa.Column("address", sa.String(64), nullable=False, server_default=""),
    sa.Column("seen", sa.Float, nullable=True),
    sa.Column("admin_password", sa.String(256), nullable=False, server_default=""),
    sa.Column("rest_port", sa.Integer, nullable=True),  # revision 0008; NULL: [fleet] rest_port
)

fleet_actions = sa.Table(
    "fleet_actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("mac", sa.String(12), nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(24), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("confirmed", sa.Float, nullable=True),
)

rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("plan", sa.Text, nullable=False),  # JSON (protocols/rollout_plan.py)
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("wave", sa.Integer, nullable=False, server_default="0"),
    sa.Column("wave_started", sa.Float, nullable=True),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("finished", sa.Float, nullable=True),  # revision 0008
    sa.Column("checked", sa.Float, nullable=True),  # revision 0008
)

rollout_phones = sa.Table(
    "rollout_phones",
    metadata,
    sa.Column("rollout", sa.String(64), primary_key=True),
    sa.Column("mac", sa.String(12), primary_key=True),
    sa.Column("wave", sa.Integer, nullable=False),
    sa.Column("previous", sa.String(32), nullable=False, server_default=""),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("baseline", sa.Text, nullable=False, server_default=""),  # revision 0008
    sa.Index("ix_rollout_phones_mac", "mac"),  # revision 0008: a phone's rollout, per request
)


MIGRATIONS: list[Callable[[sa.Connection], None]] = [
    _v1,
    _ucupdate_requests,
    _inventory,
    _sealed_ha1,
    _admin,
]
