"""Access and security logs.

One access line per request and one security line per refusal, as
``key=value`` pairs after a fixed prefix so fail2ban can match them::

    2026-11-22T10:00:00Z phoneprov-security refused ip=192.0.2.7 proto=https \
identity=device-cert:0004f2000001 reason=not-yours path="0004f2000002.cfg"

Secrets never reach these lines: identities are kinds, user names and MACs.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

ACCESS_LOGGER = "phoneprov.access"
SECURITY_LOGGER = "phoneprov.security"


def _quote(value: str) -> str:
    cleaned = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch != '"' else "?" for ch in value)
    return f'"{cleaned[:300]}"'


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Audit:
    """Writes the two logs through stdlib logging (handlers set by ``configure``)."""

    def __init__(self) -> None:
        self.access_log = logging.getLogger(ACCESS_LOGGER)
        self.security_log = logging.getLogger(SECURITY_LOGGER)

    def access(
        self,
        *,
        protocol: str,
        ip: str,
        identity: str,
        method: str,
        path: str,
        status: int | str,
        size: int,
        duration: float,
    ) -> None:
        self.access_log.info(
            "%s phoneprov-access proto=%s ip=%s identity=%s method=%s path=%s status=%s "
            "bytes=%d ms=%.1f",
            _stamp(),
            protocol,
            ip,
            identity,
            method,
            _quote(path),
            status,
            size,
            duration * 1000.0,
        )

    def refused(
        self,
        *,
        protocol: str,
        ip: str,
        identity: str,
        reason: str,
        path: str = "",
        detail: str = "",
    ) -> None:
        self.security_log.warning(
            "%s phoneprov-security refused ip=%s proto=%s identity=%s reason=%s path=%s%s",
            _stamp(),
            ip,
            protocol,
            identity,
            reason,
            _quote(path),
            f" detail={_quote(detail)}" if detail else "",
        )

    def template_error(
        self,
        *,
        ip: str,
        protocol: str,
        identity: str,
        path: str,
        template: str,
        line: int | None,
        detail: str,
    ) -> None:
        """A template failed for a phone: an error line, not a refusal (fail2ban must not ban)."""
        self.security_log.error(
            "%s phoneprov-security template-error ip=%s proto=%s identity=%s path=%s "
            "template=%s line=%s detail=%s",
            _stamp(),
            ip,
            protocol,
            identity,
            path,
            template,
            line or "-",
            detail.replace("\n", " "),
        )


def configure(log_dir: Path | None, *, console: bool = True) -> list[logging.Handler]:
    """Send access and security lines to files in ``log_dir`` (and the console).

    Returns the handlers added, so a caller (tests) can remove them.
    """
    handlers: list[logging.Handler] = []
    plain = logging.Formatter("%(message)s")
    for name, filename in ((ACCESS_LOGGER, "access.log"), (SECURITY_LOGGER, "security.log")):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            # A plain append-mode file: WatchedFileHandler stats the file for every line,
            # a measurable cost per request. Rotate with logrotate's copytruncate.
            handler: logging.Handler = logging.FileHandler(log_dir / filename)
            handler.setFormatter(plain)
            logger.addHandler(handler)
            handlers.append(handler)
        if console:
            stream = logging.StreamHandler()
            stream.setFormatter(plain)
            logger.addHandler(stream)
            handlers.append(stream)
    return handlers
