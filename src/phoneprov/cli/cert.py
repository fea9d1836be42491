"""``phoneprov cert``: inspect, lint and install device certificates; factory-cert lookup."""

from __future__ import annotations

import enum
import socket
import ssl
from pathlib import Path

import typer
from rich.markup import escape

from phoneprov.cli.ca import emit
from phoneprov.cli.common import (
    OutputFormat,
    SiteOption,
    console,
    existing_file,
    handle_errors,
    print_json,
    site_path,
)
from phoneprov.config import SETTINGS_FILE, Settings, load_settings
from phoneprov.errors import InputError
from phoneprov.provisioning.cert_reports import (
    device_cert_snippet,
    factory_cert_answer,
    inspect_device_cert,
    lint_certificates,
)

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


def site_settings(site: Path | None) -> Settings | None:
    """Return the settings of ``--site``, or of the default site when it exists; else None."""
    path = site_path(site)
    if site is None and not (path / SETTINGS_FILE).is_file():
        return None
    return load_settings(path)


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
        raise InputError(
            f"cannot fetch a certificate from {target}: {error}",
            "Check that the server runs and answers TLS on that port (openssl s_client "
            "-connect HOST:PORT shows what it sends), or inspect a certificate file instead.",
        ) from None
    if not der:
        raise InputError(
            f"{target} presented no certificate",
            "Point --host at a TLS port (the HTTPS listener), not a plain HTTP one.",
        )
    return der


_CERT_FILE = "a certificate file in PEM, DER or PKCS#7 form"


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
        raise InputError(
            "pass either FILE or --host HOST:PORT",
            "e.g. phoneprov cert inspect device.pem, or phoneprov cert inspect --host "
            "prov.example.com:443",
        )
    if file is not None:
        data, source = existing_file(file, _CERT_FILE).read_bytes(), str(file)
    else:
        data, source = fetch_peer_certificate(host or ""), host or ""
    report = inspect_device_cert(data, source, site_settings(site))
    facts = report.facts
    if facts is None:
        if output is OutputFormat.json:
            print_json(
                {
                    "verdict": report.verdict,
                    "reason": report.reason,
                    "subject": None,
                    "issuer": None,
                    "mac": None,
                    "not_after": None,
                    "fingerprints": None,
                }
            )
        else:
            console.print(
                f"verdict  [bold red]invalid[/] ({escape(report.reason)})",
                highlight=False,
                soft_wrap=True,
            )
        raise typer.Exit(1)
    described: dict[str, object] = {
        "subject": facts.subject,
        "issuer": facts.issuer,
        "serial": f"{facts.serial:X}",
        "not_before": facts.not_before.isoformat(),
        "not_after": facts.not_after.isoformat(),
        "key": facts.key,
        "signature_algorithm": facts.signature_algorithm,
        "signature_hash": facts.signature_hash,
        "fingerprints": dict(facts.fingerprints),
    }
    if output is OutputFormat.json:
        print_json(
            {
                "verdict": report.verdict,
                "reason": report.reason,
                "origin": report.origin,
                "mac": report.mac.value if report.mac else None,
                **described,
            }
        )
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
            console.print(
                f"{name:<20} {escape(str(described[name]))}", highlight=False, soft_wrap=True
            )
        for name, value in facts.fingerprints:
            console.print(f"{name + ' fingerprint':<20} {value}", highlight=False, soft_wrap=True)
        style = "bold red" if report.invalid else "bold green"
        console.print(
            f"{'verdict':<20} [{style}]{report.verdict}[/] ({escape(report.reason)})",
            highlight=False,
        )
    if report.invalid:
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
    family = None if device is Device.all else device.value
    report = lint_certificates([existing_file(path, _CERT_FILE) for path in files], family)
    if output is OutputFormat.json:
        print_json(
            {
                "clean": report.clean,
                "devices": list(report.families),
                "problems": [p.to_json() for p in report.problems],
            }
        )
    elif report.clean:
        console.print(
            f"[green]clean[/] for {', '.join(report.families)}", highlight=False, soft_wrap=True
        )
    else:
        for problem in report.problems:
            console.print(
                f"[bold red]{problem.device}:[/] {escape(problem.problem)}",
                highlight=False,
                soft_wrap=True,
            )
            console.print(
                f"  [yellow]fix:[/] {escape(problem.fix)}", highlight=False, soft_wrap=True
            )
    if not report.clean:
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
    json_output = output is OutputFormat.json
    snippet = device_cert_snippet(
        existing_file(cert, _CERT_FILE),
        None if key is None else existing_file(key, "its private key in PEM form"),
        slot,
        ucs=ucs.value,
        profile=profile,
        out=None if json_output else out,
    )
    if json_output:
        print_json(
            {
                "slot": snippet.slot,
                "ucs": snippet.ucs,
                "parameters": dict(snippet.parameters),
                "config": snippet.xml.decode(),
            }
        )
        return
    emit(snippet.xml, snippet.written)


@app.command("factory-revision")
@handle_errors
def factory_revision_command(
    part: str = typer.Option(..., "--part", help="Part number from the console or box label."),
    rev: str = typer.Option(..., "--rev", help="Revision from the same label."),
    output: OutputFormat = FormatOption,
) -> None:
    """Was a phone with this part number and revision made with a factory certificate?"""
    answer = factory_cert_answer(part, rev)
    if output is OutputFormat.json:
        print_json(answer.to_json())
        return
    verdict = "has" if answer.has_factory_cert else "does not have"
    console.print(
        escape(
            f"{answer.platform} {answer.part} rev {answer.revision} {verdict} a factory "
            f"certificate (first revision with one: {answer.first_revision}, {answer.date})"
        ),
        highlight=False,
    )
    if answer.note:
        console.print(f"note: {escape(answer.note)}", highlight=False, soft_wrap=True)
