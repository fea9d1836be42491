"""The administrator's calls on the accounts phones log in with (``phoneprov account``).

An account is ``bootstrap`` (the public one phones ship with), ``site`` (shared
by several phones) or ``device`` (one phone, named by its MAC). Passwords are
stored as HA1 for HTTP digest and as an scrypt hash for FTP (``accounts.py``);
nothing here hands either back.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.protocols import digest
from phoneprov.provisioning import trail
from phoneprov.provisioning.accounts import hash_password
from phoneprov.store import open_store

ACCOUNT_KINDS = ("bootstrap", "site", "device")


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """An account as the administrator sees it: never its password hashes."""

    username: str
    kind: str
    mac: str
    realm: str


@trail.audited("account.set", target="username")
def set_account(settings: Settings, username: str, kind: str, password: str) -> AccountSummary:
    """Create or change an account; a ``device`` account is named by its MAC (canonical form).

    Raises InputError for an unknown kind, a bad MAC, or an empty name or one with a colon.
    """
    if kind not in ACCOUNT_KINDS:
        raise InputError(
            f"--kind {kind!r} is not bootstrap, site or device",
            "Use --kind device for a per-phone account named by its MAC.",
        )
    mac = ""
    if kind == "device":
        mac = MacAddress.parse(username).value
        username = mac
    if not username or ":" in username:
        raise InputError(f"user name {username!r} is empty or has a colon", "Pick a plain name.")
    realm = settings.http.realm
    with closing(open_store(settings)) as store:
        store.put_account(
            username,
            kind,
            realm,
            digest.ha1(username, realm, password),
            hash_password(password),
            mac=mac,
        )
    return AccountSummary(username, kind, mac, realm)


def list_accounts(settings: Settings) -> list[AccountSummary]:
    """Every account of the site, without its password hashes."""
    with closing(open_store(settings)) as store:
        return [AccountSummary(a.username, a.kind, a.mac, a.realm) for a in store.list_accounts()]


@trail.audited("account.remove", target="username")
def remove_account(settings: Settings, username: str) -> None:
    """Remove the account ``username``; InputError when there is none."""
    with closing(open_store(settings)) as store:
        if not store.remove_account(username):
            raise InputError(f"no account named {username}", "See `phoneprov account list`.")
