"""Certificates handed in by an administrator: one call per ``phoneprov cert`` action.

Inspect a device certificate and give its verdict (factory, self-signed, custom
or invalid) against the shipped Polycom chain and the site's own roots; lint a
chain against what each phone family can parse; build the config that installs
a custom device certificate in a phone's slot; and say whether a phone's label
means it was made with a factory certificate. Certificates may be PEM, DER or
PKCS#7; results are frozen values the CLI and the admin API render.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.pki.authority import LEGACY_DIR, CertificateAuthority
from phoneprov.pki.chain import order_chain
from phoneprov.pki.devicecfg import device_cert_config
from phoneprov.pki.factory_certs import FactoryAnswer, factory_revision
from phoneprov.pki.files import write_atomic
from phoneprov.pki.formats import read_certificates
from phoneprov.pki.inspect import Origin, VerdictName, classify_device_cert, malformed
from phoneprov.pki.lint import FAMILIES, Problem, lint_chain
from phoneprov.provisioning.certificates import CertificateFacts


@dataclass(frozen=True)
class Inspection:
    """The verdict on a device certificate, why, and what it says about itself.

    ``facts`` is None when the input is not a certificate at all (verdict
    ``invalid``, reason ``malformed: ...``).
    """

    verdict: VerdictName
    reason: str
    origin: Origin  # what the certificate is regardless of time
    mac: MacAddress | None
    facts: CertificateFacts | None

    @property
    def invalid(self) -> bool:
        return self.verdict == "invalid"


@dataclass(frozen=True)
class LintReport:
    """What each checked phone family cannot use in a chain, with the fix; empty when clean."""

    families: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def clean(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class DeviceCertSnippet:
    """The config parameters that install one certificate (and key) in a phone's slot."""

    slot: str
    ucs: str
    parameters: tuple[tuple[str, str], ...]  # in the order they are written
    xml: bytes  # a config file holding them
    written: Path | None


def _site_roots(settings: Settings | None) -> list[x509.Certificate]:
    """The site's roots (modern and legacy) that exist; none without a site."""
    if settings is None:
        return []
    pki = settings.pki_dir
    return [
        CertificateAuthority.load(d).cert
        for d in (pki, pki / LEGACY_DIR)
        if CertificateAuthority.exists(d)
    ]


def inspect_device_cert(data: bytes, source: str, settings: Settings | None) -> Inspection:
    """Classify the first certificate of a PEM, DER or PKCS#7 input, leaf first.

    Other certificates in the input count as intermediates. ``settings`` gives
    the site whose roots make a certificate ``custom``; None for no site.
    Never raises for a bad certificate (the reason is in the verdict); raises
    CertificateError when a site CA cannot be read.
    """
    roots = _site_roots(settings)
    try:
        certs = order_chain(read_certificates(data, source))
    except InputError as error:
        verdict = malformed(str(error))
        return Inspection(verdict.verdict, verdict.reason, verdict.origin, None, None)
    leaf = certs[0]
    verdict = classify_device_cert(leaf, certs[1:], our_roots=roots, now=datetime.now(UTC))
    return Inspection(
        verdict.verdict, verdict.reason, verdict.origin, verdict.mac, CertificateFacts.of(leaf)
    )


def lint_certificates(files: Sequence[Path], family: str | None = None) -> LintReport:
    """Check the chain in ``files`` (any order) against what ``family`` can parse.

    ``family`` None checks every family. Raises InputError for a missing or
    unreadable file or an unknown family.
    """
    if family is not None and family not in FAMILIES:
        raise InputError(
            f"phone family {family!r} is not known", f"Use one of: {', '.join(FAMILIES)}."
        )
    certs: list[x509.Certificate] = []
    for path in files:
        if not path.is_file():
            raise InputError(f"{path} does not exist")
        certs += read_certificates(path.read_bytes(), str(path))
    families = FAMILIES if family is None else (family,)
    problems = lint_chain(order_chain(certs), families, now=datetime.now(UTC))
    return LintReport(families, tuple(problems))


def device_cert_snippet(
    cert: Path,
    key: Path | None,
    slot: str,
    *,
    ucs: str = "5",
    profile: int | None = None,
    out: Path | None = None,
) -> DeviceCertSnippet:
    """Build the config that installs the certificate in ``cert`` (and the key in ``key``)
    in ``slot`` for UCS ``ucs``.

    ``key`` None leaves the key out (a certificate for a phone-made CSR);
    ``profile`` 1 or 2 also selects the platform certificate for that TLS
    profile. The config is also written to ``out`` (0644) when given. Raises
    InputError for a missing file, a missing PKCS#7 wrapper, sizes over the
    platform limits, a key that does not match, or a slot the UCS version lacks.
    """
    for path in (cert, key):
        if path is not None and not path.is_file():
            raise InputError(f"{path} does not exist")
    config = device_cert_config(
        cert.read_bytes(),
        key.read_bytes() if key is not None else None,
        slot,
        ucs=ucs,
        profile=profile,
    )
    xml = config.xml()
    if out is not None:
        write_atomic(out, xml)
    return DeviceCertSnippet(config.slot, config.ucs, config.parameters, xml, out)


def factory_cert_answer(part: str, revision: str) -> FactoryAnswer:
    """Say whether a phone with label ``part`` and ``revision`` was made with a factory
    certificate. Raises InputError for an unknown part (naming the closest known
    ones) or a revision of the wrong kind."""
    return factory_revision(part, revision)
