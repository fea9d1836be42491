"""The one exception root.

``str(error)`` is the whole message for the administrator; ``error.hint`` is the
next step. The CLI prints both and exits with ``error.exit_code``; servers map
wire errors to the status they carry.
"""

from __future__ import annotations


class PhoneprovError(Exception):
    """Root of every error phoneprov raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class InputError(PhoneprovError):
    """Bad input from the administrator (a flag, a file, a value)."""

    exit_code = 2


class ConfigError(PhoneprovError):
    """phoneprov.toml or the site directory is missing or wrong."""

    exit_code = 2


class SiteExistsError(PhoneprovError):
    """``init`` found files it would overwrite."""


class CertificateError(PhoneprovError):
    """A certificate, key, CSR or chain cannot be used as asked."""


class StoreError(PhoneprovError):
    """The database cannot be opened or written."""


class ListenError(PhoneprovError):
    """A listener cannot bind its port."""


class UploadError(PhoneprovError):
    """A phone upload was refused (size, name, folder)."""

    def __init__(self, message: str, hint: str = "", http_status: int = 400) -> None:
        super().__init__(message, hint)
        self.http_status = http_status


class QuotaError(UploadError):
    """An upload refused by a per-phone, per-address or kept-versions quota (HTTP 429)."""

    def __init__(self, message: str, hint: str, retry_after: int) -> None:
        super().__init__(message, hint, http_status=429)
        self.retry_after = retry_after


class DiskFullError(UploadError):
    """An upload not stored for want of disk space: HTTP 507 (RFC 4918 §11.5), FTP 452.

    The partial file is already removed when this is raised. The message goes to
    the client; ``detail`` (free space, the server's folder) to the security log only.
    """

    def __init__(self, message: str, hint: str, detail: str = "") -> None:
        super().__init__(message, hint, http_status=507)
        self.detail = detail


class UnsafePathError(PhoneprovError):
    """A path from the network tries to leave the boot directory or is malformed."""


class InstallError(PhoneprovError):
    """``phoneprov service install`` or ``uninstall`` cannot go on (a file in the way, a
    failed ``pip``, no permission); nothing after the failed step was changed."""
