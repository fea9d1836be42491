"""Who an FTP login is: accounts from the store, and the FTPS certificate.

Accounts are the same as for HTTP digest (``phoneprov account set``): kind
``bootstrap`` (the phones' default PlcmSpIp, a public identity), ``site`` (an
administrator's tools) and ``device`` (user name = MAC; may read that phone's
secrets). ``Accounts`` (provisioning/accounts.py) checks passwords against the
scrypt hash in the store and remembers a successful check, so a boot storm
logging in with the same default password does not block pyftpdlib's loop on
scrypt hundreds of times.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from pyftpdlib.exceptions import AuthenticationFailed

from phoneprov.config import Settings
from phoneprov.errors import ConfigError
from phoneprov.model import Principal, Protocol
from phoneprov.policy import Reason
from phoneprov.provisioning.lockout import Login
from phoneprov.provisioning.services import PhoneServices
from phoneprov.servers.tls import SERVER_CERT_STEMS

# pyftpdlib permission letters (authorizers.py): e=CWD l=LIST/SIZE/MDTM r=RETR
# a=APPE d=DELE w=STOR. Rename, MKD, SITE CHMOD and MFMT are never offered;
# which file a command may touch is decided per file by the policy table.
PERMS = "elradw"
MAX_USER_NAME = 64  # characters of a refused user name kept in the security log


class LoginRefused(Exception):
    """A login was refused; ``reason`` goes to the security log."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.value)
        self.reason = reason


def identity_of(username: str) -> str:
    """The identity of a refused login: the user name as sent, bounded (the audit
    escapes it; provisioning/audit.py)."""
    return "user:" + username[:MAX_USER_NAME]


class AccountAuthorizer:
    """pyftpdlib's authorizer interface over the store's accounts."""

    def __init__(self, services: PhoneServices) -> None:
        self.services = services

    def principal(self, username: str, password: str, protocol: Protocol) -> Principal:
        """The principal for a login; raises LoginRefused naming the reason."""
        accounts = self.services.accounts
        account = accounts.get(username)
        if account is None:
            raise LoginRefused(Reason.UNKNOWN_USER)
        if account.kind == "bootstrap" and not self.services.settings.ftp.default_account:
            raise LoginRefused(Reason.DEFAULT_ACCOUNT_DISABLED)
        if not accounts.password_ok(account, password):
            raise LoginRefused(Reason.BAD_PASSWORD)
        return accounts.principal(account, protocol)

    def locked_for(self, username: str, handler: Any) -> int | None:
        """Seconds this address must wait before logging in as ``username`` again
        (the brake on password guessing; the session answers 421), or None."""
        if self.services.accounts.get(username) is None:
            return None  # no password to guess; the login is refused as unknown-user
        return self.services.lockout.refused(self._login(username, handler))

    # pyftpdlib's authorizer interface
    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        """Set ``handler.principal``; raise AuthenticationFailed (530) otherwise."""
        protocol = handler.protocol
        try:
            handler.principal = self.principal(username, password, protocol)
        except LoginRefused as refused:
            self.services.audit.refused(
                protocol=protocol.value,
                ip=handler.remote_ip,
                identity=identity_of(username),
                reason=refused.reason.value,
            )
            if refused.reason is Reason.BAD_PASSWORD:
                self.services.lockout.failed(self._login(username, handler))
            raise AuthenticationFailed("Login incorrect.") from None

    def _login(self, username: str, handler: Any) -> Login:
        # The store matches user names exactly, so ``username`` is the account's name.
        return Login(handler.protocol.value, handler.remote_ip, username, identity_of(username))

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
        """Nothing to do: every file access goes through the phone services."""

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
