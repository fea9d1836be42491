"""A phoneprov site served on ports fixed in its settings (for simulator and storm tests).

``serve --http-port 0`` would leave the settings' ports in the URLs phoneprov
renders into initial.cfg; a phone following ``device.prov.serverName`` needs
the port that really listens, so the ports are picked free and written first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bench.nginx import free_port
from tests.serverkit import Server, edit_settings, make_site, start_server

PROTOCOLS = ("http", "https", "ftp", "tftp")


def serve_site(root: Path, *extra: str) -> Iterator[Server]:
    """Make a demo site in ``root``, serve it on free ports; yield the server, then stop it."""
    site = make_site(root, fqdns=("127.0.0.1",))
    ports = {name: free_port() for name in PROTOCOLS}
    edit_settings(site, **{name: {"port": port} for name, port in ports.items()})
    flags = [item for name, port in ports.items() for item in (f"--{name}-port", str(port))]
    server = start_server(site, *flags, *extra, protocols=PROTOCOLS)
    try:
        yield server
    finally:
        server.stop()
