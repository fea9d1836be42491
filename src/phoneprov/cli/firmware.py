"""``phoneprov firmware``: the firmware catalog (add, assign, list)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from phoneprov.cli.common import SiteOption, console, handle_errors, print_json, site_path
from phoneprov.config import load_settings
from phoneprov.provisioning.firmware import add_firmware, assign_firmware, list_firmware

app = typer.Typer(
    help="Firmware images per model and group (staged rollouts).", no_args_is_help=True
)


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@app.command("add")
@handle_errors
def add(
    file: Path = typer.Argument(..., help="The image (sip.ld or <part>.sip.ld)."),
    version: str = typer.Option(..., help="Its version, e.g. 5.9.8.5760 (what sip.ver says)."),
    models: str = typer.Option("", help="Models it is for, e.g. VVX410,VVX500."),
    part: str = typer.Option("", help="Part number when the image is <part>.sip.ld."),
    site: Path | None = SiteOption,
) -> None:
    """Store an image by its sha256 (stored once however often it is added)."""
    added = add_firmware(
        load_settings(site_path(site)), file, version, models=_split(models), part=part
    )
    record = added.image
    name = f"{record.part}.sip.ld" if record.part else "sip.ld"
    console.print(
        escape(
            f"{name} {record.version}: {record.size} bytes, sha256 {record.sha256}"
            f"{'' if added.new else ' (same bytes already stored)'}"
        ),
        highlight=False,
    )


@app.command("assign")
@handle_errors
def assign(
    version: str = typer.Option(..., help="A version in the catalog."),
    models: str = typer.Option(
        "", help="Models to move to it (default: the models its images name)."
    ),
    group: str = typer.Option("", help="Move only this group's phones (staged rollout)."),
    site: Path | None = SiteOption,
) -> None:
    """Say which version phones run: per model, or for one group first."""
    targets = assign_firmware(
        load_settings(site_path(site)), version, models=_split(models), group=group
    )
    console.print(
        f"{escape(version)} assigned to {escape(', '.join(targets))}; phones pick it up at "
        "their next boot or poll",
        highlight=False,
    )


@app.command("list")
@handle_errors
def list_(site: Path | None = SiteOption, json: bool = typer.Option(False, "--json")) -> None:
    """Images in the catalog and the version each model and group runs."""
    listing = list_firmware(load_settings(site_path(site)))
    images, assignments = listing.images, listing.assignments
    if json:
        print_json(
            {
                "images": [
                    {
                        "version": i.version,
                        "part": i.part,
                        "models": list(i.models),
                        "sha256": i.sha256,
                        "size": i.size,
                    }
                    for i in images
                ],
                "assignments": [
                    {"scope": a.scope, "target": a.target, "version": a.version}
                    for a in assignments
                ],
            }
        )
        return
    table = Table("version", "file", "models", "size", "sha256")
    for i in images:
        table.add_row(
            escape(i.version),
            escape(f"{i.part}.sip.ld" if i.part else "sip.ld"),
            escape(", ".join(i.models) or "any"),
            str(i.size),
            i.sha256[:16],
        )
    console.print(table)
    assigned = Table("scope", "target", "version")
    for a in assignments:
        assigned.add_row(escape(a.scope), escape(a.target), escape(a.version))
    console.print(assigned)
