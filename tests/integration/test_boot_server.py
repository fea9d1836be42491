"""The boot server end to end, with curl as the phone (the firmware uses libcurl)."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from tests.pkitools import NOW, FactoryPki, make_ca, make_device
from tests.serverkit import (
    DEMO_MAC,
    Server,
    curl,
    edit_settings,
    run_cli,
    start_server,
    status_of,
)

from phoneprov.model import MacAddress
from phoneprov.pki.authority import CertificateAuthority

CODE = ["-o", "/dev/null", "-w", "%{http_code}"]


def mtls(server: Server, cert: Path, key: Path, *args: str) -> list[str]:
    return [
        "--cacert",
        str(server.site / "pki" / "ca.pem"),
        "--cert",
        str(cert),
        "--key",
        str(key),
        *args,
    ]


def demo_cert(server: Server) -> tuple[Path, Path]:
    return server.site / "demo" / f"{DEMO_MAC}.pem", server.site / "demo" / f"{DEMO_MAC}.key"


# --- phase 1: HTTP with digest -------------------------------------------------------------


def test_ok_digest_get_master_names_only_bootstrap_files(server: Server) -> None:
    result = curl("--digest", "-u", "PlcmSpIp:PlcmSpIp", f"{server.http}/000000000000.cfg")
    assert result.returncode == 0, result.stderr
    app = ET.fromstring(result.stdout)
    assert app.tag == "APPLICATION"
    assert app.get("CONFIG_FILES") == "initial.cfg"
    assert app.get("LOG_FILE_DIRECTORY") == "logs"


def test_ok_digest_get_initial_cfg_moves_phone_to_https(server: Server) -> None:
    result = curl("--digest", "-u", "PlcmSpIp:PlcmSpIp", f"{server.http}/initial.cfg")
    device = ET.fromstring(result.stdout).find("device")
    assert device is not None
    assert device.get("device.set") == "1"
    assert device.get("device.prov.serverType") == "HTTPS"
    assert device.get("device.prov.serverType.set") == "1"
    assert device.get("device.prov.serverName") == f"https://localhost:{server.ports['https']}/"
    ca_pem = (server.site / "pki" / "ca.pem").read_text().strip()
    assert " ".join(device.get("device.sec.TLS.customCaCert1", "").split()) == " ".join(
        ca_pem.split()
    )


def test_fail_digest_wrong_password_401(server: Server) -> None:
    result = curl("--digest", "-u", "PlcmSpIp:wrong", *CODE, f"{server.http}/000000000000.cfg")
    assert status_of(result) == 401
    log = server.wait_for_log("security", "reason=digest-bad-response")
    assert "wrong" not in log  # the password never reaches the log


def test_fail_no_credentials_401_with_challenge(server: Server) -> None:
    result = curl("-i", f"{server.http}/000000000000.cfg")
    assert result.stdout.startswith("HTTP/1.1 401")
    challenge = re.search(r"WWW-Authenticate: (.*)", result.stdout)
    assert (
        challenge and 'qop="auth"' in challenge.group(1) and "algorithm=MD5" in challenge.group(1)
    )


def test_fail_secret_over_http_is_404_and_logged(server: Server) -> None:
    result = curl(
        "--digest", "-u", "PlcmSpIp:PlcmSpIp", *CODE, f"{server.http}/{DEMO_MAC}-phone-secrets.cfg"
    )
    assert status_of(result) == 404
    server.wait_for_log("security", "reason=secret-over-bootstrap")


def test_fail_digest_replayed_nonce_count(server: Server) -> None:
    """The same (nonce, nc) twice: the second is refused (RFC 7616 §3.4 replay)."""
    import hashlib

    port = server.ports["http"]

    def request(headers: str) -> str:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                f"GET /initial.cfg HTTP/1.1\r\nHost: x\r\n{headers}"
                "Connection: close\r\n\r\n".encode()
            )
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return data.decode(errors="replace")

    first = request("")
    nonce = re.search(r'nonce="([^"]+)"', first)
    assert nonce
    ha1 = hashlib.md5(b"PlcmSpIp:phoneprov:PlcmSpIp").hexdigest()
    ha2 = hashlib.md5(b"GET:/initial.cfg").hexdigest()
    response = hashlib.md5(f"{ha1}:{nonce.group(1)}:00000001:abc:auth:{ha2}".encode()).hexdigest()
    auth = (
        f'Authorization: Digest username="PlcmSpIp", realm="phoneprov", '
        f'nonce="{nonce.group(1)}", uri="/initial.cfg", qop=auth, nc=00000001, '
        f'cnonce="abc", response="{response}"\r\n'
    )
    assert request(auth).startswith("HTTP/1.1 200")
    assert request(auth).startswith("HTTP/1.1 401")
    server.wait_for_log("security", "reason=digest-replay")


def test_ok_head_gives_exact_length(server: Server) -> None:
    body = curl("--digest", "-u", "PlcmSpIp:PlcmSpIp", f"{server.http}/initial.cfg").stdout
    head = curl("--digest", "-u", "PlcmSpIp:PlcmSpIp", "-I", f"{server.http}/initial.cfg").stdout
    lengths = re.findall(r"Content-Length: (\d+)", head, re.IGNORECASE)
    assert head.count("HTTP/1.1 200") == 1
    assert int(lengths[-1]) == len(body.encode())


def test_ok_missing_optional_file_is_404(server: Server) -> None:
    result = curl(
        "--digest", "-u", "PlcmSpIp:PlcmSpIp", *CODE, f"{server.http}/000000000000-license.cfg"
    )
    assert status_of(result) == 404


# --- phase 2: HTTPS with mutual TLS --------------------------------------------------------


def test_ok_mtls_get_own_config(server: Server) -> None:
    cert, key = demo_cert(server)
    result = curl(*mtls(server, cert, key, f"{server.https}/{DEMO_MAC}-phone-secrets.cfg"))
    assert result.returncode == 0, result.stderr
    reg = ET.fromstring(result.stdout).find("reg")
    assert reg is not None and reg.get("reg.1.auth.password")


def test_ok_mtls_master_lists_full_config_files(server: Server) -> None:
    cert, key = demo_cert(server)
    result = curl(*mtls(server, cert, key, f"{server.https}/000000000000.cfg"))
    files = ET.fromstring(result.stdout).get("CONFIG_FILES", "")
    assert "[PHONE_MAC_ADDRESS]-phone-secrets.cfg" in files


def test_fail_mtls_other_mac_is_404_like_missing(server: Server) -> None:
    cert, key = demo_cert(server)
    other = server.site / "boot" / "0004f2000002-phone-secrets.cfg"
    other.write_text("<polycomConfig/>")
    theirs = curl(*mtls(server, cert, key, *CODE, f"{server.https}/0004f2000002-phone-secrets.cfg"))
    missing = curl(
        *mtls(server, cert, key, *CODE, f"{server.https}/0004f2000003-phone-secrets.cfg")
    )
    assert status_of(theirs) == status_of(missing) == 404
    server.wait_for_log("security", "reason=not-yours")


def test_ok_mac_in_upper_case_path(server: Server) -> None:
    cert, key = demo_cert(server)
    result = curl(
        *mtls(server, cert, key, *CODE, f"{server.https}/{DEMO_MAC.upper()}-phone-secrets.cfg")
    )
    assert status_of(result) == 200


def test_fail_no_client_certificate_refused_at_handshake(server: Server) -> None:
    result = curl(
        "--cacert", str(server.site / "pki" / "ca.pem"), f"{server.https}/000000000000.cfg"
    )
    assert result.returncode != 0
    server.wait_for_log("security", "reason=tls-handshake")


def test_fail_untrusted_ca_refused(server: Server, tmp_path: Path) -> None:
    stray = make_ca("Some Lab CA")
    cert, key = make_device(stray, DEMO_MAC).write(tmp_path, "stray")
    result = curl(*mtls(server, cert, key, f"{server.https}/000000000000.cfg"))
    assert result.returncode != 0
    # Spaces in a log value are written \x20 (provisioning/audit.py).
    server.wait_for_log("security", r"certificate-verify-failed:\x20self-signed\x20certificate")


def test_ok_factory_chain_after_trust_add(
    site: Path, lab_factory: FactoryPki, tmp_path: Path
) -> None:
    factory = lab_factory
    root_pem = tmp_path / "lab-polycom-root.pem"
    root_pem.write_bytes(factory.root.pem())
    run_cli("trust", "add", str(root_pem), "--site", str(site), check=True)
    listing = run_cli("trust", "list", "--site", str(site), check=True).stdout
    assert "Lab Root CA" in listing and "Polycom Root CA" in listing
    cert, key = factory.device("0004f2abcdef").write(tmp_path, "factory")
    server = start_server(site)
    try:
        result = curl(*mtls(server, cert, key, *CODE, f"{server.https}/site.cfg"))
        assert status_of(result) == 200
        server.wait_for_log("access", "identity=device-cert:0004f2abcdef")
    finally:
        server.stop()


@pytest.mark.parametrize(
    "tolerate,expected",
    [(True, 200), (False, None)],
    ids=["ok/expired-tolerated", "fail/expired-refused"],
)
def test_expired_device_certificate(
    site: Path, lab_factory: FactoryPki, tmp_path: Path, tolerate: bool, expected: int | None
) -> None:
    factory = lab_factory
    root_pem = tmp_path / "root.pem"
    root_pem.write_bytes(factory.root.pem())
    run_cli("trust", "add", str(root_pem), "--site", str(site), check=True)
    edit_settings(site, https={"tolerate_expired_device_certs": tolerate})
    old = factory.device("0004f2000abc", not_before=NOW - dt.timedelta(days=4000), days=3650)
    cert, key = old.write(tmp_path, "expired")
    server = start_server(site)
    try:
        result = curl(*mtls(server, cert, key, *CODE, f"{server.https}/site.cfg"))
        if expected is None:
            assert result.returncode != 0
            server.wait_for_log("security", r"certificate\x20has\x20expired")
        else:
            assert status_of(result) == expected
    finally:
        server.stop()


# --- uploads -------------------------------------------------------------------------------

UPLOADS = [
    ("logs", f"{DEMO_MAC}-boot.log"),
    ("logs", f"{DEMO_MAC}-app.log"),
    ("calls", f"{DEMO_MAC}-calls.xml"),
    ("contacts", f"{DEMO_MAC}-directory.xml"),
    ("overrides", f"{DEMO_MAC}-phone.cfg"),
    ("overrides", f"{DEMO_MAC}-web.cfg"),
    ("core", f"{DEMO_MAC}-core.gz"),
    ("certificates", f"{DEMO_MAC}.csr"),
]


@pytest.mark.parametrize("folder,name", UPLOADS, ids=[f"ok/{n}" for _, n in UPLOADS])
def test_ok_put_each_upload_kind(server: Server, tmp_path: Path, folder: str, name: str) -> None:
    cert, key = demo_cert(server)
    body = tmp_path / "body"
    body.write_bytes(b"<x>first</x>\n")
    first = curl(
        *mtls(server, cert, key, *CODE, "-T", str(body), f"{server.https}/{folder}/{name}")
    )
    # 204 whether or not the file existed (decisions/0008: no probing which phones have files)
    assert status_of(first) == 204
    body.write_bytes(b"<x>second</x>\n")
    second = curl(
        *mtls(server, cert, key, *CODE, "-T", str(body), f"{server.https}/{folder}/{name}")
    )
    assert status_of(second) == 204
    assert (server.site / "boot" / folder / name).read_bytes() == b"<x>second</x>\n"


def test_ok_upload_to_root_lands_in_its_folder(server: Server, tmp_path: Path) -> None:
    cert, key = demo_cert(server)
    body = tmp_path / "boot.log"
    body.write_text("boot\n")
    result = curl(
        *mtls(server, cert, key, *CODE, "-T", str(body), f"{server.https}/{DEMO_MAC}-boot.log")
    )
    assert status_of(result) == 204
    assert (server.site / "boot" / "logs" / f"{DEMO_MAC}-boot.log").read_text() == "boot\n"


def test_ok_overrides_keep_previous_versions(server: Server, tmp_path: Path) -> None:
    """Every version younger than keep_days stays; older ones go past keep_versions (0008)."""
    cert, key = demo_cert(server)
    body = tmp_path / "o.cfg"
    kept = server.site / "versions" / "overrides"
    kept.mkdir(parents=True, exist_ok=True)
    sixty_days_ago = time.time() - 60 * 86400
    for n in range(4):
        old = kept / f"{DEMO_MAC}-phone.cfg.2026010{n}T000000.000000000"
        old.write_text(f"<polycomConfig old='{n}'/>")
        os.utime(old, (sixty_days_ago, sixty_days_ago))
    for n in range(7):
        body.write_text(f"<polycomConfig n='{n}'/>")
        curl(
            *mtls(
                server, cert, key, "-T", str(body), f"{server.https}/overrides/{DEMO_MAC}-phone.cfg"
            )
        )
    versions = sorted(kept.iterdir())
    # The six recent versions all stay (n=0..5); of the old ones, none is needed to reach 5.
    assert [v.read_text() for v in versions] == [f"<polycomConfig n='{n}'/>" for n in range(6)]


BAD_UPLOADS = [
    ("fail/master-file", "000000000000.cfg", 403),
    ("fail/other-mac-log", "logs/0004f2000002-app.log", 403),
    ("fail/wrong-folder", "logs/0004f2000001-phone.cfg", 403),
    ("fail/not-an-upload-name", "site.cfg", 403),
    ("fail/firmware", "sip.ld", 403),
]


@pytest.mark.parametrize("case,path,code", BAD_UPLOADS, ids=[c for c, _, _ in BAD_UPLOADS])
def test_fail_put_wrong_kinds(
    server: Server, tmp_path: Path, case: str, path: str, code: int
) -> None:
    cert, key = demo_cert(server)
    before = sorted(p.name for p in (server.site / "boot").rglob("*"))
    body = tmp_path / "body"
    body.write_text("x")
    result = curl(*mtls(server, cert, key, *CODE, "-T", str(body), f"{server.https}/{path}"))
    assert status_of(result) == code
    assert sorted(p.name for p in (server.site / "boot").rglob("*")) == before


def test_fail_upload_over_limit_413(site: Path, tmp_path: Path) -> None:
    edit_settings(site, uploads={"log_max": "1KiB"})
    server = start_server(site)
    try:
        cert, key = demo_cert(server)
        body = tmp_path / "big.log"
        body.write_bytes(b"x" * 2048)
        result = curl(
            *mtls(
                server, cert, key, *CODE, "-T", str(body), f"{server.https}/logs/{DEMO_MAC}-app.log"
            )
        )
        assert status_of(result) == 413
        assert not (site / "boot" / "logs" / f"{DEMO_MAC}-app.log").exists()
    finally:
        server.stop()


def test_ok_bootstrap_account_uploads_boot_log_over_http(server: Server, tmp_path: Path) -> None:
    body = tmp_path / "boot.log"
    body.write_text("updater\n")
    result = curl(
        "--digest",
        "-u",
        "PlcmSpIp:PlcmSpIp",
        *CODE,
        "-T",
        str(body),
        f"{server.http}/logs/{DEMO_MAC}-boot.log",
    )
    assert status_of(result) == 204
    override = curl(
        "--digest",
        "-u",
        "PlcmSpIp:PlcmSpIp",
        *CODE,
        "-T",
        str(body),
        f"{server.http}/overrides/{DEMO_MAC}-phone.cfg",
    )
    assert status_of(override) == 403  # the public account must not reconfigure a phone


def _tls_socket(server: Server) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(server.site / "pki" / "ca.pem"))
    cert, key = demo_cert(server)
    ctx.load_cert_chain(cert, key)
    raw = socket.create_connection(("127.0.0.1", server.ports["https"]), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def test_ok_interrupted_upload_leaves_old_file(server: Server) -> None:
    target = server.site / "boot" / "contacts" / f"{DEMO_MAC}-directory.xml"
    target.write_text("<directory>old</directory>")
    sock = _tls_socket(server)
    sock.sendall(
        f"PUT /contacts/{DEMO_MAC}-directory.xml HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Length: 100000\r\n\r\n".encode()
        + b"<directory>new"
        + b"x" * 1000
    )
    sock.close()
    server.wait_for_log("access", f'path="/contacts/{DEMO_MAC}-directory.xml"')
    assert target.read_text() == "<directory>old</directory>"
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]


# --- path safety ---------------------------------------------------------------------------

TRAVERSAL = [
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/logs/%2f..%2f..%2fetc/passwd",
    "/..%5c..%5cetc/passwd",
    "/initial.cfg%00.ld",
    "/logs/..%252f..%252fetc/passwd",
    "/escape/passwd",
]


@pytest.mark.parametrize("path", TRAVERSAL, ids=[f"fail/{p}" for p in TRAVERSAL])
def test_fail_traversal_never_reads_outside(server: Server, path: str) -> None:
    (server.site / "boot" / "escape").symlink_to("/etc")
    cert, key = demo_cert(server)
    result = curl(
        *mtls(server, cert, key, "--path-as-is", "-w", "\n%{http_code}", f"{server.https}{path}")
    )
    assert status_of(result) in (400, 404)
    assert "root:" not in result.stdout
    server.wait_for_log("security", "reason=")


# --- the commands around it ----------------------------------------------------------------


def test_fail_init_twice_without_force(site: Path) -> None:
    before = (site / "pki" / "ca.pem").read_bytes()
    result = run_cli("init", "--site", str(site), "--fqdn", "localhost")
    assert result.returncode != 0
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert (site / "pki" / "ca.pem").read_bytes() == before


def test_ok_init_force_replaces_ca(site: Path) -> None:
    before = (site / "pki" / "ca.pem").read_bytes()
    run_cli("init", "--site", str(site), "--fqdn", "prov.example.com", "--force", check=True)
    assert (site / "pki" / "ca.pem").read_bytes() != before
    assert (site / "pki" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert 'fqdns = ["prov.example.com"]' in (site / "phoneprov.toml").read_text()


def test_fail_serve_on_busy_port_names_it(site: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli(
            "serve",
            "--site",
            str(site),
            "--quiet",
            "--http-port",
            str(port),
            "--https-port",
            "0",
            "--ftp-port",
            "0",
            "--tftp-port",
            "0",
            timeout=30,
        )
    assert result.returncode != 0
    assert f"port {port} is already in use" in result.stderr
    assert "--http-port" in result.stderr


def test_fail_serve_without_site(tmp_path: Path) -> None:
    result = run_cli("serve", "--site", str(tmp_path / "nothing"))
    assert result.returncode == 2
    assert "phoneprov init" in result.stderr


def _children(pid: int) -> set[int]:
    """The PIDs whose parent is ``pid`` (field 4 of /proc/<n>/stat)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # The command name (field 2) may hold spaces: split after its closing parenthesis.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _socket_owners(pids: set[int]) -> dict[int, int]:
    """Socket inode -> the PID (among ``pids``) that holds it open."""
    owners = {}
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = fd.readlink().name
            except OSError:
                continue
            if target.startswith("socket:["):
                owners[int(target[8:-1])] = pid
    return owners


def _tcp_table() -> list[tuple[int, int, str, int]]:
    """(local port, remote port, state, inode) of every TCP socket (/proc/net/tcp and tcp6)."""
    rows = []
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            rows.append(
                (
                    int(local.rpartition(":")[2], 16),
                    int(remote.rpartition(":")[2], 16),
                    state,
                    int(inode),
                )
            )
    return rows


LISTEN, ESTABLISHED = "0A", "01"


def _accepted_by(port: int, client_port: int, workers: set[int], timeout: float = 10) -> int:
    """The worker PID that accepted the connection from ``client_port`` to ``port``.

    A connection still in the listen queue has inode 0; once accepted, its inode is
    one of the worker's descriptors.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owners = _socket_owners(workers)
        for local, remote, state, inode in _tcp_table():
            if (local, remote, state) == (port, client_port, ESTABLISHED) and inode in owners:
                return owners[inode]
        time.sleep(0.02)
    raise AssertionError(f"no worker accepted the connection from port {client_port}")


def _get_on(sock: socket.socket, server: Server, path: str) -> bytes:
    """GET ``path`` over TLS with the demo phone's certificate on a connected socket."""
    ctx = ssl.create_default_context(cafile=str(server.site / "pki" / "ca.pem"))
    ctx.load_cert_chain(*demo_cert(server))
    with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := tls.recv(65536):
            reply += chunk
    return reply


def test_ok_two_workers_share_ports(site: Path) -> None:
    """Two worker processes each hold a listening socket on the port and each serve phones.

    The observable is the kernel's: which child process of `serve` owns the listening
    sockets and the accepted connections (/proc), so one worker serving alone fails.
    """
    server = start_server(site, "--workers", "2")
    try:
        port = server.ports["https"]
        children = _children(server.process.pid)
        owners = _socket_owners(children)
        listening = {
            name: {
                owners[inode]
                for local, _, state, inode in _tcp_table()
                if (local, state) == (server.ports[name], LISTEN) and inode in owners
            }
            for name in ("http", "https")
        }
        assert len(listening["https"]) == 2, (children, listening)
        assert listening["http"] == listening["https"]
        # SO_REUSEPORT spreads connections by a hash of the client's address and port:
        # connect until each worker has accepted one (all of 64 on one worker: p = 2**-63).
        served: dict[int, socket.socket] = {}
        spare: list[socket.socket] = []
        try:
            for _ in range(64):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                pid = _accepted_by(port, sock.getsockname()[1], listening["https"])
                if pid in served:
                    spare.append(sock)
                else:
                    served[pid] = sock
                if len(served) == 2:
                    break
            assert set(served) == listening["https"]
            for sock in served.values():
                reply = _get_on(sock, server, "/site.cfg")
                assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
                assert b"<polycomConfig>" in reply
        finally:
            for sock in [*served.values(), *spare]:
                sock.close()
    finally:
        assert server.stop() == 0


def test_ok_sigterm_lets_upload_in_flight_finish(site: Path) -> None:
    server = start_server(site)
    sock = _tls_socket(server)
    body = b"<directory>" + b"y" * 4000 + b"</directory>"
    sock.sendall(
        f"PUT /contacts/{DEMO_MAC}-directory.xml HTTP/1.1\r\nHost: localhost\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body[:1000]
    )
    time.sleep(0.3)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    sock.sendall(body[1000:])
    reply = sock.recv(4096)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 204"), reply
    assert server.stop() == 0
    stored = site / "boot" / "contacts" / f"{DEMO_MAC}-directory.xml"
    assert stored.read_bytes() == body


def test_fail_revoked_certificate_refused_without_restart(server: Server) -> None:
    cert, key = demo_cert(server)
    url = f"{server.https}/site.cfg"
    assert status_of(curl(*mtls(server, cert, key, *CODE, url))) == 200
    run_cli(
        "ca",
        "revoke",
        "--mac",
        DEMO_MAC,
        "--reason",
        "key-compromise",
        "--site",
        str(server.site),
        check=True,
    )
    # Refused within [cluster] revocation_refresh (5 s): the listener keeps the revoked
    # serials in memory and refreshes them from the database (provisioning/revocations.py).
    deadline = time.monotonic() + 30
    while (status := status_of(curl(*mtls(server, cert, key, *CODE, url)))) == 200:
        assert time.monotonic() < deadline, "the revoked certificate is still accepted"
        time.sleep(0.2)
    assert status == 403
    server.wait_for_log("security", "reason=certificate-revoked")


def test_ok_device_record_kept(server: Server) -> None:
    from phoneprov.config import load_settings
    from phoneprov.store import open_database

    cert, key = demo_cert(server)
    agent = "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application"
    assert (
        status_of(curl(*mtls(server, cert, key, *CODE, "-A", agent, f"{server.https}/site.cfg")))
        == 200
    )
    assert server.stop() == 0
    store = open_database(load_settings(server.site).database_url)
    try:
        record = store.get_device(MacAddress(DEMO_MAC))
    finally:
        store.close()
    assert record is not None
    assert (record.model, record.firmware, record.stage, record.cert_kind, record.protocol) == (
        "VVX410",
        "5.9.5.0614",
        "Application",
        "ours",
        "https",
    )
    assert record.ip == "127.0.0.1" and record.last_seen


def _phone_csr(tmp_path: Path, cn: str) -> tuple[Path, Path]:
    key, csr = tmp_path / "phone.key", tmp_path / f"{cn}.csr"
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-subj",
            f"/CN={cn}",
            "-keyout",
            str(key),
            "-out",
            str(csr),
        ],
        check=True,
        capture_output=True,
    )
    return csr, key


def test_ok_csr_upload_auto_signed_and_key_kept_private(site: Path, tmp_path: Path) -> None:
    edit_settings(site, policy={"csr_policy": "auto"})
    server = start_server(site)
    try:
        cert, key = demo_cert(server)
        csr, phone_key = _phone_csr(tmp_path, DEMO_MAC)
        up = curl(
            *mtls(
                server,
                cert,
                key,
                *CODE,
                "-T",
                str(csr),
                f"{server.https}/certificates/{DEMO_MAC}.csr",
            )
        )
        assert status_of(up) == 204
        up_key = curl(
            *mtls(
                server,
                cert,
                key,
                *CODE,
                "-T",
                str(phone_key),
                f"{server.https}/certificates/{DEMO_MAC}-private.pem",
            )
        )
        assert status_of(up_key) == 204
        stored_key = site / "boot" / "certificates" / f"{DEMO_MAC}-private.pem"
        assert stored_key.stat().st_mode & 0o777 == 0o600
        over_http = curl(
            "--digest",
            "-u",
            "PlcmSpIp:PlcmSpIp",
            *CODE,
            f"{server.http}/certificates/{DEMO_MAC}-private.pem",
        )
        assert status_of(over_http) == 404
        own = curl(*mtls(server, cert, key, f"{server.https}/certificates/{DEMO_MAC}-private.pem"))
        assert own.stdout == phone_key.read_text()
        # The signed certificate reaches the phone through its own config, in PKCS#7 form.
        config = curl(*mtls(server, cert, key, f"{server.https}/{DEMO_MAC}-phone-secrets.cfg"))
        device = ET.fromstring(config.stdout).find("device")
        assert device is not None
        assert device.get("device.sec.TLS.customDeviceCert1.set") == "1"
        assert device.get("device.set") == "1"
        assert "-----BEGIN PKCS7-----" in device.get(
            "device.sec.TLS.customDeviceCert1.publicCert", ""
        )
    finally:
        server.stop()
    listing = run_cli("ca", "list", "--site", str(site), "--format", "json", check=True).stdout
    assert DEMO_MAC in listing and "csr" in listing
    shown = run_cli("device", "show", DEMO_MAC, "--site", str(site), check=True).stdout
    assert "csr-signed" in shown and "slot platform1" in shown


def test_ok_csr_upload_queued_when_manual(server: Server, tmp_path: Path) -> None:
    cert, key = demo_cert(server)
    csr, _ = _phone_csr(tmp_path, DEMO_MAC)
    up = curl(
        *mtls(
            server, cert, key, *CODE, "-T", str(csr), f"{server.https}/certificates/{DEMO_MAC}.csr"
        )
    )
    assert status_of(up) == 204
    signed = run_cli(
        "ca",
        "sign-csr",
        str(server.site / "boot" / "certificates" / f"{DEMO_MAC}.csr"),
        "--mac",
        DEMO_MAC,
        "--site",
        str(server.site),
        check=True,
    )
    assert "BEGIN CERTIFICATE" in signed.stdout


def test_ok_per_device_digest_account_reads_own_secrets(server: Server) -> None:
    run_cli(
        "account",
        "set",
        DEMO_MAC,
        "--kind",
        "device",
        "--password",
        "s3cret-device",
        "--site",
        str(server.site),
        check=True,
    )
    own = curl(
        "--digest",
        "-u",
        f"{DEMO_MAC}:s3cret-device",
        *CODE,
        f"{server.http}/{DEMO_MAC}-phone-secrets.cfg",
    )
    assert status_of(own) == 200
    (server.site / "boot" / "0004f2000002-phone-secrets.cfg").write_text("<polycomConfig/>")
    other = curl(
        "--digest",
        "-u",
        f"{DEMO_MAC}:s3cret-device",
        *CODE,
        f"{server.http}/0004f2000002-phone-secrets.cfg",
    )
    assert status_of(other) == 404
    listing = run_cli("account", "list", "--site", str(server.site), check=True).stdout
    assert DEMO_MAC in listing and "s3cret" not in listing


def _s_client(server: Server, *args: str) -> str:
    cert, key = demo_cert(server)
    result = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{server.ports['https']}",
            "-cert",
            str(cert),
            "-key",
            str(key),
            "-CAfile",
            str(server.site / "pki" / "ca.pem"),
            *args,
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout + result.stderr


@pytest.mark.parametrize(
    "sigalgs,key_type",
    [("ECDSA+SHA256", "id-ecPublicKey"), ("RSA+SHA256:RSA-PSS+SHA256", "rsaEncryption")],
    ids=["ok/ecdsa-client", "ok/rsa-only-client"],
)
def test_ok_server_picks_certificate_per_client(
    server: Server, sigalgs: str, key_type: str
) -> None:
    out = _s_client(server, "-tls1_2", "-sigalgs", sigalgs, "-showcerts")
    assert "Verify return code: 0" in out
    leaf = out.split("-----BEGIN CERTIFICATE-----", 1)[1].split("-----END CERTIFICATE-----")[0]
    pem = f"-----BEGIN CERTIFICATE-----{leaf}-----END CERTIFICATE-----\n"
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-text"],
        input=pem,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert key_type in text


def test_ok_tls13_by_default_and_old_tls_refused(server: Server) -> None:
    assert "TLSv1.3" in _s_client(server)
    old = _s_client(server, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert "Cipher is (NONE)" in old or "alert" in old.lower()


def test_ok_legacy_tls_opens_tls10(site: Path) -> None:
    edit_settings(site, https={"legacy_tls": True})
    server = start_server(site)
    try:
        assert any("legacy_tls is on" in line for line in server.output)
        out = _s_client(server, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
        assert "Protocol  : TLSv1\n" in out or "Protocol: TLSv1\n" in out, out[-800:]
    finally:
        server.stop()


@pytest.mark.parametrize("mode", ["quarantine", "deny"], ids=["ok/quarantine", "ok/deny"])
def test_unknown_device_enrolment(site: Path, tmp_path: Path, mode: str) -> None:
    edit_settings(site, policy={"enrolment": mode})
    server = start_server(site)
    try:
        ca = CertificateAuthority.load(site / "pki")
        issued = ca.issue_device(MacAddress("0004f2777777"))
        cert, key = tmp_path / "new.pem", tmp_path / "new.key"
        cert.write_bytes(issued.cert_pem)
        key.write_bytes(issued.key_pem)
        master = curl(*mtls(server, cert, key, *CODE, f"{server.https}/000000000000.cfg"))
        shared = curl(*mtls(server, cert, key, *CODE, f"{server.https}/site.cfg"))
        body = tmp_path / "boot.log"
        body.write_text("stuck\n")
        log = curl(
            *mtls(
                server,
                cert,
                key,
                *CODE,
                "-T",
                str(body),
                f"{server.https}/logs/0004f2777777-boot.log",
            )
        )
        if mode == "quarantine":
            assert (status_of(master), status_of(shared), status_of(log)) == (200, 404, 204)
            server.wait_for_log("security", "reason=quarantined")
        else:
            assert (status_of(master), status_of(shared), status_of(log)) == (404, 404, 403)
            server.wait_for_log("security", "reason=enrolment-denied")
    finally:
        server.stop()
