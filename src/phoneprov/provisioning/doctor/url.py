"""``phoneprov doctor --url``: TLS and boot-file checks for any HTTPS server.

phoneprov's own listener or the IIS / nginx an administrator is migrating
from; with a site at hand, the site's CA, client certificate and phone
families are used too.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.pki.lint import FAMILIES
from phoneprov.protocols.polycom import MASTER_FILE
from phoneprov.provisioning.doctor import site
from phoneprov.provisioning.doctor.checks import (
    URL_CHAIN_FIX,
    TlsTarget,
    demo_client,
    site_root,
    throwaway_client,
    tls_findings,
)
from phoneprov.provisioning.doctor.finding import Finding
from phoneprov.provisioning.doctor.fleet import lint_families
from phoneprov.provisioning.doctor.probe import HttpAnswer, header
from phoneprov.store import open_store


def system_anchors() -> tuple[x509.Certificate, ...]:
    """The public CAs this machine trusts (phones carry a similar built-in list)."""
    context = ssl.create_default_context()
    with warnings.catch_warnings():
        # Some distribution bundles hold old roots with negative serials; they still count.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return tuple(
            x509.load_der_x509_certificate(der) for der in context.get_ca_certs(binary_form=True)
        )


def check_url(
    url: str, *, settings: Settings | None, now: datetime, timeout: float = 5.0
) -> list[Finding]:
    """TLS and boot-file checks for any HTTPS server; ``settings`` adds the site's CA,
    client certificate and phone families when a site is at hand."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise InputError(
            f"--url {url!r} is not an https:// URL",
            "Give the server's HTTPS URL, e.g. --url https://prov.example.com:443/.",
        )
    try:
        port = parts.port or 443
    except ValueError:
        raise InputError(
            f"--url {url!r} has a bad port", "Write it as https://host:port/."
        ) from None
    root: x509.Certificate | None = None
    families: Sequence[str] = FAMILIES
    client = None
    if settings is not None:
        root, _ = site_root(settings)
        store = open_store(settings)
        try:
            families = lint_families(store.inventory.entries()) or FAMILIES
        finally:
            store.close()
        client = demo_client(settings, root) or throwaway_client(settings, now)
    anchors = (*((root,) if root else ()), *system_anchors())
    host = parts.hostname
    target = TlsTarget(
        host,
        port,
        host,
        (host,),
        anchors,
        "a CA the phones trust (this site's root or a public root CA)",
        tuple(families),
        False,
        URL_CHAIN_FIX,
        f"Issue the server certificate with {host} in its subjectAltName.",
    )
    path = parts.path.rstrip("/") + "/" + MASTER_FILE
    findings, answer = tls_findings(
        target,
        now=now,
        check="listener-https",
        required=False,
        client=client,
        path=path,
        timeout=timeout,
    )
    findings += _url_master(url, path, answer)
    findings += site.clock_findings(now, header(answer, "date"), host)
    return findings


def _url_master(url: str, path: str, answer: HttpAnswer | None) -> list[Finding]:
    if answer is None:
        return [
            Finding(
                "config-master",
                "fail",
                f"no answer to GET {path} from {url}",
                "Check the TLS findings above.",
            )
        ]
    if answer.status == 200:
        return site.master_findings(answer.body, f"GET {path}")
    if answer.status in (401, 403):
        return [
            Finding(
                "config-master",
                "warn",
                f"GET {path} answered {answer.status} {answer.reason} to the doctor's "
                "client certificate",
                "The server wants a client certificate it trusts and maps: run the "
                "doctor with --site of a site whose CA (or demo phone) it accepts.",
            )
        ]
    return [
        Finding(
            "config-master",
            "fail",
            f"GET {path} answered {answer.status} "
            f"{answer.reason}: phones cannot read the master file there",
            f"Put {MASTER_FILE} in the folder the URL points at.",
        )
    ]
