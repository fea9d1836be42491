"""Issue 13, item 8: slow and numerous clients must not hold the HTTP and HTTPS listeners.

The attack: thousands of connections that send their request a byte at a time
(slowloris) were all kept, with no header deadline and no per-address cap.
Here a bounded number of raw sockets plays the attacker from 127.0.0.1, 127.0.0.3
and 127.0.0.4 (the whole of 127/8 is loopback on Linux, and the server binds
0.0.0.0), and curl plays a phone from 127.0.0.2, which must get its file
throughout. Short ``[limits]`` settings keep each test to seconds; every wait
has a bound, and no assertion is about how long something took.
"""

from __future__ import annotations

import contextlib
import re
import resource
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverkit import DEMO_MAC, Server, curl, edit_settings, start_server, status_of

ATTACKER, PHONE = "127.0.0.1", "127.0.0.2"
SLOWLORIS = 200  # connections that dribble their request
WAIT = 25.0  # the longest any test waits for the server to close something
CODE = ["-o", "/dev/null", "-w", "%{http_code}"]


@contextlib.contextmanager
def serving(site: Path, **limits: object) -> Iterator[Server]:
    edit_settings(site, limits=limits)
    running = start_server(site)
    try:
        yield running
    finally:
        running.stop()


def connect(port: int, source: str) -> socket.socket:
    """A TCP connection to the server from ``source`` (a loopback address)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def closed_by_peer(sock: socket.socket) -> bool:
    """True when the server has closed (or reset) the connection; never blocks."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(65536, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


def phone_gets_master(server: Server) -> int:
    """The status curl, as a phone at another address, gets for the master file."""
    result = curl(
        "--interface",
        PHONE,
        "--digest",
        "-u",
        "PlcmSpIp:PlcmSpIp",
        *CODE,
        f"{server.http}/000000000000.cfg",
    )
    assert result.returncode == 0, result.stderr
    return status_of(result)


def phone_gets_own_config(server: Server) -> int:
    """The status curl, as a phone at another address, gets for its file over mutual TLS."""
    demo = server.site / "demo"
    result = curl(
        "--interface",
        PHONE,
        "--cacert",
        str(server.site / "pki" / "ca.pem"),
        "--cert",
        str(demo / f"{DEMO_MAC}.pem"),
        "--key",
        str(demo / f"{DEMO_MAC}.key"),
        *CODE,
        f"{server.https}/{DEMO_MAC}-phone-secrets.cfg",
    )
    assert result.returncode == 0, result.stderr
    return status_of(result)


def security_lines(server: Server, reason: str, ip: str) -> list[str]:
    """The security lines with ``reason`` about ``ip``, with escaped characters decoded."""
    return [
        re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), line)
        for line in server.security_log().splitlines()
        if f"reason={reason}" in line and f"ip={ip} " in line
    ]


@pytest.mark.parametrize(
    ("listener", "first_bytes", "trickle"),
    [
        # The request line, then one more header byte at a time, for ever.
        pytest.param("http", b"GET /000000000000.cfg HTTP/1.1\r\nHost: x\r\n", b"X", id="http"),
        # A TLS record header, then the ClientHello a byte at a time: the deadline
        # covers the handshake too.
        pytest.param("https", b"\x16\x03\x01\x02\x00", b"\x01", id="https"),
    ],
)
def test_fail_slowloris_closed_by_header_deadline_while_phone_is_served(
    site: Path, listener: str, first_bytes: bytes, trickle: bytes
) -> None:
    with serving(site, header_timeout=3) as server, contextlib.ExitStack() as stack:
        port = server.ports[listener]
        sockets = [stack.enter_context(connect(port, ATTACKER)) for _ in range(SLOWLORIS)]
        for sock in sockets:
            sock.sendall(first_bytes)
        open_ = set(sockets)
        served: list[int] = []
        deadline = time.monotonic() + WAIT
        while (open_ or len(served) < 3) and time.monotonic() < deadline:
            # Every connection keeps sending: a deadline reset by each byte never fires.
            for sock in list(open_):
                try:
                    sock.send(trickle)
                except OSError:
                    open_.discard(sock)
                    continue
                if closed_by_peer(sock):
                    open_.discard(sock)
            if len(served) < 3:
                served.append(
                    phone_gets_master(server)
                    if listener == "http"
                    else phone_gets_own_config(server)
                )
            time.sleep(0.25)
        assert not open_, f"{len(open_)} of {SLOWLORIS} slow connections still open"
        assert served == [200, 200, 200]
        # 200 connections closed, one line for the address (at most one a minute).
        lines = server.wait_for_log("security", "reason=slow-client")
        assert len(security_lines(server, "slow-client", ATTACKER)) == 1, lines
        assert f"proto={listener}" in security_lines(server, "slow-client", ATTACKER)[0]
        if listener == "https":
            # The closed handshakes are not also logged one by one as TLS failures.
            assert not security_lines(server, "tls-handshake", ATTACKER)


def test_fail_kept_alive_connection_dribbling_its_next_request_is_closed(site: Path) -> None:
    with serving(site, header_timeout=2) as server, connect(server.ports["http"], ATTACKER) as sock:
        sock.sendall(b"GET /000000000000.cfg HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            assert chunk, "the server closed before answering the first request"
            answer += chunk
        assert re.match(rb"HTTP/1\.1 401 ", answer)
        sock.sendall(b"GET /initial.cfg HTTP/1.1\r\n")
        deadline = time.monotonic() + WAIT
        closed = False
        while not closed and time.monotonic() < deadline:
            try:
                sock.send(b"X")
            except OSError:
                closed = True
                break
            closed = closed_by_peer(sock)
            time.sleep(0.25)
        assert closed, "a kept-alive connection dribbling its next request was kept"


@pytest.mark.parametrize("listener", ["http", "https"])
def test_fail_per_address_cap_closes_extra_connections_at_once(site: Path, listener: str) -> None:
    cap, extra, flood = 20, 10, "127.0.0.3"
    with (
        serving(site, header_timeout=120, max_connections_per_address=cap) as server,
        contextlib.ExitStack() as stack,
    ):
        port = server.ports[listener]
        sockets = [stack.enter_context(connect(port, flood)) for _ in range(cap + extra)]
        # The deadline is 120 s away: a connection closed now was refused by the cap.
        closed = wait_for_closed(sockets, extra)
        assert len(closed) == extra
        assert not any(closed_by_peer(sock) for sock in sockets if sock not in closed)
        status = phone_gets_master(server) if listener == "http" else phone_gets_own_config(server)
        assert status == 200
        server.wait_for_log("security", "reason=too-many-connections")
        lines = security_lines(server, "too-many-connections", flood)
        assert len(lines) == 1, lines
        assert f"proto={listener}" in lines[0]
        assert 'detail="open:20,limit:20"' in lines[0]


def wait_for_closed(sockets: list[socket.socket], expected: int) -> set[socket.socket]:
    """The sockets the server closed, once ``expected`` of them are (or after WAIT)."""
    closed: set[socket.socket] = set()
    deadline = time.monotonic() + WAIT
    while len(closed) < expected and time.monotonic() < deadline:
        readable, _, _ = select.select([s for s in sockets if s not in closed], [], [], 0.2)
        closed.update(sock for sock in readable if closed_by_peer(sock))
    return closed


def test_fail_global_cap_closes_new_connections_and_frees_with_them(site: Path) -> None:
    cap = 25
    with (
        serving(site, header_timeout=120, max_connections=cap) as server,
        contextlib.ExitStack() as stack,
    ):
        port = server.ports["http"]
        held = [stack.enter_context(connect(port, "127.0.0.3")) for _ in range(cap)]
        late = [stack.enter_context(connect(port, "127.0.0.4")) for _ in range(3)]
        assert wait_for_closed(late, len(late)) == set(late)
        assert not any(closed_by_peer(sock) for sock in held)
        lines = security_lines(server, "server-full", "127.0.0.4")
        assert len(lines) == 1, server.security_log()
        assert 'detail="open:25,limit:25"' in lines[0]
        for sock in held:
            sock.close()
        # Places are freed as connections end: the phone is served again.
        deadline = time.monotonic() + WAIT
        status = 0
        while status != 200 and time.monotonic() < deadline:
            status = phone_gets_master(server)
        assert status == 200


def test_ok_default_limits_admit_a_site_booting_behind_one_address(site: Path) -> None:
    """1,000 phones behind one NAT address, each with a connection open at once, are served."""
    phones, nat = 1000, "127.0.0.5"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < phones + 200:
        if hard != resource.RLIM_INFINITY and hard < phones + 200:
            pytest.skip(f"the open-file limit ({hard}) is below {phones + 200}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (phones + 200, hard))
    server = start_server(site)
    try:
        with contextlib.ExitStack() as stack:
            sockets = [
                stack.enter_context(connect(server.ports["http"], nat)) for _ in range(phones)
            ]
            for sock in sockets:
                sock.sendall(b"GET /000000000000.cfg HTTP/1.1\r\nHost: x\r\n\r\n")
            answered = sum(answer_status(sock) == b"401" for sock in sockets)
            assert answered == phones
            assert not security_lines(server, "too-many-connections", nat)
    finally:
        server.stop()


def answer_status(sock: socket.socket) -> bytes:
    """The status code of the server's answer on ``sock`` (b"" when it closed instead)."""
    sock.settimeout(WAIT)
    head = b""
    while b"\r\n" not in head:
        try:
            chunk = sock.recv(4096)
        except (ConnectionError, TimeoutError):
            return b""
        if not chunk:
            return b""
        head += chunk
    return head.split(b" ", 2)[1]
