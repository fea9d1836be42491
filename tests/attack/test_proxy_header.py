"""A PROXY protocol header from anywhere but a configured balancer is refused and logged.

With ``[cluster] proxy_from`` the listeners believe a PROXY header about the
client's address (servers/proxied.py). Anyone else sending one would claim any
phone's address: to escape their own lockout, spend another address's upload
quota, or write another address into the security log. Here the balancer is
127.0.0.1 and the attacker connects from 127.0.0.3, claiming 198.51.100.7.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneprov.protocols.proxyproto import V2_SIGNATURE
from tests.serverkit import Server, make_site, start_server

ATTACKER = "127.0.0.3"
CLAIMED = "198.51.100.7"
V1 = f"PROXY TCP4 {CLAIMED} 127.0.0.1 40000 443\r\n".encode()
V2 = (
    V2_SIGNATURE
    + b"\x21\x11\x00\x0c"
    + socket.inet_aton(CLAIMED)
    + socket.inet_aton("127.0.0.1")
    + struct.pack("!HH", 40000, 443)
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    site = make_site(tmp_path_factory.mktemp("proxy") / "site")
    site_toml = site / "phoneprov.toml"
    site_toml.write_text(
        site_toml.read_text().replace("proxy_from = []", 'proxy_from = ["127.0.0.1"]')
    )
    running = start_server(site)
    yield running
    running.stop()


def send(port: int, data: bytes, source: str) -> bytes:
    """Connect from ``source``, send ``data``, return what the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(data)
        try:
            return s.recv(4096)
        except ConnectionResetError:
            return b""


def refusals(site: Path, needle: str) -> list[str]:
    deadline = time.monotonic() + 5
    lines: list[str] = []
    while time.monotonic() < deadline and not lines:
        log = site / "log" / "security.log"
        text = log.read_text() if log.exists() else ""
        lines = [line for line in text.splitlines() if needle in line]
        time.sleep(0.05)
    return lines


@pytest.mark.parametrize("header", [V1, V2], ids=["v1", "v2"])
@pytest.mark.parametrize("proto", ["http", "https"])
def test_attack_header_from_an_untrusted_address_is_refused(
    server: Server, proto: str, header: bytes
) -> None:
    request = b"GET /site.cfg HTTP/1.1\r\nHost: localhost\r\n\r\n"
    answer = send(server.ports[proto], header + request, ATTACKER)
    assert answer == b""  # closed, never answered
    lines = refusals(server.site, f"ip={ATTACKER} proto={proto}")
    assert any("reason=proxy-header" in line for line in lines), lines
    assert CLAIMED not in server.security_log() + server.access_log()


def test_attack_balancer_without_a_header_is_refused(server: Server) -> None:
    """From the balancer's own address, a request without a header is not served either."""
    answer = send(server.ports["http"], b"GET /site.cfg HTTP/1.1\r\nHost: x\r\n\r\n", "127.0.0.1")
    assert answer == b""
    lines = refusals(server.site, "ip=127.0.0.1 proto=http")
    assert any("reason=proxy-header" in line and "malformed" in line for line in lines), lines
