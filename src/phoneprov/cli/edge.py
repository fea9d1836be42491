"""``phoneprov edge``: nginx in front of phoneprov, terminating mutual TLS (edge mode)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from phoneprov.cli.common import SiteOption, err_console, handle_errors, site_path
from phoneprov.config import load_settings
from phoneprov.provisioning.edge_config import DEFAULT_SOCKET, nginx_config

app = typer.Typer(
    help="nginx in front: it checks phones' certificates, phoneprov serves (edge mode).",
    no_args_is_help=True,
)


@app.command("nginx-config")
@handle_errors
def nginx_config_command(
    site: Path | None = SiteOption,
    listen: str = typer.Option(
        "443", "--listen", help="nginx's HTTPS port for phones: 443, or address:port."
    ),
    socket: str | None = typer.Option(
        None,
        "--socket",
        help=f"phoneprov's edge socket (default: [edge] socket, else {DEFAULT_SOCKET}).",
        show_default=False,
    ),
) -> None:
    """Print the nginx configuration of edge mode (docs/scale-out.md).

    nginx verifies each phone's certificate against the trust folder (written for it to
    <site>/edge/client-cas.pem) and passes it to phoneprov's [edge] socket, which checks
    it again: identities, revocations and expiry policy are those of direct HTTPS. Run
    it again, and reload nginx, after `phoneprov trust add` or a new server certificate.
    """
    settings = load_settings(site_path(site))
    config = nginx_config(settings, listen, socket)
    sys.stdout.write(config.text)
    err_console.print(f"wrote the client CA bundle nginx reads: {escape(str(config.bundle))}")
    if not config.socket_configured:
        socket_path = socket or DEFAULT_SOCKET
        advice = (
            "phoneprov.toml has no matching edge listener yet; add it and restart phoneprov:\n"
            f'  [edge]\n  socket = "{socket_path}"\n  group = "www-data"'
        )
        err_console.print(escape(advice), highlight=False)
