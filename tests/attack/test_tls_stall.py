"""Issue 16: clients that stall inside the TLS handshake must not hold the HTTPS listener.

The HTTPS listener runs each handshake in a worker thread (blocking OpenSSL). The
attack: connections that send a real ClientHello, get the server's flight, and
never send their Finished, so every one holds a thread inside ``do_handshake``.
The listener's deadline (``[limits] header_timeout``, counted from accept and not
moved by bytes arriving) must close them all, write one security line for the
address (not one TLS failure per connection), and a phone at another address
must get its file throughout. Counts and waits are bounded; nothing is timed.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

from tests.attack.test_slow_clients import (
    ATTACKER,
    WAIT,
    closed_by_peer,
    connect,
    phone_gets_own_config,
    security_lines,
    serving,
)

STALLED = 300  # handshakes left waiting for the client's Finished


def client_hello() -> tuple[ssl.SSLObject, ssl.MemoryBIO, bytes]:
    """A TLS client in memory and the ClientHello it starts with."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        client.do_handshake()
    return client, incoming, outgoing.read()


@contextlib.contextmanager
def stalled_handshakes(port: int, count: int) -> Iterator[list[socket.socket]]:
    with contextlib.ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(connect(port, ATTACKER))
            sock.sendall(client_hello()[2])
            sockets.append(sock)
        yield sockets


def test_fail_handshakes_stalled_before_finished_are_closed_while_phone_is_served(
    site: Path,
) -> None:
    with (
        serving(site, header_timeout=3) as server,
        stalled_handshakes(server.ports["https"], STALLED) as sockets,
    ):
        # The server answered each ClientHello: its handshake is waiting on us.
        assert all(sock.recv(5)[:1] == b"\x16" for sock in sockets[:10])
        served = [phone_gets_own_config(server) for _ in range(3)]
        open_ = set(sockets)
        deadline = time.monotonic() + WAIT
        while open_ and time.monotonic() < deadline:
            open_ = {sock for sock in open_ if not closed_by_peer(sock)}
            time.sleep(0.2)
        assert not open_, f"{len(open_)} of {STALLED} stalled handshakes still open"
        assert served == [200, 200, 200]
        assert phone_gets_own_config(server) == 200
        server.wait_for_log("security", "reason=slow-client")
        lines = security_lines(server, "slow-client", ATTACKER)
        assert len(lines) == 1, lines
        assert "proto=https" in lines[0]
        assert not security_lines(server, "tls-handshake", ATTACKER)


def test_fail_handshake_cut_off_mid_way_is_logged_with_its_reason(site: Path) -> None:
    with serving(site, header_timeout=30) as server:
        with connect(server.ports["https"], ATTACKER) as sock:
            sock.sendall(client_hello()[2])
            assert sock.recv(5)[:1] == b"\x16"
            # Garbage where the client's Finished should be.
            sock.sendall(b"\x17\x03\x03\x00\x05hello")
            sock.settimeout(10)
            with contextlib.suppress(OSError):
                while sock.recv(4096):
                    pass
        server.wait_for_log("security", "reason=tls-handshake")
        lines = security_lines(server, "tls-handshake", ATTACKER)
        assert len(lines) == 1, lines
        assert 'detail="' in lines[0]
        assert phone_gets_own_config(server) == 200
