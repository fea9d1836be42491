"""``phoneprov logs``: read a phone's logs and say why it does not provision."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from phoneprov.cli.common import OutputFormat, SiteOption, console, handle_errors, print_json
from phoneprov.cli.common import site_path as resolve_site
from phoneprov.protocols.phonelog.findings import Finding
from phoneprov.protocols.phonelog.parser import LogEntry
from phoneprov.provisioning.logs import AnalyzedLog, analyze_target

app = typer.Typer(
    name="logs",
    help="Analyse Polycom phone logs: timeline, findings, causes and fixes.",
    no_args_is_help=True,
)

_STYLE = {"error": "bold red", "warning": "yellow", "info": "green"}
_MESSAGE_WIDTH = 160


@app.command("analyze")
@handle_errors
def analyze(
    target: str = typer.Argument(
        ...,
        metavar="FILE|MAC",
        help="A log file (<mac>-app.log, <mac>-boot.log, a serial capture), or a phone's MAC "
        "to read the logs it uploaded to the site.",
    ),
    output: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
    site: Path | None = SiteOption,
    timeline: bool = typer.Option(
        True,
        "--timeline/--no-timeline",
        help='Show the timeline after the findings (text), or in "timeline" (json).',
    ),
    timeline_limit: int = typer.Option(
        1000,
        "--timeline-limit",
        min=1,
        max=1_000_000,
        help="Keep the last N entries of the timeline in memory (findings cover every line).",
    ),
) -> None:
    """Find what went wrong in a phone's boot: exit 0 no errors, 1 errors found, 2 bad input."""
    analysis = analyze_target(target, resolve_site(site), timeline_limit)
    if output is OutputFormat.json:
        print_json(analysis.to_json(timeline=timeline))
    else:
        for log in analysis.logs:
            _print_log(log, timeline)
    if analysis.has_errors:
        raise typer.Exit(1)


def _print_log(log: AnalyzedLog, timeline: bool) -> None:
    summary = log.report.summary
    console.print(
        f"[bold]{escape(str(log.path))}[/]: {summary['lines']} lines, {summary['entries']} "
        f"entries, {summary['boots']} boot(s); {summary['errors']} error(s), "
        f"{summary['warnings']} warning(s), {summary['infos']} info",
        highlight=False,
    )
    findings = log.report.findings
    if findings:
        console.print(_findings_table(findings))
    else:
        console.print("No findings: nothing in this log matches a known problem or event.")
    if summary["findings_dropped"]:
        console.print(
            f"[yellow]{summary['findings_dropped']} further observations were not kept "
            "(too many distinct findings).[/]"
        )
    if not summary["complete"]:
        console.print("[yellow]The log ends in the middle of a line (cut-off upload).[/]")
    if timeline:
        console.print(_timeline_table(log.report.timeline))
        if summary["timeline_truncated"]:
            console.print(
                f"Timeline: the last {summary['timeline_kept']} of {summary['entries']} entries "
                "are shown; findings cover the whole log. Use --timeline-limit to keep more.",
                highlight=False,
            )


def _findings_table(findings: tuple[Finding, ...]) -> Table:
    table = Table(title="Findings", show_lines=True, expand=True)
    table.add_column("Severity", no_wrap=True)
    table.add_column("Kind", no_wrap=True)
    table.add_column("Lines")
    table.add_column("Cause", ratio=3)
    table.add_column("Fix", ratio=3)
    for finding in findings:
        lines = ", ".join(str(n) for n in finding.lines[:10])
        if finding.occurrences > 10:
            lines += f" (+{finding.occurrences - min(len(finding.lines), 10)} more)"
        table.add_row(
            f"[{_STYLE[finding.severity]}]{finding.severity}[/]",
            str(finding.kind),
            lines,
            escape(finding.cause),
            escape(finding.fix),
        )
    return table


def _timeline_table(entries: tuple[LogEntry, ...]) -> Table:
    since_boot = any(e.stamp is not None and e.stamp.since_boot is not None for e in entries)
    caption = "Times with milliseconds count from boot (hh:mm:ss.mmm)." if since_boot else None
    table = Table(title="Timeline", caption=caption, expand=True)
    table.add_column("Line", justify="right", no_wrap=True)
    table.add_column("Boot", justify="right", no_wrap=True)
    table.add_column("Time", no_wrap=True)
    table.add_column("Module", no_wrap=True)
    table.add_column("Class", no_wrap=True)
    table.add_column("Message", ratio=1)
    table.add_column("Finding", no_wrap=True)
    for entry in entries:
        first = entry.message.split("\n", 1)[0]
        if len(first) > _MESSAGE_WIDTH:
            first = first[: _MESSAGE_WIDTH - 3] + "..."
        if entry.last_line > entry.line:
            first += f" [+{entry.last_line - entry.line} line(s)]"
        table.add_row(
            str(entry.line),
            str(entry.boot),
            entry.time_text,
            escape(entry.module or "?"),
            entry.event_class or "",
            escape(first),
            ", ".join(entry.kinds),
        )
    return table
