"""``phoneprov db``: the site database's schema (``db upgrade [--check]``)."""

from __future__ import annotations

from pathlib import Path

import typer

from phoneprov import __version__
from phoneprov.cli.common import SiteOption, console, handle_errors, site_path
from phoneprov.config import load_settings
from phoneprov.provisioning.database import check_schema, upgrade_schema

app = typer.Typer(help="The site database: schema upgrades.", no_args_is_help=True)


@app.command("upgrade")
@handle_errors
def upgrade(
    site: Path | None = SiteOption,
    check: bool = typer.Option(
        False,
        "--check",
        help="Change nothing; exit 1 when the schema is older than this phoneprov's.",
    ),
) -> None:
    """Bring the database schema up to this phoneprov release (stop the servers first)."""
    settings = load_settings(site_path(site))
    if check:
        status = check_schema(settings)
        if status.pending:
            console.print(
                f"database schema version {status.before}; phoneprov {__version__} needs "
                f"version {status.code} ({status.pending} migration(s) to apply). "
                "Run `phoneprov db upgrade` (docs/upgrade.md).",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1)
        console.print(
            f"database schema version {status.after}: current for phoneprov {__version__}",
            highlight=False,
            soft_wrap=True,
        )
        return
    status = upgrade_schema(settings)
    if status.after == status.before:
        console.print(
            f"database schema version {status.after}: already current, nothing to do",
            highlight=False,
            soft_wrap=True,
        )
        return
    console.print(
        f"database schema upgraded from version {status.before} to {status.after} "
        f"({status.after - status.before} migration(s) applied)",
        highlight=False,
        soft_wrap=True,
    )
