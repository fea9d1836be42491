"""nginx as the reference boot server: ``ssl_verify_client on`` over a site's boot directory.

It serves the same files with the same server certificates and trusts the same
device CAs as phoneprov, and accepts the phones' PUTs (WebDAV module), so the
simulator and ``ab`` can boot against either server.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

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


def write_config(site: Path, work: Path, port: int, *, workers: int = 1,
                 key_types: tuple[str, ...] = ("ec", "rsa")) -> Path:
    """Write nginx.conf for ``site`` into ``work``; return its path."""
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
    root {site / "boot"};
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


def start_nginx(site: Path, work: Path, *, workers: int = 1, cpus: str | None = None,
                key_types: tuple[str, ...] = ("ec", "rsa")) -> Nginx:
    """Start nginx (pinned to ``cpus`` with taskset when given) and wait for its port."""
    port = free_port()
    conf = write_config(site, work, port, workers=workers, key_types=key_types)
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
                return Nginx(process, port, site / "boot")
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("nginx did not open its port in 10 s")
