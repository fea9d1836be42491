"""nginx edge mode with Debian's nginx (issue 17): nginx terminates mutual TLS and passes
the phone's certificate to phoneprov's edge socket.

The test runs the command docs/scale-out.md shows, checks its output is the
configuration the doc prints, and starts nginx with it on loopback. curl plays the
phone from 127.0.0.2 (any 127/8 address is the loopback), so a log line naming
127.0.0.2 names the phone; nginx reaches phoneprov over the unix socket only.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.serverkit import DEMO_MAC, PHONEPROV, Server, curl, edit_settings, run_cli, start_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"
FQDN = "prov.example.com"  # the doc's name; curl resolves it to nginx on loopback
PHONE_IP = "127.0.0.2"
APP_LOG = f"logs/{DEMO_MAC}-app.log"
pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def doc_section() -> str:
    text = DOC.read_text()
    start = text.index("## Behind nginx")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def doc_block(kind: str) -> str:
    found = re.search(rf"```{kind}\n(.*?)```", doc_section(), re.DOTALL)
    assert found, f"docs/scale-out.md's nginx section has no {kind} block"
    return found.group(1)


@dataclass
class Edge:
    server: Server
    nginx: subprocess.Popen[bytes]
    port: int
    socket: Path

    @property
    def url(self) -> str:
        return f"https://{FQDN}:{self.port}"


def nginx_conf(root: Path, server_block: Path) -> str:
    """A whole nginx.conf for an unprivileged nginx in ``root``, including the block."""
    temps = "\n".join(
        f"    {name}_temp_path {root / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # nginx started by root runs its workers as nobody, who cannot enter pytest's folders.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\npid {root / 'nginx.pid'};\n"
        f"error_log {root / 'error.log'} info;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n    access_log {root / 'access.log'};\n{temps}\n"
        f"    include {server_block};\n}}\n"
    )


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    root = tmp_path_factory.mktemp("edge")
    site = root / "site"
    run_cli("init", "--site", str(site), "--fqdn", FQDN, "--demo", check=True)
    edit_settings(site, cluster={"revocation_refresh": 0.2})
    sock = root / "edge.sock"
    with (site / "phoneprov.toml").open("a") as toml:
        toml.write(f'\n[edge]\nsocket = "{sock}"\n')
    server = start_server(site)
    assert sock.is_socket(), "".join(server.output)
    # The doc's command, run as the doc says, with this test's port and file.
    port = free_port()
    command = doc_block("sh").strip()
    assert command.startswith("phoneprov edge nginx-config --listen 443 > "), command
    block = root / "phoneprov.conf"
    command = command.replace("--listen 443", f"--listen 127.0.0.1:{port}")
    command = re.sub(r"> \S+", f"> {block}", command)
    path = f"{Path(PHONEPROV).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PHONEPROV_SITE": str(site), "PATH": path}
    made = subprocess.run(["bash", "-e", "-c", command], env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    shown = (
        block.read_text()
        .replace(str(site.resolve()), "/var/lib/phoneprov")
        .replace(str(sock), "/run/phoneprov/edge.sock")
        .replace(f"127.0.0.1:{port}", "443")
    )
    assert shown == doc_block("nginx"), "docs/scale-out.md shows another configuration"
    (root / "nginx.conf").write_text(nginx_conf(root, block))
    nginx = subprocess.Popen(
        ["nginx", "-e", "stderr", "-p", str(root), "-c", str(root / "nginx.conf"),
         "-g", "daemon off;"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    running = Edge(server, nginx, port, sock)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and nginx.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    if nginx.poll() is not None:
        assert nginx.stdout is not None
        server.stop()
        raise AssertionError(f"nginx stopped: {nginx.stdout.read().decode()}")
    try:
        yield running
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(10)
        server.stop()


def phone(edge: Edge, *args: str, cert: bool = True) -> subprocess.CompletedProcess[str]:
    """curl as the phone, from the phone's own address, with the demo device certificate."""
    demo = edge.server.site / "demo"
    auth = ["--cert", str(demo / f"{DEMO_MAC}.pem"), "--key", str(demo / f"{DEMO_MAC}.key")]
    return curl(
        "-4", "--interface", PHONE_IP,
        "--resolve", f"{FQDN}:{edge.port}:127.0.0.1",
        "--cacert", str(edge.server.site / "pki" / "ca.pem"),
        *(auth if cert else []), "-w", "\n%{http_code}", *args,
    )  # fmt: skip


def code(result: subprocess.CompletedProcess[str]) -> int:
    return int(result.stdout.strip()[-3:] or 0)


def test_ok_phone_gets_its_files_through_nginx(edge: Edge) -> None:
    result = phone(edge, f"{edge.url}/site.cfg")
    assert code(result) == 200, result.stdout + result.stderr
    assert result.stdout.startswith("<?xml"), result.stdout[:200]
    # Identified by its certificate, as over direct HTTPS, and named by its own address.
    edge.server.wait_for_log("access", f"ip={PHONE_IP} identity=device-cert:{DEMO_MAC}")


def test_ok_upload_head_and_ranged_put_through_nginx(edge: Edge, tmp_path: Path) -> None:
    """SPEC §6: HEAD for the size of the server's copy, then a ranged PUT of the tail."""
    stored = edge.server.site / "boot" / APP_LOG
    stored.unlink(missing_ok=True)
    first = tmp_path / "first.log"
    first.write_text("0101000000|boot 1\n")
    put = phone(edge, "-o", "/dev/null", "-T", str(first), f"{edge.url}/{APP_LOG}")
    assert code(put) in (200, 201, 204), put.stdout + put.stderr
    head = phone(edge, "-I", f"{edge.url}/{APP_LOG}")
    size = int(re.search(r"(?im)^content-length:\s*(\d+)", head.stdout).group(1))  # type: ignore[union-attr]
    assert size == len(first.read_bytes())
    tail = tmp_path / "tail.log"
    tail.write_text("0101000010|boot 1 continued\n")
    last = size + len(tail.read_bytes()) - 1
    ranged = f"Content-Range: bytes {size}-{last}/*"
    append = phone(edge, "-o", "/dev/null", "-T", str(tail), "-H", ranged, f"{edge.url}/{APP_LOG}")
    assert code(append) in (200, 201, 204), append.stdout + append.stderr
    assert stored.read_text() == "0101000000|boot 1\n0101000010|boot 1 continued\n"


def test_refused_forged_certificate_header_without_a_certificate(edge: Edge) -> None:
    """A phone without a certificate that sends the headers nginx sets gets no identity:
    nginx replaces them, and the refusal in the security log names the phone."""
    pem = (edge.server.site / "demo" / f"{DEMO_MAC}.pem").read_text()
    forged = pem.replace("\n", "%0A")
    result = phone(
        edge, "-o", "/dev/null", "-H", f"X-Client-Cert: {forged}",
        "-H", "X-Client-Verify: SUCCESS", "-H", "X-Real-IP: 192.0.2.9",
        f"{edge.url}/{DEMO_MAC}.cfg", cert=False,
    )  # fmt: skip
    assert code(result) == 403
    line = edge.server.wait_for_log("security", f"ip={PHONE_IP} proto=https identity=anonymous")
    assert "192.0.2.9" not in line


def test_refused_revoked_certificate_within_the_refresh_interval(edge: Edge) -> None:
    """Last in this module: it revokes the demo phone's certificate."""
    assert code(phone(edge, "-o", "/dev/null", f"{edge.url}/site.cfg")) == 200
    run_cli("ca", "revoke", "--mac", DEMO_MAC, "--site", str(edge.server.site), check=True)
    deadline = time.monotonic() + 30  # revocation_refresh is 0.2 s; the bound is generous
    status = 200
    while status == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
        status = code(phone(edge, "-o", "/dev/null", f"{edge.url}/site.cfg"))
    assert status == 403
    line = edge.server.wait_for_log("security", "reason=certificate-revoked")
    assert f"ip={PHONE_IP} proto=https identity=cert:{DEMO_MAC}" in line
