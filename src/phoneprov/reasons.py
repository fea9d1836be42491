"""Why a request was allowed or refused: one enum, spelled as the security log writes it.

The policy table (``policy.py``) gives most reasons; the others come before the
table is asked (an unsafe path, an identity that could not be established, a
protocol limit) or from a server fault. Every reason has a meaning, which the
docs' reasons table prints.
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    """Why a request was allowed or refused, spelled as the security log writes it."""

    OK = "ok"
    NOT_YOURS = "not-yours"
    SECRET_OVER_BOOTSTRAP = "secret-over-bootstrap"
    SECRET_OVER_TFTP = "secret-over-tftp"
    ENROLMENT_DENIED = "enrolment-denied"
    DEVICE_BLOCKED = "device-blocked"
    QUARANTINED = "quarantined"
    NOT_AN_UPLOAD = "not-an-upload"
    WRONG_FOLDER = "wrong-folder"
    UPLOAD_KIND_NOT_ALLOWED = "upload-kind-not-allowed"
    READ_ONLY = "read-only"
    ANONYMOUS = "anonymous"
    KEY_OUTSIDE_MTLS = "key-outside-mtls"
    NO_RULE = "no-rule"
    NOT_ENROLLED = "not-enrolled"
    OWN_IDENTITY_ONLY = "own-identity-only"
    UNSAFE_PATH = "unsafe-path"
    HIDDEN_FILE = "hidden-file"
    # who is asking could not be established (before the table)
    UNKNOWN_USER = "unknown-user"
    BAD_PASSWORD = "bad-password"
    DEFAULT_ACCOUNT_DISABLED = "default-account-disabled"
    DIGEST_BAD_RESPONSE = "digest-bad-response"
    DIGEST_BAD_NONCE = "digest-bad-nonce"
    DIGEST_REPLAY = "digest-replay"
    DIGEST_MALFORMED = "digest-malformed"
    DIGEST_URI_MISMATCH = "digest-uri-mismatch"
    DIGEST_NO_QOP = "digest-no-qop"
    TOO_MANY_FAILURES = "too-many-failures"
    LOCKED_OUT = "locked-out"
    NO_CLIENT_CERTIFICATE = "no-client-certificate"
    CERTIFICATE_REVOKED = "certificate-revoked"
    CERTIFICATE_EXPIRED = "certificate-expired"
    CERTIFICATE_CN_NOT_MAC = "certificate-cn-not-mac"
    TLS_HANDSHAKE = "tls-handshake"
    BAD_TOKEN = "bad-token"
    # the admin API (policy rows)
    NOT_IN_ROLE = "not-in-role"
    NOT_A_PHONE = "not-a-phone"
    # the request itself is refused by a protocol limit (before the table)
    MALFORMED_REQUEST = "malformed-request"
    BUSY = "busy"
    SLOW_CLIENT = "slow-client"
    TOO_MANY_CONNECTIONS = "too-many-connections"
    SERVER_FULL = "server-full"
    PROXY_HEADER = "proxy-header"
    OVER_SIZE_LIMIT = "over-size-limit"
    QUOTA_EXCEEDED = "quota-exceeded"
    # the server could not serve it (a disk or socket fault; the detail says which)
    SERVER_ERROR = "server-error"
    NO_SOCKET = "no-socket"
    UPLOAD_FAILED = "upload-failed"

    @property
    def meaning(self) -> str:
        """What the reason means, in the words of the docs' reasons table."""
        return _MEANINGS[self]


_MEANINGS: dict[Reason, str] = {
    Reason.OK: "allowed",
    Reason.NOT_YOURS: "a device asked for another device's file",
    Reason.SECRET_OVER_BOOTSTRAP: (
        "a file that may carry secrets, asked for by the public bootstrap account"
    ),
    Reason.SECRET_OVER_TFTP: "a file that may carry secrets, asked for over TFTP",
    Reason.ENROLMENT_DENIED: 'an unknown device, refused by `[policy] enrolment = "deny"`',
    Reason.DEVICE_BLOCKED: "a device revoked or blocked by an administrator",
    Reason.QUARANTINED: (
        'an unknown device held by `[policy] enrolment = "quarantine"` until an '
        "administrator approves it"
    ),
    Reason.NOT_AN_UPLOAD: "a write or delete of a name phones do not upload",
    Reason.WRONG_FOLDER: "an upload name in a folder other than its kind's (the root is accepted)",
    Reason.UPLOAD_KIND_NOT_ALLOWED: (
        "an upload kind this account may not write (`[policy] bootstrap_writes`) or delete"
    ),
    Reason.READ_ONLY: "a write over TFTP, read-only but for logs with `[tftp] allow_log_uploads`",
    Reason.ANONYMOUS: "no identity at all (no account, no certificate)",
    Reason.KEY_OUTSIDE_MTLS: "a phone's private key, asked for outside its own mutual-TLS session",
    Reason.NO_RULE: "an action that does not apply to this kind of resource",
    Reason.NOT_ENROLLED: (
        "the public account wrote or read a file of a phone that is not in the inventory "
        "(never seen, denied or blocked)"
    ),
    Reason.OWN_IDENTITY_ONLY: (
        "the public account wrote or read a file the phone reads back (contacts, calls, "
        "overrides) of a phone that has proved who it is: only that phone may"
    ),
    Reason.UNSAFE_PATH: (
        "path check before the table: traversal, encoded tricks, a symlink out of the root"
    ),
    Reason.HIDDEN_FILE: "path check before the table: a dot file (temporary uploads and the like)",
    Reason.UNKNOWN_USER: "identity check: no account has this user name (HTTP digest, FTP)",
    Reason.BAD_PASSWORD: "identity check: wrong FTP or administrator password",
    Reason.DEFAULT_ACCOUNT_DISABLED: (
        "identity check: the public FTP account, turned off by `[ftp] default_account`"
    ),
    Reason.DIGEST_BAD_RESPONSE: (
        "identity check: digest response wrong (wrong password, or computed for another method)"
    ),
    Reason.DIGEST_BAD_NONCE: "identity check: a digest nonce this site did not issue",
    Reason.DIGEST_REPLAY: (
        "identity check: a digest nonce count used again, or a nonce answered twice without "
        "qop (a replay; the client gets a fresh nonce)"
    ),
    Reason.DIGEST_MALFORMED: "identity check: an Authorization header that does not parse",
    Reason.DIGEST_URI_MISMATCH: (
        "identity check: a digest response computed for another URL than the one asked for"
    ),
    Reason.DIGEST_NO_QOP: (
        "identity check: a digest response without qop (`[http] allow_digest_without_qop` is off)"
    ),
    Reason.TOO_MANY_FAILURES: (
        "identity check: `[lockout] failures` wrong passwords from one address for one "
        "account; that pair is refused for a while"
    ),
    Reason.LOCKED_OUT: (
        "identity check: an address locked out for this account after too many wrong "
        "passwords (HTTP 429, FTP 421)"
    ),
    Reason.NO_CLIENT_CERTIFICATE: "identity check: HTTPS without a client certificate",
    Reason.CERTIFICATE_REVOKED: "identity check: a device certificate this site revoked",
    Reason.CERTIFICATE_EXPIRED: (
        "identity check: an expired device certificate "
        "(`[https] tolerate_expired_device_certs` is off)"
    ),
    Reason.CERTIFICATE_CN_NOT_MAC: "identity check: a client certificate whose CN is not a MAC",
    Reason.TLS_HANDSHAKE: "identity check: the TLS handshake failed (the detail says why)",
    Reason.BAD_TOKEN: "identity check: an admin API token that is unknown, expired or revoked",
    Reason.NOT_IN_ROLE: (
        "admin API: the administrator's role (viewer, operator, admin) does not allow this"
    ),
    Reason.NOT_A_PHONE: "an administrator's identity asked for a phone's file or update offer",
    Reason.MALFORMED_REQUEST: "protocol limit: a TFTP packet that does not parse",
    Reason.BUSY: "protocol limit: `[tftp] max_transfers` transfers already running",
    Reason.SLOW_CLIENT: (
        "protocol limit: no TLS handshake and request headers within `[limits] header_timeout`"
    ),
    Reason.TOO_MANY_CONNECTIONS: (
        "protocol limit: `[limits] max_connections_per_address` connections already open "
        "from this address"
    ),
    Reason.SERVER_FULL: "protocol limit: `[limits] max_connections` connections already open",
    Reason.PROXY_HEADER: (
        "protocol limit: a PROXY protocol header from an address not in `[cluster] "
        "proxy_from`, or a malformed one from a balancer that is"
    ),
    Reason.OVER_SIZE_LIMIT: "protocol limit: an upload over its kind's `[uploads]` size limit",
    Reason.QUOTA_EXCEEDED: (
        "protocol limit: uploads past `[uploads] mac_quota` or `ip_quota` in a window, or a "
        "file whose kept versions reached `versions_max`"
    ),
    Reason.SERVER_ERROR: "server fault: the file could not be read (the detail names the error)",
    Reason.NO_SOCKET: "server fault: no socket could be opened for a TFTP transfer",
    Reason.UPLOAD_FAILED: "server fault: an upload could not be stored (disk full, permissions)",
}

# Reasons given outside the table: the path is unsafe, who is asking could not be
# established, a protocol limit refused the request, or the server failed.
PRE_TABLE_REASONS = frozenset(
    {
        Reason.UNSAFE_PATH,
        Reason.HIDDEN_FILE,
        Reason.UNKNOWN_USER,
        Reason.BAD_PASSWORD,
        Reason.DEFAULT_ACCOUNT_DISABLED,
        Reason.DIGEST_BAD_RESPONSE,
        Reason.DIGEST_BAD_NONCE,
        Reason.DIGEST_REPLAY,
        Reason.DIGEST_MALFORMED,
        Reason.DIGEST_URI_MISMATCH,
        Reason.DIGEST_NO_QOP,
        Reason.TOO_MANY_FAILURES,
        Reason.LOCKED_OUT,
        Reason.NO_CLIENT_CERTIFICATE,
        Reason.CERTIFICATE_REVOKED,
        Reason.CERTIFICATE_EXPIRED,
        Reason.CERTIFICATE_CN_NOT_MAC,
        Reason.TLS_HANDSHAKE,
        Reason.BAD_TOKEN,
        Reason.MALFORMED_REQUEST,
        Reason.BUSY,
        Reason.SLOW_CLIENT,
        Reason.TOO_MANY_CONNECTIONS,
        Reason.SERVER_FULL,
        Reason.PROXY_HEADER,
        Reason.OVER_SIZE_LIMIT,
        Reason.QUOTA_EXCEEDED,
        Reason.SERVER_ERROR,
        Reason.NO_SOCKET,
        Reason.UPLOAD_FAILED,
    }
)
