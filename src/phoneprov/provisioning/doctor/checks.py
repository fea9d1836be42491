"""``phoneprov doctor``: check a deployment end to end, the way phones will meet it.

:func:`check_site` walks a phoneprov site: the HTTPS listener's chain, names,
validity and compatibility with the inventory's phone families, whether it
asks for client certificates, the trust store, every listener, the two boot
files fetched as a bootROM fetches them, firmware, DHCP values, the clock,
disk space and key permissions. :func:`doctor.url.check_url` checks any HTTPS server
(an IIS or nginx being replaced) with the same TLS checks and a GET of the
master file. Both return findings; the CLI prints them and sets the exit code.
"""

from __future__ import annotations

import ftplib
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from phoneprov.config import Settings
from phoneprov.errors import PhoneprovError
from phoneprov.pki.authority import CA_CERT, CA_KEY, new_serial
from phoneprov.pki.chain import signed_by
from phoneprov.pki.keys import PrivateKey, generate_key, load_private_pem
from phoneprov.pki.lint import RULES
from phoneprov.pki.profiles import BACKDATE, CertSpec, Usage
from phoneprov.pki.signer import build_certificate
from phoneprov.pki.trust import load_trust_anchors, polycom_chain
from phoneprov.protocols.polycom import BOOTSTRAP_FILE, MASTER_FILE
from phoneprov.protocols.tftp import codec as tftp_codec
from phoneprov.provisioning.doctor import chain, site
from phoneprov.provisioning.doctor.finding import Finding, passed
from phoneprov.provisioning.doctor.fleet import check_firmware, check_lync, lint_families
from phoneprov.provisioning.doctor.probe import (
    HttpAnswer,
    TlsProbe,
    fetch_digest,
    ftp_banner,
    header,
    probe_tls,
    tftp_read_request,
)
from phoneprov.provisioning.render import SiteRenderer
from phoneprov.store import Store, open_store

BOOTSTRAP_USER = "PlcmSpIp"  # the phones' factory provisioning account (SPEC §4)
DOCTOR_CN = "phoneprov-doctor"
SITE_CHAIN_FIX = (
    "Reissue the server certificates from the site CA: `phoneprov ca issue-server --fqdn NAME "
    "--key rsa-2048` and `--key ec-p256` (every name phones use), then restart `phoneprov serve`."
)
URL_CHAIN_FIX = (
    "Send the whole chain: the leaf first, then each intermediate CA (nginx: ssl_certificate "
    "holds leaf + intermediates; IIS: import the intermediates into the Intermediate "
    "Certification Authorities store), from a root the phones trust."
)


@dataclass(frozen=True)
class TlsTarget:
    """Where to connect, which names phones use, and what the phones trust."""

    host: str
    port: int
    server_name: str
    names: tuple[str, ...]
    anchors: tuple[x509.Certificate, ...]
    anchor_what: str
    families: tuple[str, ...]
    strict: bool  # the families are the site's phones (fail) or possible users (warn)
    chain_fix: str
    name_fix: str


def connect_host(bind: str) -> str:
    """The address to reach a listener bound to ``bind`` from this machine."""
    if bind in ("", "0.0.0.0"):
        return "127.0.0.1"
    return "::1" if bind == "::" else bind


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def throwaway_client(
    settings: Settings, now: datetime
) -> tuple[x509.Certificate, PrivateKey] | None:
    """A one-hour client certificate from the site CA, made in memory (never written).

    Servers that require mutual TLS finish the handshake only with a certificate
    they trust; the doctor shows one so that it sees the whole handshake.
    Returns None when the CA cannot be read (then the probe sends none).
    """
    try:
        ca_cert = x509.load_pem_x509_certificate((settings.pki_dir / CA_CERT).read_bytes())
        ca_key = load_private_pem((settings.pki_dir / CA_KEY).read_bytes(), CA_KEY)
    except (OSError, ValueError, PhoneprovError):
        return None
    key = generate_key("ec-p256")
    spec = CertSpec(Usage.DEVICE, DOCTOR_CN, new_serial(), now - BACKDATE, now + timedelta(hours=1))
    return build_certificate(spec, key.public_key(), ca_cert, ca_key), key


def demo_client(
    settings: Settings, root: x509.Certificate | None
) -> tuple[x509.Certificate, PrivateKey] | None:
    """The demo phone's certificate and key (<site>/demo), when the site root issued them.

    With it a GET over mutual TLS is answered as for a phone of the site.
    """
    if root is None:
        return None
    for pem in sorted((settings.site_dir / "demo").glob("*.pem")):
        try:
            cert = x509.load_pem_x509_certificate(pem.read_bytes())
            key = load_private_pem(pem.with_suffix(".key").read_bytes(), str(pem))
        except (OSError, ValueError, PhoneprovError):
            continue
        if signed_by(cert, root):
            return cert, key
    return None


def tls_findings(
    target: TlsTarget,
    *,
    now: datetime,
    check: str,
    required: bool,
    client: tuple[x509.Certificate, PrivateKey] | None,
    path: str | None,
    timeout: float,
) -> tuple[list[Finding], HttpAnswer | None]:
    """Probe the listener with RSA and ECDSA suites and judge each chain it sends."""
    probes = [
        probe_tls(
            target.host,
            target.port,
            kind=kind,
            server_name=target.server_name,
            client=client,
            path=path,
            timeout=timeout,
        )
        for kind in ("RSA", "ECDSA")
    ]
    seen = [p for p in probes if p.chain]
    where = f"{_url_host(target.host)}:{target.port}"
    if not seen:
        errors = "; ".join(f"{p.kind}: {p.error}" for p in probes)
        return [
            Finding(
                check,
                "fail",
                f"no TLS handshake with {where}: {errors}",
                "Check that the server runs and listens on that port "
                "(`phoneprov serve`), and the firewall.",
            )
        ], None
    shown = "; ".join(f"{p.kind}: {p.protocol} {p.cipher}" for p in seen)
    findings = [passed(check, f"TLS listener at {where} answers ({shown})")]
    for probe in seen:
        findings += _chain_checks(target, probe, now)
    rsa = probes[0]
    rsa_only = [f for f in target.families if not RULES[f].ec_keys]
    if not rsa.chain and rsa_only:
        findings.append(
            Finding(
                "tls-compat",
                "fail" if target.strict else "warn",
                f"the server has no RSA certificate (RSA: {rsa.error}); "
                f"{chain.family_titles(rsa_only)} phones read RSA keys only",
                "Install an RSA-2048 server certificate next to the ECDSA one "
                "(`phoneprov ca issue-server --key rsa-2048`).",
            )
        )
    first = seen[0]
    findings.append(
        chain.client_auth_findings(
            first.requested, first.ca_names, polycom_chain(), required=required
        )
    )
    for probe in seen:
        if probe.error:
            findings.append(
                Finding(
                    "tls-handshake",
                    "fail" if required else "warn",
                    f"{probe.kind}: the handshake with {where} broke off after the server's "
                    f"certificate: {probe.error}",
                    "The server refused the doctor's client certificate from the site CA: check "
                    "that the site root is in the HTTPS trust (<site>/trust)."
                    if client
                    else "The server requires a client certificate: run the doctor with "
                    "--site of a site whose CA the server trusts.",
                )
            )
    answer = next((p.answer for p in seen if p.answer is not None), None)
    return findings, answer


def _chain_checks(target: TlsTarget, probe: TlsProbe, now: datetime) -> list[Finding]:
    found, full = chain.chain_findings(
        probe.kind,
        probe.chain,
        target.anchors,
        anchor_what=target.anchor_what,
        fix=target.chain_fix,
    )
    found.append(chain.name_findings(probe.kind, probe.chain[0], target.names, target.name_fix))
    found += chain.validity_findings(probe.kind, full, now, target.chain_fix)
    families = [f for f in target.families if probe.kind == "RSA" or RULES[f].ec_keys]
    found += chain.compat_findings(
        probe.kind, full, families, now, severity="fail" if target.strict else "warn"
    )
    return found


# --- a phoneprov site ------------------------------------------------------------------------


def site_root(settings: Settings) -> tuple[x509.Certificate | None, list[Finding]]:
    path = settings.pki_dir / CA_CERT
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()), []
    except (OSError, ValueError) as error:
        return None, [
            Finding(
                "site-ca",
                "fail",
                f"the site root {path} cannot be read: {error}",
                "Create it with `phoneprov ca init` (or `phoneprov init`).",
            )
        ]


def check_site(
    settings: Settings, *, now: datetime, timeout: float = 3.0, password: str = BOOTSTRAP_USER
) -> list[Finding]:
    """Every check for a phoneprov site; ``now`` is aware UTC. Returns the findings in order."""
    root, findings = site_root(settings)
    store = open_store(settings)
    try:
        entries = store.inventory.entries()
        families = tuple(lint_families(entries))
        if settings.https.enabled:
            target = TlsTarget(
                connect_host(settings.https.bind),
                settings.https.port,
                settings.primary_fqdn,
                settings.fqdns,
                (root,) if root else (),
                "the site root CA (initial.cfg installs it on the phones)",
                families,
                True,
                SITE_CHAIN_FIX,
                "Reissue the server certificates with every name phones use: "
                "`phoneprov ca issue-server --fqdn NAME ...` (keep [site] fqdns the same).",
            )
            tls, _ = tls_findings(
                target,
                now=now,
                check="listener-https",
                required=True,
                client=throwaway_client(settings, now),
                path=None,
                timeout=timeout,
            )
            findings += tls
        findings += _trust(settings, root)
        http_answers, http_findings = _fetch_boot_files(settings, password, timeout)
        findings += http_findings
        findings += _boot_file_checks(settings, store, root, http_answers)
        findings += _ftp_tftp(settings, timeout)
        date = header(http_answers.get(MASTER_FILE), "date")
        findings += site.clock_findings(now, date, "the HTTP listener")
        findings += site.dhcp_findings(settings)
        findings += check_firmware(settings, store, entries)
        findings += check_lync(settings, store, now)
        findings += site.check_disk(settings)
        findings += site.check_permissions(settings)
    finally:
        store.close()
    return findings


def _trust(settings: Settings, root: x509.Certificate | None) -> list[Finding]:
    try:
        anchors = load_trust_anchors(settings.trust_dir)
    except PhoneprovError as error:
        return [Finding("trust-polycom", "fail", str(error), error.hint)]
    return site.trust_findings(anchors, root, settings.trust_dir)


def _fetch_boot_files(
    settings: Settings, password: str, timeout: float
) -> tuple[dict[str, HttpAnswer], list[Finding]]:
    """GET the two boot files over HTTP with digest, as the bootROM does."""
    if not settings.http.enabled:
        return {}, [passed("listener-http", "HTTP is disabled in phoneprov.toml ([http])")]
    host = connect_host(settings.http.bind)
    base = f"http://{_url_host(host)}:{settings.http.port}/"
    answers: dict[str, HttpAnswer] = {}
    for name in (MASTER_FILE, BOOTSTRAP_FILE):
        try:
            answers[name] = fetch_digest(base + name, BOOTSTRAP_USER, password, timeout)
        except OSError as error:
            return {}, [
                Finding(
                    "listener-http",
                    "fail",
                    f"no HTTP answer from {base}: {error}",
                    "Start the server (`phoneprov serve`) and check [http] bind "
                    "and port, and the firewall.",
                )
            ]
    statuses = ", ".join(f"{n}: {a.status}" for n, a in answers.items())
    return answers, [passed("listener-http", f"HTTP listener at {base} answers ({statuses})")]


def _boot_file_checks(
    settings: Settings,
    store: Store,
    root: x509.Certificate | None,
    answers: dict[str, HttpAnswer],
) -> list[Finding]:
    files: dict[str, tuple[bytes, str]] = {}
    for name in (MASTER_FILE, BOOTSTRAP_FILE):
        answer = answers.get(name)
        if answer is not None and answer.status == 200:
            files[name] = (answer.body, f"over HTTP as {BOOTSTRAP_USER}")
            continue
        why = f"HTTP answered {answer.status}" if answer is not None else "not fetched over HTTP"
        try:
            body, _ = SiteRenderer(settings, store).render(name, None, public=True)
        except PhoneprovError as error:
            return [
                Finding(
                    f"config-{name}",
                    "fail",
                    f"{name} cannot be rendered: {error}",
                    error.hint or "Fix the template it names.",
                )
            ]
        files[name] = (body, f"rendered, {why}")
    master_body, master_source = files[MASTER_FILE]
    initial_body, initial_source = files[BOOTSTRAP_FILE]
    return [
        *site.master_findings(master_body, master_source),
        *site.initial_findings(
            initial_body, initial_source, https_url=settings.https_url(), site_root=root
        ),
    ]


def _ftp_tftp(settings: Settings, timeout: float) -> list[Finding]:
    findings: list[Finding] = []
    if settings.ftp.enabled:
        host = connect_host(settings.ftp.bind)
        try:
            banner = ftp_banner(host, settings.ftp.port, timeout).splitlines()[0]
            findings.append(
                passed(
                    "listener-ftp",
                    f"FTP listener at {_url_host(host)}:{settings.ftp.port} greets: {banner}",
                )
            )
        except ftplib.all_errors as error:
            findings.append(
                Finding(
                    "listener-ftp",
                    "fail",
                    f"no FTP greeting from {_url_host(host)}:{settings.ftp.port}: {error}",
                    "Start the server; check [ftp] bind and port.",
                )
            )
    if settings.tftp.enabled:
        findings.append(_tftp(connect_host(settings.tftp.bind), settings.tftp.port, timeout))
    return findings


def _tftp(host: str, port: int, timeout: float) -> Finding:
    where = f"{_url_host(host)}:{port}"
    try:
        packet = tftp_read_request(host, port, MASTER_FILE, timeout)
    except (OSError, tftp_codec.TftpError) as error:
        return Finding(
            "listener-tftp",
            "fail",
            f"no TFTP answer from {where} to a read request for {MASTER_FILE}: "
            f"{error or 'timed out'}",
            "Start the server; check [tftp] bind and port and that UDP is let "
            "through the firewall.",
        )
    if isinstance(packet, tftp_codec.Error):
        return passed(
            "listener-tftp",
            f"TFTP listener at {where} answers a read request for "
            f"{MASTER_FILE} with ERROR {packet.code} "
            f"({packet.message})",
        )
    kind = "DATA" if isinstance(packet, tftp_codec.Data) else type(packet).__name__.upper()
    return passed(
        "listener-tftp",
        f"TFTP listener at {where} answers a read request for {MASTER_FILE} with {kind}",
    )
