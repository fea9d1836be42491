"""``phoneprov service install`` and ``uninstall``: phoneprov as a systemd service."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from phoneprov.cli.common import OutputFormat, console, handle_errors, print_json
from phoneprov.provisioning.install import LINK, LINK_TARGET, InstallPlan, install_service
from phoneprov.provisioning.uninstall import UninstallPlan, uninstall_service

app = typer.Typer(
    help="Run phoneprov as a systemd service: install it, or remove it again.",
    no_args_is_help=True,
)

RootOption = typer.Option(
    Path("/"),
    "--root",
    help="Install into this staging folder instead of the machine (packagers, tests); "
    "nothing outside it changes.",
)
DryRunOption = typer.Option(
    False,
    "--dry-run",
    help="Print every step and every file (path, mode, content); change nothing.",
)
FormatOption = typer.Option(OutputFormat.text, "--format", help="text or json.")


def _progress(text: str) -> None:
    console.print(f"  {text}", markup=False, highlight=False, soft_wrap=True)


def _where(root: Path) -> str:
    return "" if root == Path("/") else f" under {root}"


@app.command("install")
@handle_errors
def install(
    fqdn: list[str] = typer.Option(
        [],
        "--fqdn",
        help="Name or IP phones use to reach this server (repeat for more); needed when "
        "the site does not exist yet.",
    ),
    source: str | None = typer.Option(
        None,
        "--source",
        help="What pip installs: a source folder, a wheel or a requirement "
        "(default: the folder this phoneprov was installed from, else this version).",
    ),
    root: Path = RootOption,
    dry_run: bool = DryRunOption,
    output: OutputFormat = FormatOption,
) -> None:
    """Install phoneprov as a hardened systemd service (as root; docs/service.md).

    A system user, phoneprov in /opt/phoneprov, the site in /var/lib/phoneprov,
    the unit and a logrotate rule. It starts nothing.
    """
    json_output = output is OutputFormat.json
    if not dry_run and not json_output:
        console.print(f"installing phoneprov{escape(_where(root))}:", highlight=False)
    plan = install_service(
        root,
        source=source,
        fqdns=tuple(fqdn),
        dry_run=dry_run,
        progress=None if json_output else _progress,
    )
    if json_output:
        print_json(_install_json(plan))
        return
    if dry_run:
        _show_dry_install(plan)
    else:
        console.print(f"[green]installed[/] phoneprov{escape(_where(plan.root))}", highlight=False)
    for note in plan.notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)


def _show_dry_install(plan: InstallPlan) -> None:
    """Every step, then every file whole (``==> path (mode) <==`` before each), then the link."""
    console.print(
        f"--dry-run: nothing changed. Install{escape(_where(plan.root))} would:", highlight=False
    )
    for number, step in enumerate(plan.steps, 1):
        _progress(f"{number}. {step}")
    for planned in plan.files:
        console.print(
            f"\n==> {planned.path} (mode {planned.mode:04o}) <==", markup=False, highlight=False
        )
        console.file.flush()
        sys.stdout.write(planned.content)  # as written: no markup, no wrapping
        sys.stdout.flush()
    console.print(f"\n==> {LINK} -> {LINK_TARGET} (link) <==\n", markup=False, highlight=False)


def _install_json(plan: InstallPlan) -> dict[str, object]:
    return {
        "root": str(plan.root),
        "source": plan.source,
        "done": plan.done,
        "steps": list(plan.steps),
        "files": [
            {"path": str(f.path), "mode": f"{f.mode:04o}", "content": f.content} for f in plan.files
        ],
        "link": {"path": str(LINK), "target": LINK_TARGET},
        "notes": list(plan.notes),
    }


@app.command("uninstall")
@handle_errors
def uninstall(
    purge: bool = typer.Option(
        False,
        "--purge",
        help="Also remove the site (settings, CA, keys, database, uploads, logs), "
        "your drop-ins and the system user.",
    ),
    root: Path = RootOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would go; change nothing."),
    output: OutputFormat = FormatOption,
) -> None:
    """Remove what `service install` wrote; the site stays unless --purge (as root)."""
    json_output = output is OutputFormat.json
    if dry_run and not json_output:
        console.print(
            f"--dry-run: nothing changed. Uninstall{escape(_where(root))} would:", highlight=False
        )
    elif not json_output:
        console.print(f"uninstalling phoneprov{escape(_where(root))}:", highlight=False)
    plan = uninstall_service(
        root,
        purge=purge,
        dry_run=dry_run,
        progress=None if json_output or dry_run else _progress,
    )
    if json_output:
        print_json(_uninstall_json(plan))
        return
    if dry_run:
        for step in plan.steps:
            _progress(step)
    elif plan.steps:
        console.print(f"[green]removed[/] phoneprov{escape(_where(plan.root))}", highlight=False)
    if not plan.steps:
        console.print(
            f"nothing to remove: phoneprov is not installed{escape(_where(plan.root))}",
            highlight=False,
        )
    for kept in plan.kept:
        console.print(f"kept: {kept}", markup=False, highlight=False, soft_wrap=True)


def _uninstall_json(plan: UninstallPlan) -> dict[str, object]:
    return {
        "root": str(plan.root),
        "done": plan.done,
        "steps": list(plan.steps),
        "kept": list(plan.kept),
    }
