"""``phoneprov device resync``, ``device restart`` (through the phones' REST API) and
``device rest-port`` (a phone whose web server listens on another port)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from phoneprov.cli.common import SiteOption, console, handle_errors, print_json, site_path
from phoneprov.config import load_settings
from phoneprov.model import MacAddress
from phoneprov.protocols.checksync import Pbx
from phoneprov.protocols.phonerest import Action
from phoneprov.provisioning.fleet_actions import (
    Result,
    check_sync_commands,
    send_action,
    set_rest_port,
)

MacsArgument = typer.Argument(None, help="MAC addresses of the phones (or --group / --all).")
GroupOption = typer.Option("", "--group", help="Every phone of this inventory group.")
AllOption = typer.Option(False, "--all", help="Every known or discovered phone.")
JsonOption = typer.Option(False, "--json", help="One JSON object per phone.")


def _show(results: list[Result], as_json: bool) -> None:
    if as_json:
        print_json(
            [
                {
                    "mac": r.mac.value,
                    "action": r.action.value,
                    "outcome": r.outcome.value,
                    "detail": r.detail,
                    "attempts": r.attempts,
                }
                for r in results
            ]
        )
    else:
        for r in results:
            colour = "green" if r.ok else "red"
            console.print(
                f"{r.mac}  [{colour}]{r.outcome.value}[/]  {escape(r.detail)}", highlight=False
            )
        accepted = sum(r.ok for r in results)
        console.print(f"{accepted} of {len(results)} phones accepted", highlight=False)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _run(
    action: Action, macs: list[str] | None, group: str, everyone: bool, site: Path | None
) -> list[Result]:
    settings = load_settings(site_path(site))
    parsed = [MacAddress.parse(m) for m in macs or []]
    return send_action(settings, action, parsed, group=group, everyone=everyone)


def register(app: typer.Typer) -> None:
    """Add ``resync``, ``restart``, ``rest-port`` and ``check-sync`` to the ``device`` group."""

    @app.command("resync")
    @handle_errors
    def resync(
        macs: list[str] | None = MacsArgument,
        group: str = GroupOption,
        everyone: bool = AllOption,
        as_json: bool = JsonOption,
        site: Path | None = SiteOption,
    ) -> None:
        """Make phones fetch their configuration now (REST API updateConfiguration).

        Each phone is asked at the address it last proved who it is from, over HTTPS,
        only if its certificate carries its MAC. Results go on each phone's timeline
        (`device show`); phones it cannot reach need a SIP NOTIFY check-sync from the PBX.
        Exit status 1 when a phone did not accept.
        """
        _show(_run(Action.RESYNC, macs, group, everyone, site), as_json)

    @app.command("restart")
    @handle_errors
    def restart(
        macs: list[str] | None = MacsArgument,
        group: str = GroupOption,
        everyone: bool = AllOption,
        as_json: bool = JsonOption,
        site: Path | None = SiteOption,
    ) -> None:
        """Restart phones once no call is up (REST API safeRestart); they boot and fetch
        their files and firmware. Same reach and results as `device resync`."""
        _show(_run(Action.RESTART, macs, group, everyone, site), as_json)

    @app.command("rest-port")
    @handle_errors
    def rest_port(
        mac: str = typer.Argument(..., help="The phone's MAC address."),
        port: int | None = typer.Argument(
            None, help="Its web server's port (httpd.cfg.secureTunnelPort on the phone)."
        ),
        default: bool = typer.Option(False, "--default", help="Use \\[fleet] rest_port again."),
        site: Path | None = SiteOption,
    ) -> None:
        """Reach one phone's REST API on another port than \\[fleet] rest_port (default 443)."""
        if (port is None) == (not default):
            raise typer.BadParameter("give a PORT or --default", param_hint="PORT")
        parsed = MacAddress.parse(mac)
        set_rest_port(load_settings(site_path(site)), parsed, None if default else port)
        where = "[fleet] rest_port" if default else f"port {port}"
        console.print(escape(f"{parsed}: resync and restart go to {where}"), highlight=False)

    @app.command("check-sync")
    @handle_errors
    def check_sync(
        macs: list[str] | None = MacsArgument,
        group: str = GroupOption,
        everyone: bool = AllOption,
        pbx: Pbx = typer.Option(..., "--pbx", help="asterisk or freeswitch."),
        profile: str = typer.Option("internal", help="FreeSWITCH: the phones' SIP profile."),
        site: Path | None = SiteOption,
    ) -> None:
        """Print the PBX command that makes each phone resync (SIP NOTIFY check-sync), for
        phones phoneprov cannot reach (no REST API, behind NAT). Run them on the PBX host;
        phoneprov sends no SIP itself. The endpoint is the user of the phone's line 1."""
        parsed = [MacAddress.parse(m) for m in macs or []]
        found = check_sync_commands(
            load_settings(site_path(site)), pbx, parsed, group=group, everyone=everyone,
            profile=profile,
        )  # fmt: skip
        for item in found:
            typer.echo(item.command if item.command else f"# {item.mac}: {item.note}")
