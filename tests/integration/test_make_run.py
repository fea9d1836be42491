"""`make run` with other ports and a bind address, as a new administrator types it, and
stopped with Ctrl-C (SIGINT to its process group, as a terminal sends it)."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from tests.integration.doctorkit import free_port
from tests.serverkit import curl, run_cli

ROOT = Path(__file__).resolve().parents[2]
LISTEN, LOOPBACK = "0A", "0100007F"  # /proc/net/tcp: TCP_LISTEN; 127.0.0.1, little-endian


def bound(proto: str, port: int) -> set[str]:
    """The local addresses (hex, as /proc/net shows them) listening on ``port``."""
    found = set()
    for row in Path(f"/proc/net/{proto}").read_text().splitlines()[1:]:
        fields = row.split()
        address, _, hex_port = fields[1].partition(":")
        if int(hex_port, 16) == port and (proto == "udp" or fields[3] == LISTEN):
            found.add(address)
    return found


def read_until(process: subprocess.Popen[bytes], needle: bytes, timeout: float) -> str:
    """What the process printed up to a line holding ``needle`` (bounded by ``timeout``)."""
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {needle!r} in time:\n{seen.decode(errors='replace')}"
        ready, _, _ = select.select([process.stdout], [], [], left)
        if ready:
            chunk = os.read(process.stdout.fileno(), 65536)
            assert chunk, f"make run ended:\n{seen.decode(errors='replace')}"
            seen += chunk
    return seen.decode()


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_ok_make_run_custom_ports_and_bind(site_template: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(site_template, site, symlinks=True)
    ports = {
        "HTTP_PORT": free_port(),
        "HTTPS_PORT": free_port(),
        "FTP_PORT": free_port(),
        "TFTP_PORT": free_port(socket.SOCK_DGRAM),
        "ADMIN_PORT": free_port(),
    }
    args = [f"{name}={port}" for name, port in ports.items()]
    # -o: the virtualenv the tests run from is this checkout's; `make install` rebuilding it
    # under the running suite would change what every other test runs.
    process = subprocess.Popen(
        ["make", "-s", "-o", ".venv/bin/phoneprov", "run", f"SITE={site}", *args,
         "BIND=127.0.0.1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        out = read_until(process, b"logs:", timeout=60)
        assert "Stop it with Ctrl-C" in out
        # What make run prints is for the administrator: no library's own chatter.
        assert "Context impl" not in out and "non-transactional DDL" not in out, out
        for scheme, name in (
            ("http", "HTTP"),
            ("https", "HTTPS"),
            ("ftp", "FTP"),
            ("tftp", "TFTP"),
        ):
            assert f"{scheme}://localhost:{ports[f'{name}_PORT']}/" in out, out
        for name in ("HTTP", "HTTPS", "FTP"):
            assert bound("tcp", ports[f"{name}_PORT"]) == {LOOPBACK}, name
        assert bound("udp", ports["TFTP_PORT"]) == {LOOPBACK}
        # The web console: its URL, and the demo administrator's password, kept for the
        # owner only, with which the console logs in.
        console = f"https://127.0.0.1:{ports['ADMIN_PORT']}/console/"
        assert f"console {console}" in out, out
        secret = site / "demo" / "admin-password"
        assert secret.stat().st_mode & 0o777 == 0o600
        password = secret.read_text()
        assert f"log in as demo, password {password}" in out, out
        login = curl("--cacert", str(site / "pki" / "ca.pem"), "-o", "/dev/null",
                     "-w", "%{http_code} %{redirect_url}", "-d", "name=demo",
                     "--data-urlencode", f"password={password}", f"{console}login")  # fmt: skip
        assert login.stdout == f"303 {console}", login.stderr
        wrong = curl("--cacert", str(site / "pki" / "ca.pem"), "-o", "/dev/null",
                     "-w", "%{http_code}", "-d", "name=demo", "-d", "password=wrong-password",
                     f"{console}login")  # fmt: skip
        assert wrong.stdout == "401", wrong.stderr
        master = curl("--fail", "--digest", "-u", "PlcmSpIp:PlcmSpIp",
                      f"http://127.0.0.1:{ports['HTTP_PORT']}/000000000000.cfg")  # fmt: skip
        assert 'CONFIG_FILES="initial.cfg"' in master.stdout, master.stderr
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        assert process.stdout is not None
        process.stdout.close()
    assert bound("tcp", ports["HTTP_PORT"]) == set()


def test_fail_bind_that_is_no_address(site_template: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(site_template, site, symlinks=True)
    result = run_cli("serve", "--site", str(site), "--bind", "localhost:8080")
    assert result.returncode == 2
    assert "--bind 'localhost:8080' is not an IP address" in result.stderr
