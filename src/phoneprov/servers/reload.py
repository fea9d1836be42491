"""SIGHUP: re-read the site's settings and certificates without closing a connection.

A reload reads ``phoneprov.toml`` again and builds a new TLS context from the
site as it is now: the server certificates and keys in ``pki/``, the trust
anchors in ``trust/``, and ``[https] legacy_tls`` and
``tolerate_expired_device_certs``. Handshakes after the reload use the new
context; connections already open keep the one they were made with, so none is
dropped. The CRL needs no reload (the HTTPS listener re-reads ``pki/crl.pem``
when it changes).

Every other setting was read once, when the server started: the ports and
addresses it bound and the services built from the settings. A reload that
finds one of those changed names it in the journal as needing a restart. When
the file does not load, or the new certificates do not (a key that does not
match its certificate, a file half copied), the reload changes nothing and
says why: the server goes on as it was.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
from pathlib import Path

from phoneprov.config import Settings, load_settings
from phoneprov.errors import PhoneprovError
from phoneprov.servers.tls import server_context

log = logging.getLogger("phoneprov.server")

# Settings a reload applies: they only shape the TLS context.
LIVE = frozenset({("https", "legacy_tls"), ("https", "tolerate_expired_device_certs")})


class TlsContexts:
    """The HTTPS listener's current SSLContext; each accepted connection takes
    ``current`` when it starts its handshake, and a reload replaces it."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.current = context


def restart_needed(started: Settings, now: Settings) -> tuple[str, ...]:
    """The settings that differ between ``started`` and ``now`` and that only a restart
    applies, as ``[section] key`` (top-level keys are in ``[site]``)."""
    changed: list[str] = []
    for section in dataclasses.fields(Settings):
        before, after = getattr(started, section.name), getattr(now, section.name)
        if before == after:
            continue
        if not dataclasses.is_dataclass(before):
            changed.append(f"[site] {section.name}")
            continue
        changed.extend(
            f"[{section.name}] {key.name}"
            for key in dataclasses.fields(before)
            if getattr(before, key.name) != getattr(after, key.name)
            and (section.name, key.name) not in LIVE
        )
    return tuple(changed)


class Reloader:
    """Re-reads one site on SIGHUP (``reload`` runs off the event loop: it reads files)."""

    def __init__(self, site_dir: Path, tls: TlsContexts | None) -> None:
        self.site_dir = site_dir
        self.tls = tls
        # The file as it was at start: what a restart-needed setting is compared with
        # (the running Settings carry the command line's port overrides).
        self.started = load_settings(site_dir)

    def reload(self) -> bool:
        """Apply what can be applied; log what was done and what needs a restart.

        Returns False, keeping everything as it was, when the settings or the new
        TLS context cannot be loaded.
        """
        try:
            settings = load_settings(self.site_dir)
            context = server_context(settings) if self.tls is not None else None
        except (PhoneprovError, ssl.SSLError, OSError) as error:
            hint = getattr(error, "hint", "")
            log.error("reload failed, nothing changed: %s%s", error, f" ({hint})" if hint else "")
            return False
        if self.tls is not None and context is not None:
            self.tls.current = context
            log.info("reloaded: server certificates, trust anchors and [https] TLS settings")
        else:
            log.info("reloaded: settings read (HTTPS is off: no certificates to load)")
        pending = restart_needed(self.started, settings)
        if pending:
            log.warning(
                "changed settings that take effect only after a restart "
                "(systemctl restart phoneprov): %s",
                ", ".join(pending),
            )
        return True
