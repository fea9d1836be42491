"""The ``phoneprov`` command: each verb group is imported only when it is run.

The server and database libraries take over a second to import; an
administrator's ``phoneprov cert inspect`` or ``phoneprov version`` should not
pay for ``serve``'s. ``LazyGroup`` lists every command by name and imports its
module when click asks for it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

import typer

# typer 0.29 carries its own copy of click; its group methods take that copy's types.
from typer._click.core import Command, Context
from typer.core import TyperGroup

from phoneprov import __version__
from phoneprov.provisioning.file_modes import SITE_UMASK


def _attr(module: str, name: str) -> Callable[[], Any]:
    return lambda: getattr(importlib.import_module(module), name)


def _firmware() -> typer.Typer:
    from phoneprov.cli import firmware, lync, rollout

    if not getattr(firmware.app, "_phoneprov_lync", False):
        lync.register(firmware.app)
        rollout.register_compliance(firmware.app)  # firmware compliance
        firmware.app._phoneprov_lync = True  # type: ignore[attr-defined]
    return firmware.app


# Command name -> loader returning a typer.Typer (a group) or a function (a command).
COMMANDS: dict[str, Callable[[], Any]] = {
    "init": _attr("phoneprov.cli.site", "init"),
    "serve": _attr("phoneprov.cli.site", "serve"),
    "trust": _attr("phoneprov.cli.site", "trust_app"),
    "account": _attr("phoneprov.cli.site", "account_app"),
    "ca": _attr("phoneprov.cli.ca", "app"),
    "cert": _attr("phoneprov.cli.cert", "app"),
    "dhcp": _attr("phoneprov.cli.dhcp", "app"),
    "device": _attr("phoneprov.cli.device", "app"),
    "firmware": _firmware,
    "rollout": _attr("phoneprov.cli.rollout", "app"),
    "render": _attr("phoneprov.cli.render", "render"),
    "logs": _attr("phoneprov.cli.logs", "app"),
    "doctor": _attr("phoneprov.cli.doctor", "doctor"),
    "import": _attr("phoneprov.cli.importer", "app"),
    "simulate": _attr("phoneprov.cli.simulate", "simulate"),
    "bench": _attr("phoneprov.cli.bench", "app"),
    "backup": _attr("phoneprov.cli.backup", "backup"),
    "restore": _attr("phoneprov.cli.backup", "restore"),
    "db": _attr("phoneprov.cli.db", "app"),
    "cluster": _attr("phoneprov.cli.cluster", "app"),
    "edge": _attr("phoneprov.cli.edge", "app"),
    "service": _attr("phoneprov.cli.service", "app"),
    "admin": _attr("phoneprov.cli.admin", "app"),
    "audit": _attr("phoneprov.cli.audit", "app"),
}


class LazyGroup(TyperGroup):
    """A click group whose subcommands are built from their modules on first use."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [*COMMANDS, *super().list_commands(ctx)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        loader = COMMANDS.get(cmd_name)
        if loader is None:
            return super().get_command(ctx, cmd_name)
        target = loader()
        if isinstance(target, typer.Typer):
            # get_group: a group with one command (logs analyze) must stay a group;
            # get_command would collapse it into that command.
            command: Command = typer.main.get_group(target)
        else:
            single = typer.Typer(add_completion=False)
            single.command(cmd_name)(target)
            command = typer.main.get_command(single)
        command.name = cmd_name
        return command


app = typer.Typer(
    name="phoneprov",
    cls=LazyGroup,
    help="Provisioning server for Polycom/Poly phones: HTTP digest, HTTPS mutual TLS, "
    "FTP and TFTP from one boot directory, with its own CA and DHCP option values.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def root(
    _version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the phoneprov version and exit.",
    ),
) -> None:
    """Provisioning server for Polycom/Poly phones."""


@app.command("version")
def version() -> None:
    """Print the phoneprov version."""
    typer.echo(__version__)


def main() -> None:
    # Nothing phoneprov creates (database, logs, uploads, exports) is for other users:
    # files 0640, folders 0750 (provisioning/file_modes.py, docs/security.md).
    os.umask(SITE_UMASK)
    app()
