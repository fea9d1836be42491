"""What the systemd unit relies on in `phoneprov serve`: READY=1, and SIGHUP reloads.

systemd is not needed: the tests bind the notification socket systemd would
(an AF_UNIX datagram socket named in ``$NOTIFY_SOCKET``) and send SIGHUP as
``ExecReload=/bin/kill -HUP $MAINPID`` does. openssl s_client is a new phone's
handshake; an http.client connection kept alive across the reload is a phone
already connected.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from tests.pkitools import FactoryPki
from tests.serverkit import DEMO_MAC, Server, curl, run_cli, start_server, status_of

RELOAD_WAIT = 20.0  # seconds a reload may take to show in the server's output
CODE = ["-o", "/dev/null", "-w", "%{http_code}"]


def served_ec_serial(server: Server) -> int:
    """The serial of the ECDSA certificate a new handshake gets (openssl s_client)."""
    demo = server.site / "demo"
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{server.ports['https']}",
         "-servername", "localhost", "-sigalgs", "ECDSA+SHA256",
         "-cert", str(demo / f"{DEMO_MAC}.pem"), "-key", str(demo / f"{DEMO_MAC}.key")],
        input="", capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    start = result.stdout.find("-----BEGIN CERTIFICATE-----")
    end = result.stdout.find("-----END CERTIFICATE-----")
    assert start >= 0 and end > start, result.stdout + result.stderr
    pem = result.stdout[start : end + len("-----END CERTIFICATE-----")]
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def send_reload(server: Server) -> str:
    """SIGHUP the server; return its output line that reports the reload."""
    seen = len(server.output)
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + RELOAD_WAIT
    while time.monotonic() < deadline:
        for line in server.output[seen:]:
            if line.startswith(("reloaded:", "reload failed")):
                return line
        time.sleep(0.05)
    raise AssertionError("no reload line in the output:\n" + "".join(server.output))


def phone_connection(server: Server) -> http.client.HTTPSConnection:
    """A keep-alive HTTPS connection with the demo phone's device certificate."""
    context = ssl.create_default_context(cafile=server.site / "pki" / "ca.pem")
    demo = server.site / "demo"
    context.load_cert_chain(demo / f"{DEMO_MAC}.pem", demo / f"{DEMO_MAC}.key")
    return http.client.HTTPSConnection(
        "localhost", server.ports["https"], context=context, timeout=20
    )


def fetch(connection: http.client.HTTPSConnection, path: str) -> int:
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    return response.status


def test_ok_serve_tells_systemd_when_ready(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(path))
        systemd.settimeout(30)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))  # as systemd sets it for Type=notify
        server = start_server(site)
        try:
            message = systemd.recv(4096).decode()
            assert message.splitlines()[0] == "READY=1"
            assert f"https://localhost:{server.ports['https']}/" in message
            # Ready means listening: a phone is answered at once.
            result = curl("--digest", "-u", "PlcmSpIp:PlcmSpIp", *CODE, f"{server.http}/")
            assert status_of(result) in (200, 403, 404)
        finally:
            server.stop()


def test_ok_reload_serves_a_new_certificate_and_keeps_open_connections(site: Path) -> None:
    server = start_server(site)
    connection = phone_connection(server)
    try:
        assert fetch(connection, "/000000000000.cfg") == 200
        opened = connection.sock
        before = opened.getpeercert(binary_form=True)
        old_serial = served_ec_serial(server)

        issued = run_cli(
            "ca", "issue-server", "--fqdn", "localhost", "--ip", "127.0.0.1",
            "--site", str(site), "--format", "json", check=True,
        )  # fmt: skip
        new_serial = int(json.loads(issued.stdout)["serial"], 16)
        assert new_serial != old_serial
        assert served_ec_serial(server) == old_serial  # files replaced, not yet reloaded

        assert send_reload(server).startswith("reloaded:")
        assert served_ec_serial(server) == new_serial
        # The phone connected before the reload is still served on the same connection.
        assert fetch(connection, "/000000000000.cfg") == 200
        assert connection.sock is opened
        assert opened.getpeercert(binary_form=True) == before
    finally:
        connection.close()
        server.stop()


def test_ok_reload_trusts_a_new_device_ca(
    site: Path, lab_factory: FactoryPki, tmp_path: Path
) -> None:
    cert, key = lab_factory.device("0004f2abcdef").write(tmp_path, "factory")
    root_pem = tmp_path / "lab-root.pem"
    root_pem.write_bytes(lab_factory.root.pem())
    server = start_server(site)
    try:
        args = ["--cacert", str(site / "pki" / "ca.pem"), "--cert", str(cert), "--key", str(key)]
        url = f"{server.https}/site.cfg"
        assert curl(*args, *CODE, url).returncode != 0  # unknown CA: handshake refused
        added = run_cli("trust", "add", str(root_pem), "--site", str(site), check=True)
        assert "systemctl reload phoneprov" in added.stdout
        assert send_reload(server).startswith("reloaded:")
        assert status_of(curl(*args, *CODE, url)) == 200
    finally:
        server.stop()


def test_fail_reload_of_a_broken_site_changes_nothing(site: Path) -> None:
    server = start_server(site)
    try:
        serial = served_ec_serial(server)
        settings = site / "phoneprov.toml"
        good = settings.read_text()
        settings.write_text(good + "\n[limits\n")
        line = send_reload(server)
        assert line.startswith("reload failed, nothing changed:") and "not valid TOML" in line
        # A key that does not match its certificate: the old pair stays in use.
        key = site / "pki" / "server-ec.key"
        settings.write_text(good)
        key.write_bytes((site / "pki" / "server-rsa.key").read_bytes())
        assert send_reload(server).startswith("reload failed, nothing changed:")
        assert served_ec_serial(server) == serial
    finally:
        server.stop()


def test_ok_reload_names_settings_that_need_a_restart(site: Path) -> None:
    server = start_server(site)
    try:
        settings = site / "phoneprov.toml"
        text = settings.read_text()
        settings.write_text(
            text.replace("max_connections = 10000", "max_connections = 500").replace(
                "legacy_tls = false", "legacy_tls = true"
            )
        )
        assert send_reload(server).startswith("reloaded:")
        deadline = time.monotonic() + RELOAD_WAIT
        while not any("after a restart" in line for line in server.output):
            assert time.monotonic() < deadline, "".join(server.output)
            time.sleep(0.05)
        restart = next(line for line in server.output if "after a restart" in line)
        assert restart.rstrip().endswith("(systemctl restart phoneprov): [limits] max_connections")
    finally:
        server.stop()


def test_ok_reload_reaches_every_worker(site: Path) -> None:
    server = start_server(site, "--workers", "2")
    try:
        issued = run_cli(
            "ca", "issue-server", "--fqdn", "localhost", "--ip", "127.0.0.1",
            "--site", str(site), "--format", "json", check=True,
        )  # fmt: skip
        new_serial = int(json.loads(issued.stdout)["serial"], 16)
        seen = len(server.output)
        server.process.send_signal(signal.SIGHUP)  # to the parent, as systemd does ($MAINPID)
        deadline = time.monotonic() + RELOAD_WAIT
        while sum(line.startswith("reloaded:") for line in server.output[seen:]) < 2:
            assert time.monotonic() < deadline, "".join(server.output)
            time.sleep(0.05)
        # The kernel spreads new connections over both workers (SO_REUSEPORT).
        assert {served_ec_serial(server) for _ in range(8)} == {new_serial}
    finally:
        server.stop()
