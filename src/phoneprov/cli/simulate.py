"""``phoneprov simulate``: boot like a Polycom phone against any boot server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import typer
from rich.markup import escape

from phoneprov.cli.common import OutputFormat, console, handle_errors, print_json
from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.sim.certs import device_pair, existing_pair
from phoneprov.sim.phone import Phone, model_token
from phoneprov.sim.runner import BootOptions, BootReport, StageChoice, boot


def _certificate(
    site: Path | None, mac: MacAddress, cert: Path | None, key: Path | None, make: bool
) -> tuple[str | None, str | None]:
    if (cert is None) != (key is None):
        raise InputError(
            "--cert and --key go together", "Give both the device certificate and its private key."
        )
    if cert is not None and key is not None:
        for path in (cert, key):
            if not path.is_file():
                raise InputError(f"{path} does not exist", "Check the path.")
        return str(cert), str(key)
    if make:
        if site is None:
            raise InputError(
                "--make-device-cert needs --site", "Give the site whose CA issues the certificate."
            )
        made = device_pair(site, mac)
        return str(made[0]), str(made[1])
    found = existing_pair(site, mac) if site is not None else None
    return (str(found[0]), str(found[1])) if found else (None, None)


def report_json(report: BootReport) -> dict[str, Any]:
    """The boot report as stable JSON."""
    return {
        "mac": report.mac,
        "ok": report.ok,
        "seconds": round(report.seconds, 3),
        "stages": [
            {"stage": stage.stage.value, "failed": stage.failed, "next_url": stage.next_url}
            for stage in report.stages
        ],
        "requests": [
            {
                "stage": r.stage.value,
                "method": r.method,
                "path": r.path,
                "status": r.status,
                "attempt": r.attempt,
                "ms": round(r.seconds * 1000, 2),
                "error": r.error,
            }
            for r in report.records
        ],
        "notes": [
            {"severity": n.severity.value, "path": n.path, "reason": n.reason, "text": n.text}
            for n in report.notes
        ],
        "trace": report.lines,
        "registrations": [
            {
                "line": r.line,
                "address": r.address,
                "user": r.user,
                "label": r.label,
                "servers": list(r.servers),
                "password_set": r.password_set,
            }
            for r in report.registrations
        ],
    }


def _verdict(report: BootReport) -> None:
    requests = len(report.records)
    stages = " + ".join(stage.stage.value for stage in report.stages) or "no stage"
    for line in report.registrations:
        console.print(
            f"registers line {line.line}: {line.address}, user {line.user}, label "
            f"{line.label or '(none)'}, server {', '.join(line.servers) or '(none)'}, "
            f"password {'set' if line.password_set else 'empty'}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    for note in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(note.text)}", highlight=False)
    for note in report.failures:
        console.print(f"[red]failure:[/] {escape(note.text)}", highlight=False)
    if report.ok:
        console.print(
            f"[bold green]verdict: booted[/] {report.mac}: {stages}, {requests} "
            f"requests, {len(report.warnings)} warning(s), {report.seconds:.2f} s",
            highlight=False,
        )
    else:
        reasons = ", ".join(sorted({note.reason for note in report.failures})) or "no master file"
        console.print(
            f"[bold red]verdict: boot failed[/] {report.mac}: {reasons} "
            f"({stages}, {requests} requests)",
            highlight=False,
        )


@handle_errors
def simulate(
    url: str = typer.Option(
        ...,
        "--url",
        help="Boot server URL, as DHCP option 160/66 gives it "
        "(http://, https://, ftp://, tftp://).",
    ),
    mac: str = typer.Option(..., "--mac", help="The phone's MAC address."),
    model: str = typer.Option("VVX410", "--model", help="Phone model, e.g. VVX410, VVX500."),
    cert: Path | None = typer.Option(None, "--cert", help="Device certificate (PEM) for mTLS."),
    key: Path | None = typer.Option(None, "--key", help="Its private key (PEM)."),
    make_device_cert: bool = typer.Option(
        False,
        "--make-device-cert",
        help="Issue a device certificate from the site's CA (kept in <site>/sim/ for reuse).",
    ),
    user: str | None = typer.Option(
        None, "--user", help="Digest/FTP user (default: from the URL, else the phones' PlcmSpIp)."
    ),
    password: str | None = typer.Option(None, "--password", help="Digest/FTP password."),
    stage: str = typer.Option("both", "--stage", help="updater, application or both."),
    site: Path | None = typer.Option(
        None,
        "--site",
        help="A phoneprov site: its CA verifies the "
        "server and issues or holds device certificates.",
    ),
    ca: Path | None = typer.Option(
        None, "--ca", help="CA certificate that verifies the HTTPS server (default: the site's)."
    ),
    app_url: str | None = typer.Option(
        None,
        "--app-url",
        help="Boot the application stage from this URL instead of the one device.prov.* sets.",
    ),
    part: str = typer.Option("", "--part", help="Firmware part number (default: the model's)."),
    firmware: str = typer.Option(
        "5.9.5.0614",
        "--firmware",
        help="Application version the phone runs (compared with sip.ver).",
    ),
    tag_serial: bool = typer.Option(
        False,
        "--tag-serial",
        help="Add (SN:<mac>) to the User-Agent, as device.prov.tagSerialNo=1 does.",
    ),
    output: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
    timeout: float = typer.Option(30.0, "--timeout", min=0.1, help="Seconds per request."),
) -> None:
    """Boot like a Polycom phone (Updater, then Application); exit 0 on a full boot."""
    if stage not in ("updater", "application", "both"):
        raise InputError(
            f"--stage {stage!r} is not updater, application or both",
            "Use --stage both to boot like a phone from power-on.",
        )
    phone_mac = MacAddress.parse(mac)
    certfile, keyfile = _certificate(site, phone_mac, cert, key, make_device_cert)
    cafile = ca if ca is not None else (site / "pki" / "ca.pem" if site is not None else None)
    if cafile is not None and not cafile.is_file():
        raise InputError(f"{cafile} does not exist", "Give the CA file with --ca.")
    options = BootOptions(
        url=url,
        phone=Phone(
            phone_mac, model_token(model), app_version=firmware, tag_serial=tag_serial, part=part
        ),
        stage=cast(StageChoice, stage),
        user=user,
        password=password,
        cafile=str(cafile) if cafile is not None else None,
        certfile=certfile,
        keyfile=keyfile,
        app_url=app_url,
        timeout=timeout,
    )
    text = output is OutputFormat.text

    def show(line: str) -> None:
        console.print(escape(line), highlight=False, soft_wrap=True)

    report = asyncio.run(boot(options, show if text else None))
    if text:
        _verdict(report)
    else:
        print_json(report_json(report))
    if not report.ok:
        raise typer.Exit(1)
