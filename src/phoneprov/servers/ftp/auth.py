"""Who an FTP login is: accounts from the store, and the FTPS certificate.

Accounts are the same as for HTTP digest (``phoneprov account set``): kind
``bootstrap`` (the phones' default PlcmSpIp, a public identity), ``site`` (an
administrator's tools) and ``device`` (user name = MAC; may read that phone's
secrets). Passwords are checked against the scrypt hash in the store. scrypt
costs tens of milliseconds and blocks pyftpdlib's loop, and a boot storm logs
in with the same default password hundreds of times, so a successful check is
remembered as an HMAC under a key that lives only in this process.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Any

from OpenSSL import SSL
from pyftpdlib.exceptions import AuthenticationFailed

from phoneprov.config import Settings
from phoneprov.errors import ConfigError
from phoneprov.model import MacAddress, Principal, PrincipalKind, Protocol
from phoneprov.provisioning.access import AccessService
from phoneprov.provisioning.accounts import check_password
from phoneprov.servers.http import Accounts
from phoneprov.servers.tls import SERVER_CERT_STEMS

# pyftpdlib permission letters (authorizers.py): e=CWD l=LIST/SIZE/MDTM r=RETR
# a=APPE d=DELE w=STOR. Rename, MKD, SITE CHMOD and MFMT are never offered;
# which file a command may touch is decided per file by the policy table.
PERMS = "elradw"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._@+-]")
_VERIFIED_LIMIT = 10000


class LoginRefused(Exception):
    """A login was refused; ``reason`` goes to the security log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def identity_of(username: str) -> str:
    """The user name as written in logs: printable, no spaces, bounded."""
    return "user:" + _SAFE_NAME.sub("?", username)[:64]


class AccountAuthorizer:
    """pyftpdlib's authorizer interface over the store's accounts."""

    def __init__(self, access: AccessService) -> None:
        self.access = access
        self.accounts = Accounts(access)
        self._key = os.urandom(32)
        self._verified: dict[tuple[str, str], bytes] = {}

    def principal(self, username: str, password: str, protocol: Protocol) -> Principal:
        """The principal for a login; raises LoginRefused naming the reason."""
        account = self.accounts.get(username)
        if account is None:
            raise LoginRefused("unknown-user")
        if account.kind == "bootstrap" and not self.access.settings.ftp.default_account:
            raise LoginRefused("default-account-disabled")
        if not self._password_ok(username, password, account.password_hash):
            raise LoginRefused("bad-password")
        if account.kind == "device" and account.mac:
            return self.access.device_principal(
                PrincipalKind.DEVICE_ACCOUNT,
                protocol,
                MacAddress(account.mac),
                name=account.username,
            )
        kind = PrincipalKind.SITE_ACCOUNT if account.kind == "site" else PrincipalKind.BOOTSTRAP
        return Principal(kind, protocol, account.username)

    def _password_ok(self, username: str, password: str, stored: str) -> bool:
        tag = hmac.new(self._key, password.encode(), hashlib.sha256).digest()
        key = (username, stored)
        known = self._verified.get(key)
        if known is not None:
            return hmac.compare_digest(known, tag)
        if not check_password(password, stored):
            return False
        if len(self._verified) > _VERIFIED_LIMIT:
            self._verified.clear()
        self._verified[key] = tag
        return True

    # pyftpdlib's authorizer interface
    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        """Set ``handler.principal``; raise AuthenticationFailed (530) otherwise."""
        protocol = handler.protocol
        try:
            handler.principal = self.principal(username, password, protocol)
        except LoginRefused as refused:
            self.access.audit.refused(
                protocol=protocol.value,
                ip=handler.remote_ip,
                identity=identity_of(username),
                reason=refused.reason,
            )
            raise AuthenticationFailed("Login incorrect.") from None

    def get_home_dir(self, username: str) -> str:
        return "/"

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        return perm in PERMS

    def get_perms(self, username: str) -> str:
        return PERMS

    def get_msg_login(self, username: str) -> str:
        return "Logged in."

    def get_msg_quit(self, username: str) -> str:
        return "Goodbye."

    def impersonate_user(self, username: str, password: str) -> None:
        """Nothing to do: every file access goes through AccessService."""

    def terminate_impersonation(self, username: str) -> None:
        """Nothing to do (see impersonate_user)."""


def tls_context(settings: Settings) -> Any:
    """pyOpenSSL context for explicit FTPS (RFC 4217) with the site's server certificates.

    Both the ECDSA and the RSA certificate are loaded, as for HTTPS; OpenSSL
    picks per client. Raises ConfigError when neither pair exists.
    """
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(SSL.OP_NO_COMPRESSION)
    loaded = 0
    for stem in SERVER_CERT_STEMS:
        cert = settings.pki_dir / f"{stem}.pem"
        key = settings.pki_dir / f"{stem}.key"
        if cert.is_file() and key.is_file():
            context.use_certificate_chain_file(str(cert))
            context.use_privatekey_file(str(key))
            loaded += 1
    if not loaded:
        raise ConfigError(
            f"[ftp] ftps = true but there is no server certificate in {settings.pki_dir} "
            "(server-ec.pem/.key or server-rsa.pem/.key)",
            "Run `phoneprov ca issue-server --fqdn <name>`, or set [ftp] ftps = false.",
        )
    return context
