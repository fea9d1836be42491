"""``phoneprov render MAC [FILE]``: exactly what a phone would get, secrets masked."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import typer

from phoneprov.cli.common import SiteOption, console, handle_errors, site_path
from phoneprov.config import load_settings
from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.protocols.polycom import MASTER_FILE
from phoneprov.provisioning.render import SiteRenderer
from phoneprov.store import open_store


def _config_files(master: bytes, mac: MacAddress) -> list[str]:
    root = ET.fromstring(master)
    files = root.get("CONFIG_FILES", "")
    return [
        f.strip().replace("[PHONE_MAC_ADDRESS]", mac.value) for f in files.split(",") if f.strip()
    ]


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
    store = open_store(settings)
    try:
        renderer = SiteRenderer(settings, store)
        names = [file] if file else [MASTER_FILE]
        if not file:
            master, _ = renderer.render(MASTER_FILE, device, public=bootstrap)
            names += _config_files(master, device)
        for name in names:
            if renderer.template_for(name, renderer.facts(device)) is None:
                if file:
                    raise InputError(
                        f"phoneprov does not render {name} for {device}",
                        "A file of that name in the boot directory is served "
                        "as is; per-device files need the phone in the inventory.",
                    )
                console.print(
                    f"==> {name}: not rendered (served from the boot directory if it is there)",
                    highlight=False,
                )
                continue
            body, layer = renderer.render(name, device, public=bootstrap, masked=not show_secrets)
            if not file:
                console.print(f"==> {name} (from {layer.shown})", highlight=False)
            sys.stdout.flush()
            sys.stdout.write(body.decode())
            sys.stdout.flush()
    finally:
        store.close()
