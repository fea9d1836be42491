"""``phoneprov audit``: the audit trail of changes made through the CLI and the admin API."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from phoneprov.cli.common import SiteOption, console, handle_errors, print_json, site_path
from phoneprov.config import load_settings
from phoneprov.provisioning.admin_api import audit_entries

app = typer.Typer(help="The audit trail: who changed what, and when.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_(
    site: Path | None = SiteOption,
    limit: int = typer.Option(50, "--limit", min=1, max=10000, help="Entries, newest first."),
    actor: str | None = typer.Option(None, "--actor", help="Only this actor (cli:root, ...)."),
    target: str | None = typer.Option(None, "--target", help="Only this target (a MAC, ...)."),
    action: str | None = typer.Option(None, "--action", help="Only this action (device.add)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List audit entries, newest first (secrets are masked when recorded)."""
    settings = load_settings(site_path(site))
    entries = audit_entries(settings, limit=limit, actor=actor, target=target, action=action)
    if as_json:
        print_json(
            [
                {
                    "id": e.id,
                    "time": e.time,
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "changes": e.changes,
                }
                for e in entries
            ]
        )
        return
    table = Table("id", "time (UTC)", "actor", "action", "target", "changes")
    for e in entries:
        when = dt.datetime.fromtimestamp(e.time, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        changes = json.dumps(e.changes, sort_keys=True, default=str)
        table.add_row(str(e.id), when, Text(e.actor), Text(e.action), Text(e.target), Text(changes))
    console.print(table)
