"""Administrators and API tokens: who may use the admin API, and with which role.

Passwords are hashed with argon2id (argon2-cffi, RFC 9106's defaults). A token
is 32 random bytes shown once; the database keeps its SHA-256 (a token is not
guessable, so a slow hash would only slow every request). Roles are
``viewer``, ``operator`` and ``admin``: what each may do is decided by the rows
of ``policy.TABLE`` for the principal kind of the same name.

Every change is an audit event (``provisioning/trail.py``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
import time
from contextlib import closing
from dataclasses import dataclass

import argon2

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.model import Principal, PrincipalKind, Protocol
from phoneprov.provisioning import trail
from phoneprov.records import AdminRecord, TokenRecord
from phoneprov.store import Store, open_store

ROLES = (PrincipalKind.VIEWER.value, PrincipalKind.OPERATOR.value, PrincipalKind.ADMIN.value)
TOKEN_PREFIX = "pp_"
MIN_PASSWORD = 12  # characters
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_EXPIRES = re.compile(r"(\d+)\s*([dhm])")
_hasher = argon2.PasswordHasher()  # argon2id, RFC 9106 low-memory profile


@functools.cache
def _dummy_hash() -> str:
    """Checked when a name is unknown, so a wrong name costs as long as a wrong password.

    Made on first use, not at import: hashing costs 0.25 s, paid by every CLI command.
    """
    return _hasher.hash("phoneprov: no such administrator")


@dataclass(frozen=True, slots=True)
class Admin:
    """Who is calling the admin API: an administrator or a token, with its role.

    ``actor`` is how the audit trail and the security log name it.
    """

    name: str
    role: str
    via: str  # "token" or "password" (the console's session)

    @property
    def actor(self) -> str:
        return f"{self.via}:{self.name}" if self.via == "token" else f"admin:{self.name}"

    def principal(self) -> Principal:
        """The principal ``policy.decide`` is asked about."""
        return Principal(PrincipalKind(self.role), Protocol.HTTPS, self.actor)


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: ``secret`` is shown once and never stored."""

    record: TokenRecord
    secret: str


def check_name(name: str, what: str = "administrator") -> str:
    if not _NAME.fullmatch(name):
        raise InputError(
            f"{name!r} is not a valid {what} name",
            "Use up to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit.",
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(
            f"{role!r} is not a role", f"Use one of: {', '.join(ROLES)} (docs/admin-api.md)."
        )
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InputError(
            f"the password has {len(password)} characters; at least {MIN_PASSWORD} are needed",
            "Choose a longer password (a passphrase of a few words is easy to type).",
        )
    return password


def parse_expiry(text: str, now: float) -> float:
    """``90d``, ``12h`` or ``30m`` from ``now``; InputError otherwise."""
    match = _EXPIRES.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise InputError(
            f"{text!r} is not a lifetime", "Write it as a number of days, hours or minutes: 90d."
        )
    unit = {"d": 86400, "h": 3600, "m": 60}[match.group(2)]
    return now + int(match.group(1)) * unit


def _admin_view(record: AdminRecord | None) -> dict[str, object]:
    return {} if record is None else {"role": record.role, "password": record.password_hash}


def _snapshot(settings: Settings, name: str) -> dict[str, object]:
    with closing(open_store(settings)) as store:
        return _admin_view(store.admin.get_admin(name))


@trail.audited("admin.user.add", target="name", snapshot=_snapshot)
def add_admin(settings: Settings, name: str, role: str, password: str) -> AdminRecord:
    """Create an administrator; InputError when the name is taken or a value is bad."""
    check_name(name)
    check_role(role)
    check_password(password)
    with closing(open_store(settings)) as store:
        if store.admin.get_admin(name) is not None:
            raise InputError(
                f"administrator {name!r} already exists",
                f"Change the password with `phoneprov admin user passwd {name}`, or remove it.",
            )
        store.admin.put_admin(name, role, _hasher.hash(password))
        record = store.admin.get_admin(name)
    assert record is not None
    return record


@trail.audited("admin.user.passwd", target="name", snapshot=_snapshot)
def set_password(settings: Settings, name: str, password: str) -> None:
    check_password(password)
    with closing(open_store(settings)) as store:
        record = _existing(store, name)
        store.admin.put_admin(name, record.role, _hasher.hash(password))


@trail.audited("admin.user.remove", target="name", snapshot=_snapshot)
def remove_admin(settings: Settings, name: str) -> None:
    with closing(open_store(settings)) as store:
        _existing(store, name)
        store.admin.remove_admin(name)


def list_admins(settings: Settings) -> list[AdminRecord]:
    with closing(open_store(settings)) as store:
        return store.admin.admins()


def _existing(store: Store, name: str) -> AdminRecord:
    record = store.admin.get_admin(name)
    if record is None:
        raise InputError(
            f"no administrator is named {name!r}", "List them with `phoneprov admin user list`."
        )
    return record


def login(store: Store, name: str, password: str) -> Admin | None:
    """The administrator when ``password`` is theirs, else None (same time either way)."""
    record = store.admin.get_admin(name)
    try:
        _hasher.verify(record.password_hash if record else _dummy_hash(), password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return None
    if record is None:
        return None
    return Admin(record.name, record.role, "password")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _token_view(settings: Settings, name: str) -> dict[str, object]:
    with closing(open_store(settings)) as store:
        token = store.admin.token(name=name)
    if token is None:
        return {}
    return {"role": token.role, "expires": token.expires, "revoked": token.revoked}


@trail.audited("admin.token.create", target="name", snapshot=_token_view)
def create_token(settings: Settings, name: str, role: str, expires: str | None = None) -> NewToken:
    """A new token (its secret shown once); InputError when the name is taken."""
    check_name(name, "token")
    check_role(role)
    now = time.time()
    until = parse_expiry(expires, now) if expires else None
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(name, role, _digest(secret), now, until, None, trail.current_actor())
    with closing(open_store(settings)) as store:
        if store.admin.token(name=name) is not None:
            raise InputError(
                f"a token named {name!r} already exists",
                "Choose another name, or revoke it and create a new one under a new name.",
            )
        store.admin.put_token(record)
    return NewToken(record, secret)


@trail.audited("admin.token.revoke", target="name", snapshot=_token_view)
def revoke_token(settings: Settings, name: str) -> None:
    with closing(open_store(settings)) as store:
        if not store.admin.revoke_token(name, time.time()):
            token = store.admin.token(name=name)
            raise InputError(
                f"no token is named {name!r}"
                if token is None
                else f"token {name!r} is already revoked",
                "List them with `phoneprov admin token list`.",
            )


def list_tokens(settings: Settings) -> list[TokenRecord]:
    with closing(open_store(settings)) as store:
        return store.admin.tokens()


def authenticate_token(store: Store, secret: str, now: float | None = None) -> Admin | None:
    """The token's Admin when ``secret`` is a live token (not expired, not revoked)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    record = store.admin.token(sha256=_digest(secret))
    if record is None or not hmac.compare_digest(record.sha256, _digest(secret)):
        return None
    now = time.time() if now is None else now
    if record.revoked is not None or (record.expires is not None and record.expires <= now):
        return None
    return Admin(record.name, record.role, "token")


def describe_expiry(token: TokenRecord, now: float) -> str:
    """``revoked``, ``expired``, ``never`` or the UTC date it expires."""
    if token.revoked is not None:
        return "revoked"
    if token.expires is None:
        return "never"
    if token.expires <= now:
        return "expired"
    return dt.datetime.fromtimestamp(token.expires, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
