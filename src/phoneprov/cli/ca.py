"""``phoneprov ca``: the site's certificate authority (what the Microsoft CA did for IIS)."""

from __future__ import annotations

import enum
import re
import sys
from pathlib import Path

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from phoneprov.cli.common import (
    OutputFormat,
    SiteOption,
    console,
    err_console,
    handle_errors,
    print_json,
    site_path,
)
from phoneprov.config import load_settings
from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.pki.authority import LEGACY_DIR, CertificateAuthority
from phoneprov.pki.chain import fingerprints, serial_hex
from phoneprov.pki.enrolment import DEVICE_DAYS, sign_csr
from phoneprov.pki.export import export_chain
from phoneprov.pki.files import write_atomic, write_private
from phoneprov.pki.keys import describe_public_key
from phoneprov.pki.profiles import check_slot
from phoneprov.pki.revocation import crl_path
from phoneprov.pki.trust import install_trust_anchors

app = typer.Typer(
    name="ca",
    help="The site's certificate authority: root, server certificates, phone CSRs, "
    "revocation and CRL, chain export (PEM, DER, certnew.p7b).",
    no_args_is_help=True,
)

SHA1_WARNING = (
    "SHA-1 is weak: collisions can be forged. Use the legacy chain only for devices that "
    "cannot parse SHA-2 (CX700 / Windows CE), never for VVX, SoundPoint IP or Trio phones."
)


class KeyChoice(enum.StrEnum):
    ec_p256 = "ec-p256"
    rsa_2048 = "rsa-2048"
    rsa_3072 = "rsa-3072"
    rsa_4096 = "rsa-4096"


class HashChoice(enum.StrEnum):
    sha256 = "sha256"
    sha384 = "sha384"


class ChainChoice(enum.StrEnum):
    modern = "modern"
    legacy = "legacy"


class ExportChoice(enum.StrEnum):
    pem = "pem"
    der = "der"
    p7b = "p7b"
    p7b_pem = "p7b-pem"
    json = "json"


class ReasonChoice(enum.StrEnum):
    unspecified = "unspecified"
    key_compromise = "key-compromise"
    ca_compromise = "ca-compromise"
    affiliation_changed = "affiliation-changed"
    superseded = "superseded"
    cessation_of_operation = "cessation-of-operation"
    certificate_hold = "certificate-hold"
    privilege_withdrawn = "privilege-withdrawn"


FormatOption = typer.Option(OutputFormat.text, "--format", help="text or json.")
OutOption = typer.Option(None, "--out", help="Write to FILE instead of stdout.")
ChainOption = typer.Option(ChainChoice.modern, "--chain", help="modern, or legacy (SHA-1).")


def pki_dir_for(site: Path | None, chain: ChainChoice = ChainChoice.modern) -> Path:
    """Return the directory of the modern CA, or of the legacy one (``<pki>/legacy``)."""
    pki = load_settings(site_path(site)).pki_dir
    return pki / LEGACY_DIR if chain is ChainChoice.legacy else pki


def emit(data: bytes, out: Path | None) -> None:
    """Write ``data`` to ``out`` (0644, atomically) or to stdout as bytes."""
    if out is not None:
        write_atomic(out, data)
        err_console.print(f"wrote {out}", highlight=False, soft_wrap=True)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def cert_json(cert: x509.Certificate) -> dict[str, object]:
    """Return the stable JSON description of a certificate we issued."""
    return {
        "serial": serial_hex(cert),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "key": describe_public_key(cert.public_key()),
        "signature_hash": (cert.signature_hash_algorithm or hashes.SHA256()).name,
        "fingerprints": fingerprints(cert),
    }


@app.command("init")
@handle_errors
def init(
    site: Path | None = SiteOption,
    key: KeyChoice = typer.Option(KeyChoice.ec_p256, "--key", help="Root key type."),
    hash_name: HashChoice = typer.Option(HashChoice.sha256, "--hash", help="Signature hash."),
    profile: ChainChoice = typer.Option(
        ChainChoice.modern, "--profile", help="modern, or legacy: RSA-2048/SHA-1 for CX700."
    ),
    days: int = typer.Option(7300, "--days", help="Root lifetime in days."),
    common_name: str = typer.Option("", "--cn", help="Root common name (default from the site)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing CA."),
    output: OutputFormat = FormatOption,
) -> None:
    """Create the site's root CA (or the separate legacy SHA-1 root for CX700-era devices)."""
    settings = load_settings(site_path(site))
    legacy = profile is ChainChoice.legacy
    pki = settings.pki_dir / LEGACY_DIR if legacy else settings.pki_dir
    name = common_name or (
        f"phoneprov {'Legacy ' if legacy else ''}Root CA ({settings.primary_fqdn})"
    )
    ca = CertificateAuthority.create(
        pki,
        common_name=name,
        key=key.value,
        hash_name=hash_name.value,
        days=days,
        force=force,
        profile=profile.value,
    )
    if not legacy and settings.trust_dir.is_dir():
        install_trust_anchors(settings.trust_dir, ca.cert)
    if legacy:
        err_console.print(
            f"[bold yellow]warning:[/] {SHA1_WARNING}", highlight=False, soft_wrap=True
        )
    if output is OutputFormat.json:
        print_json({"profile": profile.value, "path": str(ca.cert_path), **cert_json(ca.cert)})
        return
    console.print(
        f"[green]created {profile.value} root CA[/] {ca.cert_path}", highlight=False, soft_wrap=True
    )
    console.print(f"  subject  {ca.cert.subject.rfc4514_string()}", highlight=False, soft_wrap=True)
    console.print(
        f"  key      {describe_public_key(ca.cert.public_key())}", highlight=False, soft_wrap=True
    )
    console.print(f"  sha256   {fingerprints(ca.cert)['sha256']}", highlight=False, soft_wrap=True)
    console.print(
        "Next: issue the server certificate(s): phoneprov ca issue-server --fqdn NAME"
        + (" --chain legacy" if legacy else ""),
        highlight=False,
    )


@app.command("issue-server")
@handle_errors
def issue_server(
    fqdn: list[str] = typer.Option([], "--fqdn", help="DNS name (repeat; the first is the CN)."),
    ip: list[str] = typer.Option([], "--ip", help="IP address for the SAN (repeat)."),
    site: Path | None = SiteOption,
    key: KeyChoice = typer.Option(KeyChoice.ec_p256, "--key", help="Server key type."),
    days: int = typer.Option(825, "--days", help="Lifetime in days."),
    chain: ChainChoice = ChainOption,
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Write the chain to FILE and the key next to it as FILE.key; "
        "default: install into the site's pki directory for the HTTPS listener.",
    ),
    output: OutputFormat = FormatOption,
) -> None:
    """Issue a server certificate with every name in its SAN (no wildcards)."""
    names = [*fqdn, *ip]
    if not names:
        raise InputError("no server name given", "Pass --fqdn NAME (and --ip ADDRESS).")
    ca = CertificateAuthority.load(pki_dir_for(site, chain))
    key_type = "rsa-2048" if chain is ChainChoice.legacy else key.value
    issued = ca.issue_server(names, key=key_type, days=days)  # type: ignore[arg-type]
    if out is not None:
        cert_path = write_atomic(out, issued.chain_pem)
        key_path = write_private(out.with_suffix(".key"), issued.key_pem)
    else:
        stem = "server" if chain is ChainChoice.legacy else f"server-{key_type.split('-')[0]}"
        cert_path, key_path = ca.write_server_pair(ca.pki_dir, issued, stem)
    if output is OutputFormat.json:
        print_json(
            {**cert_json(issued.cert), "cert_path": str(cert_path), "key_path": str(key_path)}
        )
        return
    sys.stdout.buffer.write(issued.cert_pem)
    err_console.print(f"wrote {cert_path} and {key_path} (0600)", highlight=False, soft_wrap=True)
    if out is None:
        err_console.print("Restart `phoneprov serve` to use it.", highlight=False, soft_wrap=True)


@app.command("sign-csr")
@handle_errors
def sign_csr_command(
    csr_file: Path = typer.Argument(..., metavar="FILE", help="<MAC>.csr as the phone uploads it."),
    mac: str | None = typer.Option(None, "--mac", help="The phone's MAC (default: file name)."),
    slot: str | None = typer.Option(
        None, "--slot", help="Slot the certificate is for: platform1|platform2|app1..app6."
    ),
    days: int = typer.Option(DEVICE_DAYS, "--days", help="Lifetime in days."),
    site: Path | None = SiteOption,
    out: Path | None = OutOption,
    output: OutputFormat = FormatOption,
) -> None:
    """Sign a phone's CSR after checking signature, key, common name and MAC."""
    if not csr_file.is_file():
        raise InputError(f"{csr_file} does not exist", "Pass the path of the <MAC>.csr file.")
    expected = MacAddress.parse(mac) if mac else MacAddress.maybe(csr_file.stem)
    ca = CertificateAuthority.load(pki_dir_for(site))
    issued = sign_csr(
        ca,
        csr_file.read_bytes(),
        expected_mac=expected,
        slot=check_slot(slot) if slot else None,
        days=days,
    )
    if output is OutputFormat.json:
        if out is not None:
            write_atomic(out, issued.cert_pem)
        print_json(
            {
                **cert_json(issued.cert),
                "mac": str(expected) if expected else None,
                "slot": slot,
                "pem": issued.cert_pem.decode(),
            }
        )
        return
    emit(issued.cert_pem, out)


def parse_serial(text: str) -> int:
    """Parse a serial as openssl prints it (hex, optional 0x and colons); raise InputError."""
    cleaned = re.sub(r"[:\s]", "", text).lower().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{1,40}", cleaned):
        raise InputError(
            f"{text!r} is not a certificate serial number",
            "Write it in hex as `phoneprov ca list` or `openssl x509 -serial` prints it.",
        )
    return int(cleaned, 16)


@app.command("revoke")
@handle_errors
def revoke(
    serial: str | None = typer.Argument(None, metavar="SERIAL", help="Serial (hex)."),
    mac: str | None = typer.Option(None, "--mac", help="Revoke every certificate of this MAC."),
    reason: ReasonChoice = typer.Option(ReasonChoice.unspecified, "--reason"),
    site: Path | None = SiteOption,
    output: OutputFormat = FormatOption,
) -> None:
    """Revoke a certificate; the HTTPS listener refuses it from the next handshake on."""
    if (serial is None) == (mac is None):
        raise InputError(
            "pass either SERIAL or --mac", "e.g. phoneprov ca revoke --mac 0004f2abcdef"
        )
    ca = CertificateAuthority.load(pki_dir_for(site))
    target: int | MacAddress = MacAddress.parse(mac) if mac else parse_serial(serial or "")
    records = ca.revoke(target, reason.value)
    if output is OutputFormat.json:
        print_json({"revoked": [r.to_json() for r in records], "crl": str(crl_path(ca.pki_dir))})
        return
    for record in records:
        console.print(
            f"revoked {record.serial_hex} ({record.subject}) reason {record.reason}",
            highlight=False,
        )
    console.print(f"CRL updated: {crl_path(ca.pki_dir)}", highlight=False, soft_wrap=True)


@app.command("crl")
@handle_errors
def crl(
    site: Path | None = SiteOption,
    out: Path | None = OutOption,
    output: OutputFormat = FormatOption,
) -> None:
    """Sign a fresh CRL (also written to <site>/pki/crl.pem) and print it."""
    ca = CertificateAuthority.load(pki_dir_for(site))
    path = ca.write_crl()
    data = path.read_bytes()
    if output is OutputFormat.json:
        loaded = x509.load_pem_x509_crl(data)
        print_json(
            {
                "path": str(path),
                "last_update": loaded.last_update_utc.isoformat(),
                "next_update": loaded.next_update_utc.isoformat()
                if loaded.next_update_utc
                else None,
                "revoked": [f"{entry.serial_number:X}" for entry in loaded],
                "pem": data.decode(),
            }
        )
        return
    emit(data, out)


@app.command("list")
@handle_errors
def list_certificates(
    site: Path | None = SiteOption,
    chain: ChainChoice = ChainOption,
    output: OutputFormat = FormatOption,
) -> None:
    """List the certificates the CA issued, with their revocation state."""
    ca = CertificateAuthority.load(pki_dir_for(site, chain))
    records = ca.records()
    if output is OutputFormat.json:
        print_json({"certificates": [r.to_json() for r in records]})
        return
    for r in records:
        state = f"revoked {r.revoked_at:%Y-%m-%d} ({r.reason})" if r.revoked_at else "valid"
        console.print(
            f"{r.serial_hex}  {r.kind:<6}  {r.subject:<24}  until {r.not_after:%Y-%m-%d}  {state}",
            highlight=False,
        )


@app.command("export")
@handle_errors
def export(
    site: Path | None = SiteOption,
    fmt: ExportChoice = typer.Option(
        ExportChoice.pem, "--format", help="pem, der (root), p7b (certnew.p7b), p7b-pem, json."
    ),
    chain: ChainChoice = ChainOption,
    out: Path | None = OutOption,
) -> None:
    """Export the CA chain for other systems and phones."""
    ca = CertificateAuthority.load(pki_dir_for(site, chain))
    certs = [ca.cert]
    if fmt is ExportChoice.json:
        print_json(
            {
                "chain": chain.value,
                "certificates": [cert_json(c) for c in certs],
                "pem": export_chain(certs, "pem").decode(),
            }
        )
        return
    emit(export_chain(certs, fmt.value), out)  # type: ignore[arg-type]
