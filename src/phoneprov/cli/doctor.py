"""``phoneprov doctor``: check a site (or any HTTPS boot server) and print pass/warn/fail."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.text import Text

from phoneprov.cli.common import (
    OutputFormat,
    SiteOption,
    console,
    handle_errors,
    print_json,
    with_ports,
)
from phoneprov.cli.common import site_path as resolve_site
from phoneprov.config import SETTINGS_FILE, load_settings
from phoneprov.provisioning.doctor.checks import check_site
from phoneprov.provisioning.doctor.finding import Finding, exit_code, summary
from phoneprov.provisioning.doctor.url import check_url

STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def _print(target: str, findings: list[Finding]) -> None:
    console.print(Text(f"phoneprov doctor: {target}"), highlight=False)
    for finding in findings:
        line = Text()
        line.append(f"{finding.severity.upper():<5}", style=STYLES[finding.severity])
        line.append(f" {finding.check:<16} {finding.message}")
        console.print(line, highlight=False, soft_wrap=True)
        if finding.fix and finding.severity != "pass":
            console.print(Text(f"      fix: {finding.fix}"), highlight=False, soft_wrap=True)
    counts = summary(findings)
    console.print(
        Text(f"{counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail"),
        highlight=False,
    )


@handle_errors
def doctor(
    site: Path | None = SiteOption,
    url: str | None = typer.Option(
        None,
        "--url",
        help="Check this HTTPS server instead of the site's listeners "
        "(any server: IIS, nginx, ...); the site, if present, lends its CA and inventory.",
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
    timeout: float = typer.Option(
        3.0, "--timeout", min=0.1, max=60, help="Seconds to wait for each network answer."
    ),
    http_port: int | None = typer.Option(None, help="HTTP port, when serve was given one."),
    https_port: int | None = typer.Option(None, help="HTTPS port, when serve was given one."),
    ftp_port: int | None = typer.Option(None, help="FTP port, when serve was given one."),
    tftp_port: int | None = typer.Option(None, help="TFTP port, when serve was given one."),
) -> None:
    """Check a deployment end to end; exit 0 all pass, 1 warnings, 2 failures."""
    now = datetime.now(UTC)
    directory = resolve_site(site)
    if url is not None:
        settings = load_settings(directory) if (directory / SETTINGS_FILE).is_file() else None
        if settings is not None:
            settings = with_ports(settings, http_port, https_port, ftp_port, tftp_port)
        findings = check_url(url, settings=settings, now=now, timeout=timeout)
        target = url
    else:
        settings = with_ports(load_settings(directory), http_port, https_port, ftp_port, tftp_port)
        findings = check_site(settings, now=now, timeout=timeout)
        target = f"site {directory}"
    code = exit_code(findings)
    if fmt is OutputFormat.json:
        print_json(
            {
                "target": target,
                "findings": [f.to_json() for f in findings],
                "summary": summary(findings),
                "exit_code": code,
            }
        )
    else:
        _print(target, findings)
    raise typer.Exit(code)
