"""The HTTPS listener (servers/phonehttp/listener.py: blocking TLS in worker threads, h11):
what phones and curl rely on beyond a single GET -- keep-alive, HEAD, byte ranges on
firmware, HTTP/1.0 clients such as ab, and the close_notify that ends each session.

Polycom UC Software fetches every file with a new connection (SPEC §2.6), but
"HTTP/1.1 keep-alive for clients that use it" stays (issue 16), and phones resume
an interrupted firmware download with a byte range: inferred from the UC Software
administrator guide's "the phone resumes the download" wording, not quoted rules.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import ssl
from collections.abc import Iterator

import pytest
from tests.serverkit import DEMO_MAC, Server, run_cli, start_server

VVX = "FileTransport PolycomVVX-VVX_410-UA/5.9.7.47435 Type/Updater"


def context(server: Server) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(server.site / "pki" / "ca.pem"))
    demo = server.site / "demo"
    ctx.load_cert_chain(demo / f"{DEMO_MAC}.pem", demo / f"{DEMO_MAC}.key")
    return ctx


def connection(server: Server) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(
        "localhost", server.ports["https"], context=context(server), timeout=10
    )


def test_ok_kept_alive_connection_serves_several_requests(server: Server) -> None:
    conn = connection(server)
    try:
        conn.request("GET", "/site.cfg")
        first = conn.getresponse()
        assert first.status == 200
        first.read()
        sock = conn.sock
        assert sock is not None
        conn.request("GET", "/000000000000.cfg")
        second = conn.getresponse()
        assert second.status == 200
        assert b"<APPLICATION" in second.read()
        assert conn.sock is sock  # the same TLS connection: no new handshake
    finally:
        conn.close()
    log = server.wait_for_log("access", 'path="/000000000000.cfg"')
    assert log.count("proto=https") >= 2


def test_ok_head_answers_the_size_without_a_body(server: Server) -> None:
    conn = connection(server)
    try:
        conn.request("GET", "/site.cfg")
        body = conn.getresponse().read()
        conn.request("HEAD", "/site.cfg")
        head = conn.getresponse()
        assert head.status == 200
        assert head.getheader("Content-Length") == str(len(body))
        assert head.read() == b""
        # The connection is still in step: the HEAD sent no body.
        conn.request("GET", "/site.cfg")
        assert conn.getresponse().read() == body
    finally:
        conn.close()


def test_ok_http_10_client_gets_answer_and_close_notify(server: Server) -> None:
    raw = socket.create_connection(("127.0.0.1", server.ports["https"]), timeout=10)
    with context(server).wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"GET /site.cfg HTTP/1.0\r\nHost: localhost\r\n\r\n")
        reply = b""
        # recv returns b"" only on the server's close_notify: an EOF without one
        # raises SSLEOFError (OpenSSL 3: "unexpected eof while reading").
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert b"\r\n\r\n" in reply


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, bytes]]:
    from tests.serverkit import make_site

    work = tmp_path_factory.mktemp("https-firmware")
    site = make_site(work / "site")
    image = os.urandom(600_000)
    (work / "sip.ld").write_bytes(image)
    for step in (
        ["add", str(work / "sip.ld"), "--version", "5.9.8.5760", "--models", "VVX410"],
        ["assign", "--version", "5.9.8.5760"],
    ):
        run_cli("firmware", *step, "--site", str(site), check=True)
    server = start_server(site)
    yield server, image
    server.stop()


def test_ok_firmware_whole_and_by_range(firmware: tuple[Server, bytes]) -> None:
    server, image = firmware
    conn = connection(server)
    try:
        conn.request("GET", "/sip.ld", headers={"User-Agent": VVX})
        whole = conn.getresponse()
        assert whole.status == 200
        assert hashlib.sha256(whole.read()).digest() == hashlib.sha256(image).digest()
        conn.request("GET", "/sip.ld", headers={"User-Agent": VVX, "Range": "bytes=1000-1999"})
        part = conn.getresponse()
        assert part.status == 206
        assert part.getheader("Content-Range") == f"bytes 1000-1999/{len(image)}"
        assert part.read() == image[1000:2000]
        conn.request("GET", "/sip.ld", headers={"User-Agent": VVX, "Range": "bytes=-500"})
        tail = conn.getresponse()
        assert tail.status == 206
        assert tail.read() == image[-500:]
        conn.request("GET", "/sip.ld", headers={"User-Agent": VVX, "Range": "bytes=900000-"})
        beyond = conn.getresponse()
        assert beyond.status == 416
        assert beyond.getheader("Content-Range") == f"bytes */{len(image)}"
        beyond.read()
    finally:
        conn.close()


def test_ok_upload_then_download_over_one_connection(server: Server) -> None:
    body = b"<directory>" + b"z" * 100_000 + b"</directory>"
    conn = connection(server)
    try:
        conn.request("PUT", f"/contacts/{DEMO_MAC}-directory.xml", body=body)
        stored = conn.getresponse()
        assert stored.status == 204
        assert stored.read() == b""
        conn.request("GET", f"/contacts/{DEMO_MAC}-directory.xml")
        answer = conn.getresponse()
        assert answer.status == 200
        assert answer.read() == body
    finally:
        conn.close()
