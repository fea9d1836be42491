"""``phoneprov device``: the inventory (add, import, export, list, show, remove, approve,
quarantine)."""

from __future__ import annotations

import datetime as dt
import enum
import sys
from collections.abc import Sequence
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from phoneprov.cli import fleet
from phoneprov.cli.common import (
    SiteOption,
    console,
    err_console,
    handle_errors,
    print_json,
    site_path,
)
from phoneprov.config import Settings, load_settings
from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.provisioning.devicecsv import Problem, write_csv
from phoneprov.provisioning.devices import (
    BadRowsError,
    add_device,
    approve_device,
    import_devices,
    list_devices,
    quarantine_device,
    remove_device,
    show_device,
)
from phoneprov.provisioning.firmware import LOOP_FLAG
from phoneprov.records import DeviceRecord, InventoryEntry

app = typer.Typer(
    help="The inventory: phones, their model, group, label and SIP lines.", no_args_is_help=True
)
PROGRESS_FROM = 1000  # rows; smaller files import without a progress bar
fleet.register(app)  # device resync, device restart


class ListFormat(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _settings(site: Path | None) -> Settings:
    return load_settings(site_path(site))


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@app.command("add")
@handle_errors
def add(
    mac: str = typer.Argument(..., help="MAC in any usual form (00:04:f2:ab:cd:ef, 0004f2abcdef)."),
    site: Path | None = SiteOption,
    model: str | None = typer.Option(None, help="Model as the phone names it, e.g. VVX410."),
    site_name: str | None = typer.Option(None, "--site-name", help="Site label for the phone."),
    group: str | None = typer.Option(None, help="Group (template layer, firmware rollout)."),
    label: str | None = typer.Option(None, help="Label shown on line 1, e.g. 'Front desk'."),
    line: list[str] = typer.Option(
        [], "--line", help="N:ext=1001,user=1001,password=...,server=pbx.example.com (repeat)."
    ),
) -> None:
    """Add a phone to the inventory, or change the fields given for one already in it."""
    entry = add_device(
        _settings(site),
        MacAddress.parse(mac),
        model=model,
        site=site_name,
        group=group,
        label=label,
        lines=line,
    )
    console.print(
        f"{entry.mac}: {escape(entry.model or 'model unknown')}, group "
        f"{escape(entry.group or '-')}, {len(entry.lines)} line(s)",
        highlight=False,
    )


def _report(problems: Sequence[Problem]) -> None:
    table = Table("row", "column", "value", "reason", title="rows that cannot be imported")
    for p in problems:
        table.add_row(str(p.row), p.column, escape(p.value), escape(p.reason))
    err_console.print(table)


@app.command("import")
@handle_errors
def import_(
    file: Path = typer.Argument(
        ...,
        help="CSV with a header: mac, model, site, group, label, "
        "line1_ext, line1_user, line1_password, line1_server, ...",
    ),
    site: Path | None = SiteOption,
    skip_bad: bool = typer.Option(
        False,
        "--skip-bad",
        help="Import the good rows even if "
        "some are bad (default: import nothing when any row is bad).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check the file, store nothing."),
) -> None:
    """Import phones from CSV; existing phones are updated in place."""
    if not file.is_file():
        raise InputError(f"{file} does not exist", "Give the path of a CSV file.")
    settings = _settings(site)
    with file.open(newline="", encoding="utf-8-sig") as stream:
        total = sum(1 for _ in stream) - 1
        stream.seek(0)
        try:
            with Progress(
                TextColumn("checking"),
                BarColumn(),
                MofNCompleteColumn(),
                console=err_console,
                disable=total < PROGRESS_FROM,
                transient=True,
            ) as progress:
                task = progress.add_task("rows", total=max(total, 1))
                result = import_devices(
                    settings,
                    stream,
                    str(file),
                    skip_bad=skip_bad,
                    dry_run=dry_run,
                    progress=lambda done: progress.update(task, completed=done),
                )
        except BadRowsError as error:
            _report(error.problems)
            raise
    plan = result.plan
    if plan.problems:
        _report(plan.problems)
    if result.saved is None:
        console.print(f"{len(plan.entries)} rows would be imported (dry run)")
        return
    skipped = f", {len(plan.bad_rows)} bad rows skipped" if plan.problems else ""
    console.print(
        f"imported {len(plan.entries)} phones: {result.saved.created} new, "
        f"{result.saved.updated} updated{skipped}"
    )


@app.command("export")
@handle_errors
def export(
    site: Path | None = SiteOption,
    output: Path | None = typer.Option(None, "--output", "-o", help="File (default: stdout)."),
    with_passwords: bool = typer.Option(
        False,
        "--with-passwords",
        help="Include SIP passwords (without: re-import keeps the stored ones).",
    ),
) -> None:
    """Write the inventory as CSV, in the form `device import` reads."""
    entries = [entry for _, entry in list_devices(_settings(site))]
    if output is None:
        write_csv(entries, sys.stdout, passwords=with_passwords)
        return
    with output.open("w", newline="", encoding="utf-8") as out:
        count = write_csv(entries, out, passwords=with_passwords)
    err_console.print(f"{count} phones written to {escape(str(output))}", highlight=False)


def _row(record: DeviceRecord, entry: InventoryEntry) -> dict[str, object]:
    return {
        "mac": record.mac.value,
        "status": record.status.value,
        "model": entry.model or record.model,
        "group": entry.group,
        "site": entry.site,
        "label": entry.label,
        "lines": len(entry.lines),
        "firmware": record.firmware,
        "last_seen": _when(record.last_seen) if record.last_seen else "",
        "flags": list(record.flags),
    }


@app.command("list")
@handle_errors
def list_(
    site: Path | None = SiteOption,
    site_name: str | None = typer.Option(None, "--site-name", help="Only phones of this site."),
    group: str | None = typer.Option(None, help="Only phones of this group."),
    pending: bool = typer.Option(False, "--pending", help="Only quarantined phones."),
    format: ListFormat = typer.Option(ListFormat.table, "--format"),
) -> None:
    """List phones: inventory and the ones that asked for files."""
    rows = list_devices(_settings(site), site=site_name, group=group, pending=pending)
    if format is ListFormat.json:
        print_json([_row(record, entry) for record, entry in rows])
        return
    if format is ListFormat.csv:
        write_csv([entry for _, entry in rows], sys.stdout, passwords=False)
        return
    table = Table(
        "mac",
        "status",
        "model",
        "group",
        "site",
        "label",
        "lines",
        "firmware",
        "last seen",
        "flags",
    )
    for record, entry in rows:
        r = _row(record, entry)
        table.add_row(
            *(escape(", ".join(v) if isinstance(v, list) else str(v)) for v in r.values())
        )
    console.print(table)


@app.command("show")
@handle_errors
def show(
    mac: str,
    site: Path | None = SiteOption,
    format: ListFormat = typer.Option(ListFormat.table, "--format"),
) -> None:
    """Everything known about one phone, and the settings its user changed on it."""
    details = show_device(_settings(site), MacAddress.parse(mac))
    record, entry, fetched, events = details.record, details.entry, details.fetched, details.events
    info = _row(record, entry)
    info.update(
        first_seen=_when(record.first_seen),
        ip=record.ip,
        protocol=record.protocol,
        stage=record.stage,
        cert_kind=record.cert_kind,
        user_agent=record.user_agent,
        requests=record.requests,
        lines=[
            {
                "line": ln.index,
                "ext": ln.ext,
                "user": ln.user,
                "server": ln.server,
                "password": "set" if ln.password else "",
            }
            for ln in entry.lines
        ],
        firmware_fetches={"version": fetched[0], "count": fetched[1]} if fetched else {},
        overrides=dict(details.overrides),
        events=[{"time": _when(e.time), "kind": e.kind, "detail": e.detail} for e in events],
    )
    if format is not ListFormat.table:
        print_json(info)
        return
    for key in (
        "mac",
        "status",
        "model",
        "group",
        "site",
        "label",
        "firmware",
        "ip",
        "protocol",
        "stage",
        "cert_kind",
        "first_seen",
        "last_seen",
        "requests",
        "user_agent",
    ):
        console.print(f"{key:>11}: {escape(str(info[key]))}", highlight=False)
    if LOOP_FLAG in record.flags and fetched:
        console.print(
            f"[bold red]{'flags':>11}: firmware loop[/]: fetched {escape(fetched[0])} "
            f"{fetched[1]} times, still reports {escape(record.firmware or 'nothing')}. "
            "Another update source (e.g. a Skype for Business device update server) "
            "is installing a different version.",
            highlight=False,
        )
    elif record.flags:
        console.print(f"{'flags':>11}: {', '.join(record.flags)}", highlight=False)
    for ln in entry.lines:
        console.print(
            f"{'line ' + str(ln.index):>11}: ext {escape(ln.ext)}, user {escape(ln.user)}, "
            f"server {escape(ln.server or '-')}, password {'set' if ln.password else 'none'}",
            highlight=False,
        )
    if events:
        console.print("\n[bold]recent events[/] (uploads, CSRs, refusals):")
        for event in events:
            console.print(
                f"  {_when(event.time)}  {event.kind:<14} {escape(event.detail)}",
                highlight=False,
                soft_wrap=True,
            )
    for name, text in details.overrides.items():
        console.print(f"\n[bold]{name}[/] (changed on the phone):")
        console.print(escape(text), highlight=False, soft_wrap=True)


@app.command("remove")
@handle_errors
def remove(mac: str, site: Path | None = SiteOption) -> None:
    """Remove a phone from the inventory (it is recorded again if it asks for files)."""
    remove_device(_settings(site), MacAddress.parse(mac))
    console.print(f"{MacAddress.parse(mac)} removed")


@app.command("approve")
@handle_errors
def approve(mac: str, site: Path | None = SiteOption) -> None:
    """Let a quarantined phone get its configuration (pending -> known)."""
    approval = approve_device(_settings(site), MacAddress.parse(mac))
    console.print(
        f"{MacAddress.parse(mac)}: {approval.previous.value} -> known "
        "(takes effect within 5 seconds)",
        markup=False,
    )
    for path in approval.released:
        console.print(f"released held upload {path}", markup=False, highlight=False)


@app.command("quarantine")
@handle_errors
def quarantine(mac: str, site: Path | None = SiteOption) -> None:
    """Hold a phone: it gets no configuration (and its uploads wait) until approved."""
    phone = MacAddress.parse(mac)
    previous = quarantine_device(_settings(site), phone)
    console.print(
        f"{phone}: {previous.value} -> pending (takes effect within 5 seconds); "
        f"release it with `phoneprov device approve {phone}`",
        markup=False,
    )
