"""``phoneprov backup FILE`` and ``phoneprov restore FILE --site DIR``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from phoneprov.cli.common import SiteOption, console, handle_errors, site_path
from phoneprov.config import load_settings
from phoneprov.errors import InputError
from phoneprov.provisioning.backup import backup_site
from phoneprov.provisioning.restore import restore_site

PassphraseOption = typer.Option(
    False,
    "--passphrase-stdin",
    help="Read a passphrase from the first line of standard input "
    "(backup: encrypt with it; restore: decrypt).",
)


def _passphrase(wanted: bool) -> str | None:
    """The first line of standard input when asked for, without its line ending."""
    if not wanted:
        return None
    if sys.stdin.isatty():
        raise InputError(
            "--passphrase-stdin reads the passphrase from a pipe or file, not the terminal",
            "Pipe it in, e.g. `phoneprov backup FILE --passphrase-stdin < /root/backup.pass`.",
        )
    return sys.stdin.readline().rstrip("\r\n")


@handle_errors
def backup(
    file: Path = typer.Argument(..., help="The archive to write (a .tar.gz, or encrypted)."),
    site: Path | None = SiteOption,
    passphrase_stdin: bool = PassphraseOption,
    force: bool = typer.Option(False, "--force", help="Replace FILE if it exists."),
) -> None:
    """Back up the site and a consistent snapshot of its database into one archive (0600)."""
    report = backup_site(
        load_settings(site_path(site)), file, passphrase=_passphrase(passphrase_stdin), force=force
    )
    sealed = ", encrypted" if report.encrypted else ""
    console.print(
        f"backup written: {escape(str(report.path))} ({report.size:,} bytes{sealed}): "
        f"{report.files} files, {report.database} database at schema version "
        f"{report.schema_version}",
        highlight=False,
        soft_wrap=True,
    )
    if report.skipped:
        shown = ", ".join(escape(name) for name in report.skipped[:10])
        more = f" and {len(report.skipped) - 10} more" if len(report.skipped) > 10 else ""
        console.print(
            f"[yellow]left out[/] {len(report.skipped)} symbolic link(s) or special file(s): "
            f"{shown}{more}. Copy what they point to into the site to have it backed up.",
            highlight=False,
            soft_wrap=True,
        )


@handle_errors
def restore(
    file: Path = typer.Argument(..., help="An archive written by `phoneprov backup`."),
    site: Path | None = SiteOption,
    passphrase_stdin: bool = PassphraseOption,
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace an existing site (kept as DIR.before-restore-TIME) and the database "
        "its phoneprov.toml names.",
    ),
) -> None:
    """Restore a site and its database from a backup, after checking every checksum."""
    report = restore_site(
        file, site_path(site), passphrase=_passphrase(passphrase_stdin), force=force
    )
    console.print(
        f"restored {report.files} files and the {report.database} database (schema version "
        f"{report.schema_version}) into {escape(str(report.site_dir))}, from a backup of "
        f"{escape(report.created)} by phoneprov {escape(report.made_by)}",
        highlight=False,
        soft_wrap=True,
    )
    if report.replaced is not None:
        console.print(
            f"the site it replaced is in {escape(str(report.replaced))}",
            highlight=False,
            soft_wrap=True,
        )
    if report.schema_version < report.code_schema_version:
        console.print(
            f"Its database schema (version {report.schema_version}) is older than this "
            f"phoneprov's ({report.code_schema_version}): run `phoneprov db upgrade` before "
            "`serve`; an older release that uses that schema runs it as it is.",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"Start the server, then check it: phoneprov doctor --site {escape(str(report.site_dir))}",
        highlight=False,
        soft_wrap=True,
    )
