"""Lync/SfB device update packages: add, import a CAB layout, list, assign, show requests.

Plain functions, registered onto the ``phoneprov firmware`` group by ``register``
(``firmware add-ucupdate``), beside the Polycom firmware commands of cli/firmware.py.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from phoneprov.cli.common import OutputFormat, SiteOption, console, handle_errors, print_json
from phoneprov.cli.common import site_path as resolve_site
from phoneprov.config import load_settings
from phoneprov.model import MacAddress
from phoneprov.protocols.lync import PackageKey, version_key
from phoneprov.provisioning.lync.catalog import ADD_COMMAND, Package
from phoneprov.provisioning.lync.history import recent_requests
from phoneprov.provisioning.lync.packages import (
    add_package,
    assign_version,
    import_layout,
    site_catalog,
)

FormatOption = typer.Option(OutputFormat.text, "--format", help="text or json.")
GroupOption = typer.Option(
    "",
    "--group",
    help="Stage it: only devices of this inventory group run it (default: everyone).",
)
NoAssignOption = typer.Option(False, "--no-assign", help="Store it without assigning it.")


def _group(group: str, no_assign: bool) -> str | None:
    return None if no_assign else group


def _print_packages(packages: list[Package], output: OutputFormat, verb: str) -> None:
    if output is OutputFormat.json:
        print_json({"packages": [p.to_json() for p in packages]})
        return
    for package in packages:
        files = ", ".join(
            f"{f.name} ({f.size} bytes, sha256 {f.sha256[:16]}...)" for f in package.files
        )
        console.print(
            f"{verb} {escape(package.key.label())} {escape(package.version)} module "
            f"{escape(package.module)}: {escape(files)}",
            highlight=False,
            soft_wrap=True,
        )


@handle_errors
def add(
    files: list[Path] = typer.Argument(
        ..., metavar="FILE...", help="The image (e.g. CPE.nbt) and any files beside it."
    ),
    device_type: str = typer.Option("UCPhone", "--type", help="Device type (UCPhone, 3PIP)."),
    vendor: str = typer.Option("Polycom", "--vendor", help="Vendor as the device reports it."),
    model: str = typer.Option(..., "--model", help="Model as the device reports it (CX700)."),
    revision: str = typer.Option("A", "--revision", help="Hardware revision."),
    locale: str = typer.Option("ENU", "--locale", help="Locale (ENU, DEU, ...)."),
    version: str = typer.Option(..., "--version", help="Version of the image (1.0.522.101)."),
    module: str = typer.Option("", "--module", help="Module name (default: the file's stem)."),
    group: str = GroupOption,
    no_assign: bool = NoAssignOption,
    site: Path | None = SiteOption,
    output: OutputFormat = FormatOption,
) -> None:
    """Add a device update image (stored once by sha256) and assign it."""
    settings = load_settings(resolve_site(site))
    key = PackageKey(device_type, vendor, model, revision, locale)
    package = add_package(
        settings, files, key, version, module=module, group=_group(group, no_assign)
    )
    _print_packages([package], output, "added")


@handle_errors
def import_cab(
    directory: Path = typer.Argument(
        ..., metavar="DIR", help="Folder the update CAB was extracted to."
    ),
    group: str = GroupOption,
    no_assign: bool = NoAssignOption,
    site: Path | None = SiteOption,
    output: OutputFormat = FormatOption,
) -> None:
    """Import an extracted Microsoft update CAB (<type>/<vendor>/<model>/<revision>/<locale>/
    <version>/<module>/<files>); the newest version per model is assigned."""
    settings = load_settings(resolve_site(site))
    packages = import_layout(settings, directory, group=_group(group, no_assign))
    _print_packages(packages, output, "imported")


@handle_errors
def list_packages(
    site: Path | None = SiteOption,
    output: OutputFormat = FormatOption,
) -> None:
    """List device update packages and which version each group runs."""
    settings = load_settings(resolve_site(site))
    catalog = site_catalog(settings)
    if output is OutputFormat.json:
        print_json(
            {
                "packages": [p.to_json() for p in catalog.packages],
                "assignments": [a.to_json() for a in catalog.assignments],
            }
        )
        return
    if not catalog.packages:
        console.print(f"no device update packages; add one with `{ADD_COMMAND}`")
        return
    table = Table("device", "version", "module", "files", "runs on")
    for package in sorted(catalog.packages, key=lambda p: (p.key, version_key(p.version))):
        groups = [
            a.group or "everyone"
            for a in catalog.assignments
            if a.key.folded() == package.key.folded() and a.version == package.version
        ]
        table.add_row(
            escape(package.key.label()),
            escape(package.version),
            escape(package.module),
            escape(", ".join(f"{f.name} ({f.size})" for f in package.files)),
            ", ".join(sorted(groups)) or "-",
        )
    console.print(table)


@handle_errors
def assign(
    model: str = typer.Option(..., "--model", help="Model (CX700)."),
    version: str = typer.Option(..., "--version", help="Version to run."),
    group: str = GroupOption,
    device_type: str = typer.Option("", "--type", help="Narrow the match: device type."),
    vendor: str = typer.Option("", "--vendor", help="Narrow the match: vendor."),
    revision: str = typer.Option("", "--revision", help="Narrow the match: revision."),
    locale: str = typer.Option("", "--locale", help="Narrow the match: locale."),
    site: Path | None = SiteOption,
) -> None:
    """Say which version a group (or everyone) runs: the staged rollout."""
    settings = load_settings(resolve_site(site))
    key = assign_version(
        settings,
        version,
        group,
        model=model,
        device_type=device_type,
        vendor=vendor,
        revision=revision,
        locale=locale,
    )
    console.print(
        f"{escape(key.label())}: {escape(group or 'everyone')} runs {escape(version)}",
        highlight=False,
    )


@handle_errors
def requests(
    mac: str = typer.Argument(..., help="The device's MAC."),
    limit: int = typer.Option(10, "--limit", min=1, max=50, help="How many, newest first."),
    raw: bool = typer.Option(False, "--raw", help="Print the XML bodies as the device sent them."),
    site: Path | None = SiteOption,
    output: OutputFormat = FormatOption,
) -> None:
    """Show a device's latest update requests (what it reported, what it was offered)."""
    rows = recent_requests(load_settings(resolve_site(site)), MacAddress.parse(mac), limit)
    if output is OutputFormat.json:
        print_json(
            [
                {
                    "time": r.time,
                    "ip": r.ip,
                    "side": r.side,
                    "package": r.package,
                    "reported": r.reported,
                    "offered": r.offered,
                    "outcome": r.outcome,
                    "body": r.body,
                }
                for r in rows
            ]
        )
        return
    for row in rows:
        console.print(
            f"{row.time:.0f} {escape(str(row.ip))} {escape(str(row.side))} {escape(row.package)} "
            f"reported {escape(row.reported or '-')}: {escape(str(row.outcome))} "
            f"{escape(row.offered)}",
            highlight=False,
        )
        if raw:
            console.print(escape(row.body), highlight=False, soft_wrap=True)


# Names on the ``phoneprov firmware`` group, next to the Polycom firmware commands.
COMMANDS = (
    ("add-ucupdate", add),
    ("import-ucupdate", import_cab),
    ("list-ucupdate", list_packages),
    ("assign-ucupdate", assign),
    ("ucupdate-requests", requests),
)


def register(group: typer.Typer) -> None:
    """Add the device update commands to ``group`` (the ``firmware`` group)."""
    for name, command in COMMANDS:
        group.command(name)(command)
