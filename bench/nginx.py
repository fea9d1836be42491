"""nginx as the reference boot server: ``ssl_verify_client on`` over a site's boot directory.

It serves the same files with the same server certificates and trusts the same
device CAs as phoneprov, and accepts the phones' PUTs (WebDAV module), so the
simulator and ``ab`` can boot against either server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from phoneprov.model import MacAddress
from phoneprov.protocols.polycom import MASTER_FILE
from phoneprov.sim.configfiles import parse_master, substitute
from phoneprov.sim.endpoint import parse_endpoint
from phoneprov.sim.plan import Purpose, Step
from phoneprov.sim.transport import HttpTransport, client_context

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    port: int
    root: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()  # wait() leaves the pipe open


def write_config(
    site: Path,
    work: Path,
    port: int,
    *,
    root: Path,
    workers: int = 1,
    key_types: tuple[str, ...] = ("ec", "rsa"),
) -> Path:
    """Write nginx.conf serving ``root`` with ``site``'s certificates; return its path."""
    work.mkdir(parents=True, exist_ok=True)
    bundle = work / "trust.pem"
    bundle.write_text("\n".join(p.read_text() for p in sorted((site / "trust").glob("*.pem"))))
    certs = "\n".join(
        f"    ssl_certificate {site / 'pki' / f'server-{kind}.pem'};\n"
        f"    ssl_certificate_key {site / 'pki' / f'server-{kind}.key'};"
        for kind in key_types
    )
    single = workers <= 1
    user = "user root root;" if os.geteuid() == 0 and not single else ""
    (work / "tmp").mkdir(exist_ok=True)
    conf = f"""
daemon off;
master_process {"off" if single else "on"};
worker_processes {max(1, workers)};
{user}
pid {work / "nginx.pid"};
error_log {work / "error.log"} crit;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work / "tmp"};
  proxy_temp_path {work / "tmp"};
  fastcgi_temp_path {work / "tmp"};
  uwsgi_temp_path {work / "tmp"};
  scgi_temp_path {work / "tmp"};
  types {{ application/xml cfg xml; application/octet-stream ld; text/plain log ver; }}
  server {{
    listen 127.0.0.1:{port} ssl reuseport backlog=4096;
{certs}
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_client_certificate {bundle};
    ssl_verify_client on;
    ssl_verify_depth 4;
    ssl_session_tickets off;
    ssl_session_cache off;
    root {root};
    location / {{
      dav_methods PUT;
      create_full_put_path on;
      client_max_body_size 64m;
    }}
  }}
}}
"""
    path = work / "nginx.conf"
    path.write_text(conf)
    return path


def start_nginx(
    site: Path,
    work: Path,
    root: Path,
    *,
    workers: int = 1,
    cpus: str | None = None,
    key_types: tuple[str, ...] = ("ec", "rsa"),
) -> Nginx:
    """Start nginx serving ``root`` (pinned to ``cpus`` with taskset when given) and wait
    for its port."""
    port = free_port()
    conf = write_config(site, work, port, root=root, workers=workers, key_types=key_types)
    command = [NGINX, "-p", str(work), "-c", str(conf)]
    if cpus is not None:
        command = ["taskset", "-c", cpus, *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"nginx did not start: {error}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Nginx(process, port, root)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("nginx did not open its port in 10 s")


def export_boot_files(site: Path, https_url: str, target: Path, mac: str = "0004f2000001") -> Path:
    """Copy what phoneprov serves a phone over mutual TLS into ``target`` for nginx.

    phoneprov renders the master file and the config files per request, so the
    boot directory alone is not "the same files": fetch them as the demo phone
    (the master file, every ``CONFIG_FILES`` entry that exists) with the simulator's
    own client, and copy the boot directory's static files next to them.
    """
    shutil.copytree(site / "boot", target, dirs_exist_ok=True)
    context = client_context(
        cafile=str(site / "pki" / "ca.pem"),
        certfile=str(site / "demo" / f"{mac}.pem"),
        keyfile=str(site / "demo" / f"{mac}.key"),
    )
    client = HttpTransport(
        parse_endpoint(https_url), user_agent="phoneprov-bench export", ssl_context=context
    )

    async def fetch(path: str) -> bytes | None:
        outcome = await client.request(Step("GET", path, Purpose.CONFIG))
        return outcome.body if outcome.ok else None

    async def export() -> None:
        master = await fetch(MASTER_FILE)
        if master is None:
            raise RuntimeError(f"could not fetch {MASTER_FILE} from {https_url}")
        (target / MASTER_FILE).write_bytes(master)
        for entry in parse_master(master, "VVX410").config_files:
            name = substitute(entry, MacAddress(mac), "")
            body = await fetch(name)
            if body is not None:
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                (target / name).write_bytes(body)

    asyncio.run(export())
    return target
