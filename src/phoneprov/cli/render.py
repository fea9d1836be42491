"""``phoneprov render MAC [FILE]``: exactly what a phone would get, secrets masked."""

from __future__ import annotations

import sys
from contextlib import closing
from pathlib import Path

import typer
from rich.markup import escape

from phoneprov.cli.common import SiteOption, console, handle_errors, site_path
from phoneprov.config import load_settings
from phoneprov.model import MacAddress
from phoneprov.provisioning.preview import preview_files


@handle_errors
def render(
    mac: str = typer.Argument(..., help="The phone's MAC (any usual form)."),
    file: str | None = typer.Argument(
        None,
        help="One file, e.g. 000000000000.cfg, "
        "initial.cfg, site.cfg, <mac>-phone-secrets.cfg "
        "(default: the master file and every file it lists).",
    ),
    site: Path | None = SiteOption,
    show_secrets: bool = typer.Option(
        False, "--show-secrets", help="Show SIP passwords instead of ********."
    ),
    bootstrap: bool = typer.Option(
        False, "--bootstrap", help="As served over HTTP/TFTP (phase 1) instead of over mutual TLS."
    ),
) -> None:
    """Preview the files phoneprov renders for one phone, as the phone would get them."""
    settings = load_settings(site_path(site))
    device = MacAddress.parse(mac)
    files = preview_files(settings, device, file, bootstrap=bootstrap, masked=not show_secrets)
    with closing(files):
        for shown in files:
            if shown.body is None:
                console.print(
                    f"==> {escape(shown.name)}: not rendered (served from the boot directory "
                    "if it is there)",
                    highlight=False,
                )
                continue
            if not file:
                console.print(
                    f"==> {escape(shown.name)} (from {escape(shown.layer)})", highlight=False
                )
            sys.stdout.flush()
            sys.stdout.write(shown.body.decode())
            sys.stdout.flush()
