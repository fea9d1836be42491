"""Accounts phones log in with: the public bootstrap account, per-device and site accounts.

Passwords are kept as scrypt hashes (FTP checks them) and digest HA1 values
(the HTTP digest check needs HA1, RFC 7616 §3.4.2); neither is reversible.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from phoneprov.records import Account
from phoneprov.store import Store


def hash_password(password: str, salt: bytes | None = None) -> str:
    """scrypt hash in the form ``scrypt$n$r$p$salt_hex$hash_hex``."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(digest) // 2,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


class Accounts:
    """Looks up and checks phone accounts in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, username: str) -> Account | None:
        """The account named ``username``, or None."""
        return self.store.get_account(username)

    def verify(self, username: str, password: str) -> Account | None:
        """The account when ``password`` is its password; None for a wrong name or password."""
        account = self.store.get_account(username)
        if account is None or not check_password(password, account.password_hash):
            return None
        return account
