"""Judging the certificate chain a TLS server sent, as a phone would judge it.

Pure: the certificates, the anchors the phones trust and the time come in;
findings come out. A phone verifies the chain the server *sends* against the
CAs it holds (the site root that ``initial.cfg`` installs, or its built-in
list); it fetches nothing (no AIA), so a missing intermediate is fatal. It
compares the provisioning host with the certificate's names, and it must be
able to parse every key and signature on the way to the root (SPEC §7:
CX700s read only SHA-1/RSA-2048; SoundPoint IP reads only RSA).
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509

from phoneprov.pki.chain import common_name, is_self_issued, signed_by
from phoneprov.pki.lint import RULES, lint_chain
from phoneprov.provisioning.doctor.finding import Finding, Severity, passed

EXPIRY_WARNING = timedelta(days=30)


def label(cert: x509.Certificate) -> str:
    """The certificate's CN, or its whole subject when it has no CN."""
    return common_name(cert) or cert.subject.rfc4514_string() or "(empty subject)"


def chain_text(chain: Sequence[x509.Certificate]) -> str:
    return " -> ".join(label(c) for c in chain)


def chain_findings(
    kind: str,
    sent: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    *,
    anchor_what: str,
    fix: str,
) -> tuple[list[Finding], list[x509.Certificate]]:
    """Check that ``sent`` (leaf first) links and ends at one of ``anchors``.

    ``kind`` names the server certificate (``RSA``/``ECDSA``); ``anchor_what``
    says in words which CAs the phones trust; ``fix`` is the fix for a broken
    chain. Returns the findings and the full chain (``sent`` plus the anchor
    it ends at, when that was not sent), which the other checks use.
    """
    check = "tls-chain"
    if not sent:
        return [Finding(check, "fail", f"{kind}: the server sent no certificate", fix)], []
    findings: list[Finding] = []
    for child, parent in itertools.pairwise(sent):
        if not signed_by(child, parent):
            findings.append(
                Finding(
                    check,
                    "fail",
                    f"{kind}: the server sends {label(parent)} after {label(child)}, but it "
                    f"did not issue it (sent: {chain_text(sent)}): the chain is out of order "
                    "or mixes chains",
                    fix,
                )
            )
    top = sent[-1]
    if is_self_issued(top):
        if top in anchors:
            message = f"{kind}: complete, {chain_text(sent)} (the root is sent too, harmless)"
            findings.append(passed(check, message))
            return findings, list(sent)
        findings.append(
            Finding(
                check,
                "fail",
                f"{kind}: the chain ends at the root {label(top)}, which is not {anchor_what}: "
                "phones reject it",
                fix,
            )
        )
        return findings, list(sent)
    anchor = next((a for a in anchors if signed_by(top, a)), None)
    if anchor is None:
        findings.append(
            Finding(
                check,
                "fail",
                f"{kind}: incomplete, the server sends {chain_text(sent)}; {label(top)} is "
                f"issued by {top.issuer.rfc4514_string()}, which the server does not send and "
                "which is not "
                f"{anchor_what}: phones fetch nothing and refuse the connection",
                fix,
            )
        )
        return findings, list(sent)
    if not findings:
        findings.append(
            passed(
                check, f"{kind}: complete, {chain_text(sent)} -> {label(anchor)} ({anchor_what})"
            )
        )
    return findings, [*sent, anchor]


def _san_names(leaf: x509.Certificate) -> tuple[list[str], list[str]] | None:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    dns = [str(n).lower() for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return dns, ips


def _wildcard_covers(pattern: str, name: str) -> bool:
    """RFC 6125 §6.4.3: ``*`` stands for exactly one left-most label."""
    if not pattern.startswith("*."):
        return False
    head, _, rest = name.partition(".")
    return bool(head) and rest == pattern[2:]


def name_findings(kind: str, leaf: x509.Certificate, names: Sequence[str], fix: str) -> Finding:
    """One finding: does the leaf name every host in ``names`` (DNS names or IP literals)?"""
    check = "tls-names"
    san = _san_names(leaf)
    cn = (common_name(leaf) or "").lower()
    missing: list[str] = []
    wildcard: list[str] = []
    cn_only: list[str] = []
    for name in names:
        wanted = name.lower().rstrip(".")
        try:
            ip: str | None = str(ipaddress.ip_address(wanted))
        except ValueError:
            ip = None
        if san is None:
            if wanted == cn:
                cn_only.append(name)
            else:
                missing.append(name)
            continue
        dns, ips = san
        if (ip is not None and ip in ips) or (ip is None and wanted in dns):
            continue
        if ip is None and any(_wildcard_covers(p, wanted) for p in dns):
            wildcard.append(name)
        else:
            missing.append(name)
    shown = ", ".join(san[0] + san[1]) if san else f"no SAN, CN {cn or '(none)'}"
    if missing:
        return Finding(
            check,
            "fail",
            f"{kind}: the certificate does not name {', '.join(missing)} "
            f"(it names: {shown}): phones refuse a server whose name is not in it",
            fix,
        )
    if wildcard:
        return Finding(
            check,
            "warn",
            f"{kind}: {', '.join(wildcard)} is covered only by a wildcard ({shown}); "
            "phones with strictCertCommonNameValidation reject wildcards",
            fix,
        )
    if cn_only:
        return Finding(
            check,
            "warn",
            f"{kind}: {', '.join(cn_only)} is only in the CN, the certificate has no "
            "subjectAltName; clients that follow RFC 6125 ignore the CN",
            fix,
        )
    return passed(check, f"{kind}: names {', '.join(names)} ({shown})")


def validity_findings(
    kind: str, chain: Sequence[x509.Certificate], now: datetime, fix: str
) -> list[Finding]:
    """Fail for an expired or not-yet-valid certificate, warn under 30 days left; else pass."""
    check = "tls-validity"
    findings: list[Finding] = []
    for cert in chain:
        end, start = cert.not_valid_after_utc, cert.not_valid_before_utc
        if now > end:
            findings.append(
                Finding(
                    check, "fail", f"{kind}: {label(cert)} expired on {end.date().isoformat()}", fix
                )
            )
        elif now < start:
            findings.append(
                Finding(
                    check,
                    "fail",
                    f"{kind}: {label(cert)} is not valid before {start.isoformat()}; phones (and "
                    "this machine) see it as not yet valid",
                    "Check the clock of the machine that issued it; reissue it if the clock was "
                    "wrong.",
                )
            )
        elif end - now < EXPIRY_WARNING:
            days = (end - now).days
            findings.append(
                Finding(
                    check,
                    "warn",
                    f"{kind}: {label(cert)} expires in {days} day(s), on {end.date().isoformat()}",
                    fix,
                )
            )
    if findings or not chain:
        return findings
    first = min(chain, key=lambda c: c.not_valid_after_utc)
    end = first.not_valid_after_utc
    return [
        passed(
            check,
            f"{kind}: every certificate is valid; the first to expire is "
            f"{label(first)} on {end.date().isoformat()} ({(end - now).days} days)",
        )
    ]


def family_titles(families: Sequence[str]) -> str:
    return ", ".join(RULES[f].title for f in families)


def compat_findings(
    kind: str,
    chain: Sequence[x509.Certificate],
    families: Sequence[str],
    now: datetime,
    *,
    severity: Severity,
) -> list[Finding]:
    """Lint ``chain`` (leaf first, root included) for each phone family in ``families``.

    Only what a family cannot parse is reported here (expiry and names have
    their own checks). ``severity`` is ``fail`` when the families are the
    site's own phones, ``warn`` when they are only the families that might use
    the server. Returns one finding per family with problems, or one pass.
    """
    check = "tls-compat"
    if not families or not chain:
        return []
    common = set(lint_chain(chain, [], now=now))
    findings: list[Finding] = []
    for family in families:
        problems = [p for p in lint_chain(chain, [family], now=now) if p not in common]
        if problems:
            findings.append(
                Finding(
                    check,
                    severity,
                    f"{kind}: " + "; ".join(p.problem for p in problems),
                    problems[0].fix,
                )
            )
    if not findings:
        findings.append(
            passed(
                check,
                f"{kind}: every key and signature in the chain is "
                f"readable by {family_titles(families)}",
            )
        )
    return findings


def client_auth_findings(
    requested: bool,
    ca_names: Sequence[tuple[str, bytes]],
    polycom: Sequence[x509.Certificate],
    *,
    required: bool,
) -> Finding:
    """Judge the server's CertificateRequest (TLS 1.2 §7.4.4): asked or not, which CA names.

    ``ca_names`` are (text, DER) of the acceptable CA names the server sent;
    ``polycom`` the Polycom CA certificates; ``required`` is true for a
    phoneprov site (mutual TLS is its phase 2) and false for a foreign server.
    """
    check = "tls-client-cert"
    if not requested:
        return Finding(
            check,
            "fail" if required else "warn",
            "the server does not ask for a client certificate (no CertificateRequest): "
            "phones' device certificates are never checked, so anyone who can reach it "
            "reads every file",
            "Require client certificates that chain to the Polycom CAs (and your own CA): "
            "nginx `ssl_verify_client on` with `ssl_client_certificate` holding the chain; IIS "
            "SSL Settings > Client certificates: Require; phoneprov does it by default.",
        )
    if not ca_names:
        return passed(
            check,
            "the server asks for a client certificate and names no CAs "
            "(phones send their device certificate anyway)",
        )
    names = "; ".join(text for text, _ in ca_names)
    polycom_ders = {c.subject.public_bytes(): label(c) for c in polycom}
    found = [polycom_ders[der] for _, der in ca_names if der in polycom_ders]
    if found:
        return passed(
            check,
            f"the server asks for a client certificate; acceptable CA names: "
            f"{names} (Polycom CAs among them: {', '.join(found)})",
        )
    return Finding(
        check,
        "warn",
        f"the server asks for a client certificate but none of its acceptable CA names is a "
        f"Polycom CA ({names}): phones with factory certificates will be refused (IIS 403.16)",
        "Add the Polycom Root CA, Equipment Policy CA and Equipment Issuing CA 1 and 2 to the "
        "server's client-certificate trust (nginx ssl_client_certificate; IIS: the Trusted "
        "Root and Intermediate stores).",
    )
