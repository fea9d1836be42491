"""The ``phoneprov`` command: registers each verb group."""

from __future__ import annotations

import typer

from phoneprov import __version__
from phoneprov.cli import bench as bench_cmds
from phoneprov.cli import ca as ca_cmds
from phoneprov.cli import cert as cert_cmds
from phoneprov.cli import device as device_cmds
from phoneprov.cli import dhcp as dhcp_cmds
from phoneprov.cli import doctor as doctor_cmd
from phoneprov.cli import firmware as firmware_cmds
from phoneprov.cli import logs as logs_cmds
from phoneprov.cli import render as render_cmd
from phoneprov.cli import simulate as simulate_cmd
from phoneprov.cli import site as site_cmds
from phoneprov.cli import ucupdate as ucupdate_cmds

app = typer.Typer(
    name="phoneprov",
    help="Provisioning server for Polycom/Poly phones: HTTP digest, HTTPS mutual TLS, "
    "FTP and TFTP from one boot directory, with its own CA and DHCP option values.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

site_cmds.register(app)
app.add_typer(ca_cmds.app, name="ca")
app.add_typer(cert_cmds.app, name="cert")
app.add_typer(dhcp_cmds.app, name="dhcp")
app.add_typer(logs_cmds.app, name="logs")
app.add_typer(device_cmds.app, name="device")
app.add_typer(firmware_cmds.app, name="firmware")
app.command("render")(render_cmd.render)
ucupdate_cmds.register(firmware_cmds.app)
app.command("simulate")(simulate_cmd.simulate)
app.add_typer(bench_cmds.app, name="bench")
app.command("doctor")(doctor_cmd.doctor)


@app.command("version")
def version() -> None:
    """Print the phoneprov version."""
    typer.echo(__version__)


def main() -> None:
    app()
