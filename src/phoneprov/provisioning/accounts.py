"""Accounts phones log in with: the public bootstrap account, per-device and site accounts.

Passwords are kept as scrypt hashes (FTP checks them) and digest HA1 values
(the HTTP digest check needs HA1, RFC 7616 §3.4.2); neither is reversible.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading

from cachetools import LRUCache, TTLCache

from phoneprov.model import MacAddress, Principal, PrincipalKind, Protocol
from phoneprov.provisioning.identity import Identity
from phoneprov.records import Account
from phoneprov.store import Store

ACCOUNT_TTL = 5.0  # seconds an account lookup is kept (removals take effect within this)
CACHE_SIZE = 10_000


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
    """Looks up phone accounts and turns a login into a Principal.

    Lookups are kept ``ACCOUNT_TTL`` seconds (the store is the truth); a
    verified FTP password is remembered as an HMAC under a per-process key so
    a phone's repeated logins do not pay scrypt each time. Both caches are
    bounded LRU maps.
    """

    def __init__(self, store: Store, identity: Identity) -> None:
        self.store = store
        self.identity = identity
        self._accounts: TTLCache[str, Account | None] = TTLCache(CACHE_SIZE, ACCOUNT_TTL)
        self._verified: LRUCache[tuple[str, str], bytes] = LRUCache(CACHE_SIZE)
        self._key = os.urandom(32)
        self._lock = threading.Lock()  # FTP logins run in its own thread

    def get(self, username: str) -> Account | None:
        """The account named ``username``, or None."""
        with self._lock:
            if username in self._accounts:
                return self._accounts[username]
        account = self.store.get_account(username)
        with self._lock:
            self._accounts[username] = account
        return account

    def password_ok(self, account: Account, password: str) -> bool:
        """Whether ``password`` is the account's password (scrypt, remembered as an HMAC)."""
        tag = hmac.new(self._key, password.encode(), hashlib.sha256).digest()
        key = (account.username, account.password_hash)
        with self._lock:
            known = self._verified.get(key)
        if known is not None:
            return hmac.compare_digest(known, tag)
        if not check_password(password, account.password_hash):
            return False
        with self._lock:
            self._verified[key] = tag
        return True

    def principal(self, account: Account, protocol: Protocol) -> Principal:
        """Who logs in with ``account``: a device account is its phone, known."""
        if account.kind == "device" and account.mac:
            return self.identity.device_principal(
                PrincipalKind.DEVICE_ACCOUNT,
                protocol,
                MacAddress(account.mac),
                name=account.username,
            )
        kind = PrincipalKind.SITE_ACCOUNT if account.kind == "site" else PrincipalKind.BOOTSTRAP
        return Principal(kind, protocol, account.username)
