"""``phoneprov ca``: the site's certificate authority (what the Microsoft CA did for IIS)."""

from __future__ import annotations

import enum
import sys
from pathlib import Path

import typer
from rich.markup import escape

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
from phoneprov.provisioning.certificates import (
    CSR_DAYS,
    CertificateFacts,
    Chain,
    ChainFormat,
    KeyKind,
    RevocationReason,
    SignatureHash,
    create_authority,
    export_ca_chain,
    issue_server_certificate,
    issued_certificates,
    publish_crl,
    revoke_certificates,
    sign_device_csr,
)

app = typer.Typer(
    name="ca",
    help="The site's certificate authority: root, server certificates, phone CSRs, "
    "revocation and CRL, chain export (PEM, DER, certnew.p7b).",
    no_args_is_help=True,
)


class ExportChoice(enum.StrEnum):
    pem = "pem"
    der = "der"
    p7b = "p7b"
    p7b_pem = "p7b-pem"
    json = "json"


FormatOption = typer.Option(OutputFormat.text, "--format", help="text or json.")
OutOption = typer.Option(None, "--out", help="Write to FILE instead of stdout.")
ChainOption = typer.Option(Chain.modern, "--chain", help="modern, or legacy (SHA-1).")


def emit(data: bytes, written: Path | None) -> None:
    """Say where ``data`` was written, or write it to stdout as bytes when it was not."""
    if written is not None:
        err_console.print(f"wrote {escape(str(written))}", highlight=False, soft_wrap=True)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def cert_json(facts: CertificateFacts) -> dict[str, object]:
    """Return the stable JSON description of a certificate we issued."""
    return {
        "serial": facts.serial_hex,
        "subject": facts.subject,
        "issuer": facts.issuer,
        "not_before": facts.not_before.isoformat(),
        "not_after": facts.not_after.isoformat(),
        "key": facts.key,
        "signature_hash": facts.signature_hash or "sha256",
        "fingerprints": dict(facts.fingerprints),
    }


@app.command("init")
@handle_errors
def init(
    site: Path | None = SiteOption,
    key: KeyKind = typer.Option(KeyKind.ec_p256, "--key", help="Root key type."),
    hash_name: SignatureHash = typer.Option(SignatureHash.sha256, "--hash", help="Signature hash."),
    profile: Chain = typer.Option(
        Chain.modern, "--profile", help="modern, or legacy: RSA-2048/SHA-1 for CX700."
    ),
    days: int = typer.Option(7300, "--days", help="Root lifetime in days."),
    common_name: str = typer.Option("", "--cn", help="Root common name (default from the site)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing CA."),
    output: OutputFormat = FormatOption,
) -> None:
    """Create the site's root CA (or the separate legacy SHA-1 root for CX700-era devices)."""
    created = create_authority(
        load_settings(site_path(site)),
        key=key,
        hash_name=hash_name,
        chain=profile,
        days=days,
        common_name=common_name,
        force=force,
    )
    if created.warning:
        err_console.print(
            f"[bold yellow]warning:[/] {escape(created.warning)}", highlight=False, soft_wrap=True
        )
    if output is OutputFormat.json:
        print_json(
            {
                "profile": created.chain.value,
                "path": str(created.cert_path),
                **cert_json(created.facts),
            }
        )
        return
    facts = created.facts
    console.print(
        f"[green]created {created.chain.value} root CA[/] {escape(str(created.cert_path))}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"  subject  {escape(facts.subject)}", highlight=False, soft_wrap=True)
    console.print(f"  key      {facts.key}", highlight=False, soft_wrap=True)
    console.print(
        f"  sha256   {dict(facts.fingerprints)['sha256']}", highlight=False, soft_wrap=True
    )
    console.print(
        "Next: issue the server certificate(s): phoneprov ca issue-server --fqdn NAME"
        + (" --chain legacy" if created.chain is Chain.legacy else ""),
        highlight=False,
    )


@app.command("issue-server")
@handle_errors
def issue_server(
    fqdn: list[str] = typer.Option([], "--fqdn", help="DNS name (repeat; the first is the CN)."),
    ip: list[str] = typer.Option([], "--ip", help="IP address for the SAN (repeat)."),
    site: Path | None = SiteOption,
    key: KeyKind = typer.Option(KeyKind.ec_p256, "--key", help="Server key type."),
    days: int = typer.Option(825, "--days", help="Lifetime in days."),
    chain: Chain = ChainOption,
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
    issued = issue_server_certificate(
        load_settings(site_path(site)), names, key=key, days=days, chain=chain, out=out
    )
    if output is OutputFormat.json:
        print_json(
            {
                **cert_json(issued.facts),
                "cert_path": str(issued.cert_path),
                "key_path": str(issued.key_path),
            }
        )
        return
    sys.stdout.buffer.write(issued.cert_pem)
    err_console.print(
        f"wrote {escape(str(issued.cert_path))} and {escape(str(issued.key_path))} (0600)",
        highlight=False,
        soft_wrap=True,
    )
    if issued.installed:
        err_console.print(
            "Reload the server to use it: systemctl reload phoneprov (or kill -HUP the "
            "`phoneprov serve` process).",
            highlight=False,
            soft_wrap=True,
        )


@app.command("sign-csr")
@handle_errors
def sign_csr_command(
    csr_file: Path = typer.Argument(..., metavar="FILE", help="<MAC>.csr as the phone uploads it."),
    mac: str | None = typer.Option(None, "--mac", help="The phone's MAC (default: file name)."),
    slot: str | None = typer.Option(
        None, "--slot", help="Slot the certificate is for: platform1|platform2|app1..app6."
    ),
    days: int = typer.Option(CSR_DAYS, "--days", help="Lifetime in days."),
    site: Path | None = SiteOption,
    out: Path | None = OutOption,
    output: OutputFormat = FormatOption,
) -> None:
    """Sign a phone's CSR after checking signature, key, common name and MAC."""
    if not csr_file.is_file():
        raise InputError(f"{csr_file} does not exist", "Pass the path of the <MAC>.csr file.")
    expected = MacAddress.parse(mac) if mac else MacAddress.maybe(csr_file.stem)
    signed = sign_device_csr(
        load_settings(site_path(site)),
        csr_file.read_bytes(),
        mac=expected,
        slot=slot,
        days=days,
        out=out,
    )
    if output is OutputFormat.json:
        print_json(
            {
                **cert_json(signed.facts),
                "mac": str(signed.mac) if signed.mac else None,
                "slot": signed.slot,
                "pem": signed.cert_pem.decode(),
            }
        )
        return
    emit(signed.cert_pem, signed.written)


@app.command("revoke")
@handle_errors
def revoke(
    serial: str | None = typer.Argument(None, metavar="SERIAL", help="Serial (hex)."),
    mac: str | None = typer.Option(None, "--mac", help="Revoke every certificate of this MAC."),
    reason: RevocationReason = typer.Option(RevocationReason.unspecified, "--reason"),
    site: Path | None = SiteOption,
    output: OutputFormat = FormatOption,
) -> None:
    """Revoke a certificate; the HTTPS listener refuses it from the next handshake on."""
    if (serial is None) == (mac is None):
        raise InputError(
            "pass either SERIAL or --mac", "e.g. phoneprov ca revoke --mac 0004f2abcdef"
        )
    revoked = revoke_certificates(
        load_settings(site_path(site)), serial=serial, mac=mac, reason=reason
    )
    if output is OutputFormat.json:
        print_json(
            {"revoked": [r.to_json() for r in revoked.records], "crl": str(revoked.crl_path)}
        )
        return
    for record in revoked.records:
        console.print(
            f"revoked {record.serial_hex} ({escape(record.subject)}) "
            f"reason {escape(str(record.reason))}",
            highlight=False,
        )
    console.print(f"CRL updated: {escape(str(revoked.crl_path))}", highlight=False, soft_wrap=True)


@app.command("crl")
@handle_errors
def crl(
    site: Path | None = SiteOption,
    out: Path | None = OutOption,
    output: OutputFormat = FormatOption,
) -> None:
    """Sign a fresh CRL (also written to <site>/pki/crl.pem) and print it."""
    json_output = output is OutputFormat.json
    published = publish_crl(load_settings(site_path(site)), out=None if json_output else out)
    if json_output:
        print_json(
            {
                "path": str(published.path),
                "last_update": published.last_update.isoformat(),
                "next_update": published.next_update.isoformat() if published.next_update else None,
                "revoked": [f"{serial:X}" for serial in published.revoked],
                "pem": published.pem.decode(),
            }
        )
        return
    emit(published.pem, published.written)


@app.command("list")
@handle_errors
def list_certificates(
    site: Path | None = SiteOption,
    chain: Chain = ChainOption,
    output: OutputFormat = FormatOption,
) -> None:
    """List the certificates the CA issued, with their revocation state."""
    records = issued_certificates(load_settings(site_path(site)), chain)
    if output is OutputFormat.json:
        print_json({"certificates": [r.to_json() for r in records]})
        return
    for r in records:
        state = f"revoked {r.revoked_at:%Y-%m-%d} ({r.reason})" if r.revoked_at else "valid"
        console.print(
            escape(
                f"{r.serial_hex}  {r.kind:<6}  {r.subject:<24}  until {r.not_after:%Y-%m-%d}  "
                f"{state}"
            ),
            highlight=False,
        )


@app.command("export")
@handle_errors
def export(
    site: Path | None = SiteOption,
    fmt: ExportChoice = typer.Option(
        ExportChoice.pem, "--format", help="pem, der (root), p7b (certnew.p7b), p7b-pem, json."
    ),
    chain: Chain = ChainOption,
    out: Path | None = OutOption,
) -> None:
    """Export the CA chain for other systems and phones."""
    settings = load_settings(site_path(site))
    if fmt is ExportChoice.json:
        exported = export_ca_chain(settings, chain=chain, fmt=ChainFormat.pem)
        print_json(
            {
                "chain": chain.value,
                "certificates": [cert_json(c) for c in exported.certificates],
                "pem": exported.data.decode(),
            }
        )
        return
    exported = export_ca_chain(settings, chain=chain, fmt=ChainFormat(fmt.value), out=out)
    emit(exported.data, exported.written)
