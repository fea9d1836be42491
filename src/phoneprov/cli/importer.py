"""``phoneprov import``: bring an existing boot server's files into a site (``import bootdir``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from phoneprov.cli.common import OutputFormat, SiteOption, console, handle_errors, print_json
from phoneprov.cli.common import site_path as resolve_site
from phoneprov.config import load_settings
from phoneprov.provisioning.migrate.report import ImportReport, PhoneResult, Status
from phoneprov.provisioning.migrate.service import import_bootdir

app = typer.Typer(help="Migrate from an existing boot server.", no_args_is_help=True)

HEADINGS = {
    Status.IMPORTED: ("imported", "green"),
    Status.KEPT: ("kept as plain served files", "cyan"),
    Status.SKIPPED: ("skipped", "yellow"),
    Status.NOT_UNDERSTOOD: ("not understood", "bold red"),
}


def _lines(phone: PhoneResult) -> str:
    return ", ".join(
        f"{line.index}: {line.ext}" + (f"@{line.server}" if line.server else "")
        for line in phone.lines
    )


def _print(report: ImportReport) -> None:
    def say(text: str, style: str = "") -> None:
        console.print(Text(text, style=style), highlight=False, soft_wrap=True)

    mode = " (dry run: nothing written)" if report.dry_run else ""
    say(f"phoneprov import bootdir: {report.source}{mode}", "bold")
    new = sum(phone.new for phone in report.phones)
    say(f"phones: {len(report.phones)} ({new} new, {len(report.phones) - new} updated)")
    for phone in report.phones:
        label = f', label "{phone.label}"' if phone.label else ""
        say(f"  {phone.mac}  group {phone.group}{label}, lines {_lines(phone) or 'none'}")
    for group in report.groups:
        files = ", ".join(group.shared_files) or "no shared file"
        say(f"group {group.name}: {group.phones} phone(s) reading {files}")
    for template in report.templates:
        say(f"template {template}")
    for image in report.firmware:
        groups = f", assigned to group {', '.join(image.groups)}" if image.groups else ""
        say(f"firmware {image.version}: {image.file}{groups}")
    for status, (heading, style) in HEADINGS.items():
        items = report.by_status(status)
        if not items:
            continue
        say(f"{heading} ({len(items)})", style)
        width = min(max(len(item.where) for item in items), 48)
        for item in items:
            say(f"  {item.where:<{width}}  {item.message}")
    say(_summary(report))


def _summary(report: ImportReport) -> str:
    counts = (f"{len(report.by_status(s))} {s.value.replace('-', ' ')}" for s in Status)
    return f"summary: {', '.join(counts)}"


def report_json(report: ImportReport) -> dict[str, Any]:
    """The report as stable JSON (no passwords: lines say only whether one is set)."""
    return {
        "source": str(report.source),
        "dry_run": report.dry_run,
        "ok": report.understood,
        "phones": [
            {
                "mac": phone.mac.value,
                "group": phone.group,
                "label": phone.label,
                "new": phone.new,
                "files": list(phone.files),
                "lines": [
                    {
                        "index": line.index,
                        "ext": line.ext,
                        "user": line.user,
                        "server": line.server,
                        "password_set": line.password_set,
                    }
                    for line in phone.lines
                ],
            }
            for phone in report.phones
        ],
        "groups": [
            {"name": g.name, "shared_files": list(g.shared_files), "phones": g.phones}
            for g in report.groups
        ],
        "templates": list(report.templates),
        "firmware": [
            {"version": f.version, "file": f.file, "part": f.part, "groups": list(f.groups)}
            for f in report.firmware
        ],
        "copied": list(report.copied),
        "items": [
            {"status": i.status.value, "file": i.file, "line": i.line, "message": i.message}
            for i in report.items
        ],
        "summary": {status.value: len(report.by_status(status)) for status in Status},
    }


@app.command("bootdir")
@handle_errors
def bootdir(
    directory: Path = typer.Argument(
        ..., help="The old boot directory (the folder IIS, vsftpd or tftpd serves)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report only; write nothing."),
    site: Path | None = SiteOption,
    output: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """Import phones, SIP lines, shared settings, firmware and files from a boot directory.

    Exit 0 when every file was understood, 1 when some were not (the report
    names each file and line; the rest is imported).
    """
    report = import_bootdir(load_settings(resolve_site(site)), directory, dry_run=dry_run)
    if output is OutputFormat.json:
        print_json(report_json(report))
    else:
        _print(report)
    if not report.understood:
        raise typer.Exit(1)
