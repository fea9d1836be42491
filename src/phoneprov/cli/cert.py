"""``phoneprov cert``: inspect, lint and install device certificates; factory-cert lookup."""

from __future__ import annotations

import enum
import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path

import typer
from cryptography import x509

from phoneprov.cli.ca import emit
from phoneprov.cli.common import (
    OutputFormat,
    SiteOption,
    console,
    handle_errors,
    print_json,
    site_path,
)
from phoneprov.config import SETTINGS_FILE, load_settings
from phoneprov.errors import InputError
from phoneprov.pki.authority import LEGACY_DIR, CertificateAuthority
from phoneprov.pki.chain import fingerprints, order_chain
from phoneprov.pki.devicecfg import device_cert_config
from phoneprov.pki.factory_certs import factory_revision
from phoneprov.pki.formats import read_certificates
from phoneprov.pki.inspect import classify_device_cert, malformed
from phoneprov.pki.keys import describe_public_key
from phoneprov.pki.lint import FAMILIES, lint_chain

app = typer.Typer(
    name="cert",
    help="Device certificates: inspect (factory / self-signed / custom / invalid), "
    "compatibility lint per phone family, config snippets, factory-certificate lookup.",
    no_args_is_help=True,
)

FormatOption = typer.Option(OutputFormat.text, "--format", help="text or json.")
CONNECT_TIMEOUT = 10.0


class Device(enum.StrEnum):
    cx700 = "cx700"
    soundpoint = "soundpoint"
    vvx = "vvx"
    trio = "trio"
    all = "all"


class Ucs(enum.StrEnum):
    v33 = "3.3"
    v4 = "4"
    v5 = "5"


def our_roots(site: Path | None) -> list[x509.Certificate]:
    """Return the site's roots (modern and legacy); none when no --site was given and the
    default site does not exist."""
    path = site_path(site)
    if site is None and not (path / SETTINGS_FILE).is_file():
        return []
    pki = load_settings(path).pki_dir
    return [
        CertificateAuthority.load(d).cert
        for d in (pki, pki / LEGACY_DIR)
        if CertificateAuthority.exists(d)
    ]


def fetch_peer_certificate(target: str) -> bytes:
    """Return the DER certificate a TLS server at ``HOST:PORT`` presents (not verified).

    Raises InputError for a malformed target or a connection that fails.
    """
    host, sep, port_text = target.rpartition(":")
    if not sep or not port_text.isdigit():
        raise InputError(f"{target!r} is not HOST:PORT", "e.g. --host prov.example.com:443")
    host = host.strip("[]")
    context = ssl.create_default_context()
    # Inspection must see any certificate, trusted or not: that is what it reports on.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, int(port_text)), timeout=CONNECT_TIMEOUT) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as error:
        raise InputError(f"cannot fetch a certificate from {target}: {error}") from None
    if not der:
        raise InputError(f"{target} presented no certificate")
    return der


def describe(cert: x509.Certificate) -> dict[str, object]:
    """Return the stable JSON description of a certificate (without the verdict)."""
    algorithm = cert.signature_hash_algorithm
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": f"{cert.serial_number:X}",
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "key": describe_public_key(cert.public_key()),
        "signature_algorithm": cert.signature_algorithm_oid._name,
        "signature_hash": algorithm.name if algorithm is not None else None,
        "fingerprints": fingerprints(cert),
    }


@app.command("inspect")
@handle_errors
def inspect(
    file: Path | None = typer.Argument(None, metavar="FILE", help="PEM, DER or PKCS#7 file."),
    host: str | None = typer.Option(None, "--host", help="Fetch from a TLS server HOST:PORT."),
    site: Path | None = SiteOption,
    output: OutputFormat = FormatOption,
) -> None:
    """Describe a certificate and give its verdict: factory, self-signed, custom or invalid.

    Exit 0 for factory / self-signed / custom, 1 for invalid, 2 for unreadable input.
    """
    if (file is None) == (host is None):
        raise InputError("pass either FILE or --host HOST:PORT")
    if file is not None:
        if not file.is_file():
            raise InputError(f"{file} does not exist")
        data, source = file.read_bytes(), str(file)
    else:
        data, source = fetch_peer_certificate(host or ""), host or ""
    roots = our_roots(site)
    try:
        certs = order_chain(read_certificates(data, source))
    except InputError as error:
        verdict = malformed(str(error))
        if output is OutputFormat.json:
            print_json(
                {
                    "verdict": verdict.verdict,
                    "reason": verdict.reason,
                    "subject": None,
                    "issuer": None,
                    "mac": None,
                    "not_after": None,
                    "fingerprints": None,
                }
            )
        else:
            console.print(
                f"verdict  [bold red]invalid[/] ({verdict.reason})", highlight=False, soft_wrap=True
            )
        raise typer.Exit(1) from None
    leaf = certs[0]
    verdict = classify_device_cert(leaf, certs[1:], our_roots=roots, now=datetime.now(UTC))
    facts = describe(leaf)
    result = {
        "verdict": verdict.verdict,
        "reason": verdict.reason,
        "origin": verdict.origin,
        "mac": verdict.mac.value if verdict.mac else None,
        **facts,
    }
    if output is OutputFormat.json:
        print_json(result)
    else:
        for name in (
            "subject",
            "issuer",
            "serial",
            "not_before",
            "not_after",
            "key",
            "signature_algorithm",
        ):
            console.print(f"{name:<20} {facts[name]}", highlight=False, soft_wrap=True)
        for name, value in fingerprints(leaf).items():
            console.print(f"{name + ' fingerprint':<20} {value}", highlight=False, soft_wrap=True)
        style = "bold red" if verdict.verdict == "invalid" else "bold green"
        console.print(
            f"{'verdict':<20} [{style}]{verdict.verdict}[/] ({verdict.reason})", highlight=False
        )
    if verdict.verdict == "invalid":
        raise typer.Exit(1)


@app.command("lint")
@handle_errors
def lint(
    files: list[Path] = typer.Argument(..., metavar="FILE...", help="Chain files (any order)."),
    device: Device = typer.Option(Device.all, "--device", help="Phone family to check for."),
    output: OutputFormat = FormatOption,
) -> None:
    """Check a chain against what each phone family can parse.

    Exit 0 when clean, 1 when a problem is found, 2 on unreadable input.
    """
    certs: list[x509.Certificate] = []
    for path in files:
        if not path.is_file():
            raise InputError(f"{path} does not exist")
        certs += read_certificates(path.read_bytes(), str(path))
    chain = order_chain(certs)
    families = list(FAMILIES) if device is Device.all else [device.value]
    problems = lint_chain(chain, families, now=datetime.now(UTC))
    if output is OutputFormat.json:
        print_json(
            {
                "clean": not problems,
                "devices": families,
                "problems": [p.to_json() for p in problems],
            }
        )
    elif not problems:
        console.print(f"[green]clean[/] for {', '.join(families)}", highlight=False, soft_wrap=True)
    else:
        for problem in problems:
            console.print(
                f"[bold red]{problem.device}:[/] {problem.problem}", highlight=False, soft_wrap=True
            )
            console.print(f"  [yellow]fix:[/] {problem.fix}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)


@app.command("device-config")
@handle_errors
def device_config(
    cert: Path = typer.Option(..., "--cert", help="Certificate: PEM, DER or PKCS#7."),
    key: Path | None = typer.Option(
        None, "--key", help="Its private key (PEM); leave out for a certificate from a phone CSR."
    ),
    slot: str = typer.Option(..., "--slot", help="platform1|platform2|app1..app6."),
    ucs: Ucs = typer.Option(Ucs.v5, "--ucs", help="UCS version: 3.3 (3.3.2), 4 or 5."),
    profile: int | None = typer.Option(
        None, "--profile", help="Also select the platform certificate for TLS profile 1 or 2."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write the config to FILE."),
    output: OutputFormat = FormatOption,
) -> None:
    """Print the config snippet that installs a custom device certificate on phones."""
    for path in (cert, key):
        if path is not None and not path.is_file():
            raise InputError(f"{path} does not exist")
    config = device_cert_config(
        cert.read_bytes(),
        key.read_bytes() if key is not None else None,
        slot,
        ucs=ucs.value,
        profile=profile,
    )
    if output is OutputFormat.json:
        print_json(
            {
                "slot": config.slot,
                "ucs": config.ucs,
                "parameters": config.as_dict(),
                "config": config.xml().decode(),
            }
        )
        return
    emit(config.xml(), out)


@app.command("factory-revision")
@handle_errors
def factory_revision_command(
    part: str = typer.Option(..., "--part", help="Part number from the console or box label."),
    rev: str = typer.Option(..., "--rev", help="Revision from the same label."),
    output: OutputFormat = FormatOption,
) -> None:
    """Was a phone with this part number and revision made with a factory certificate?"""
    answer = factory_revision(part, rev)
    if output is OutputFormat.json:
        print_json(answer.to_json())
        return
    verdict = "has" if answer.has_factory_cert else "does not have"
    console.print(
        f"{answer.platform} {answer.part} rev {answer.revision} {verdict} a factory certificate "
        f"(first revision with one: {answer.first_revision}, {answer.date})",
        highlight=False,
    )
    if answer.note:
        console.print(f"note: {answer.note}", highlight=False, soft_wrap=True)
