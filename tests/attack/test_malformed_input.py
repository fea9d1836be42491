"""Issue 13, item 9: malformed input gets a clear refusal, never a 500 or a flood.

(a) Percent-escapes that are not UTF-8 (``%c0%ae``, an over-long ".", and
``%ff``) in an HTTP path gave 500 and a traceback; they are a bad request (400)
with a security line, and the FTP and TFTP equivalents (bytes that are not
UTF-8 in a file name) are refused and logged too. (b) The DOCTYPE check on the
Lync update request looked at the first 4 KiB only; every XML phoneprov parses
now refuses DTDs wherever they are. (c) A 20-byte TFTP read request made the
server send the first block six times without an acknowledgement.

One ``phoneprov serve`` for the module; curl plays the phone over HTTP(S),
ftplib over FTP, and a raw UDP socket the forged TFTP request (no TFTP client
sends a request and then stays silent).
"""

from __future__ import annotations

import ftplib
import io
import re
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import phoneprov
from tests.serverkit import (
    DEMO_MAC,
    Server,
    curl,
    edit_settings,
    make_site,
    start_server,
    status_of,
)

SRC = Path(phoneprov.__file__).resolve().parent  # the package under test, wherever it is
CODE = ["-o", "/dev/null", "-w", "%{http_code}"]
PUBLIC = ["--digest", "-u", "PlcmSpIp:PlcmSpIp"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    site = make_site(tmp_path_factory.mktemp("malformed") / "site")
    # Short TFTP timers keep the unanswered transfer below short; retries stays at 5.
    edit_settings(site, tftp={"timeout": 0.3, "retries": 5})
    running = start_server(site, protocols=("http", "https", "ftp", "tftp"))
    yield running
    running.stop()


def unescaped(text: str) -> str:
    """Log text with the audit's ``\\xNN`` escapes decoded, to search it."""
    return re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def unsafe_path_lines(server: Server, protocol: str) -> list[str]:
    return [
        unescaped(line)
        for line in server.security_log().splitlines()
        if "reason=unsafe-path" in line and f"proto={protocol} " in line
    ]


# --- (a) paths that are not UTF-8 ----------------------------------------------------------

BAD_ESCAPES = [
    pytest.param("/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", id="fail/overlong-dots"),
    pytest.param("/%ff.cfg", id="fail/ff"),
    pytest.param(f"/logs/{DEMO_MAC}%80-boot.log", id="fail/lone-continuation-byte"),
]


@pytest.mark.parametrize("path", BAD_ESCAPES)
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_fail_bad_utf8_escape_over_http_is_400_and_logged(
    server: Server, path: str, method: str
) -> None:
    before = len(unsafe_path_lines(server, "http"))
    upload = ["-X", "PUT", "--data-binary", "x"] if method == "PUT" else []
    result = curl(*PUBLIC, "--path-as-is", *upload, *CODE, f"{server.http}{path}")
    assert status_of(result) == 400, result.stderr
    server.wait_for_log("security", "reason=unsafe-path")
    lines = unsafe_path_lines(server, "http")
    assert len(lines) == before + 1
    assert "not valid UTF-8" in lines[-1]
    assert "Traceback" not in "".join(server.output)


@pytest.mark.parametrize("path", BAD_ESCAPES)
def test_fail_bad_utf8_escape_over_mutual_tls_is_400(server: Server, path: str) -> None:
    demo = server.site / "demo"
    result = curl(
        "--cacert",
        str(server.site / "pki" / "ca.pem"),
        "--cert",
        str(demo / f"{DEMO_MAC}.pem"),
        "--key",
        str(demo / f"{DEMO_MAC}.key"),
        "--path-as-is",
        *CODE,
        f"{server.https}{path}",
    )
    assert status_of(result) == 400, result.stderr
    assert any("not valid UTF-8" in line for line in unsafe_path_lines(server, "https"))
    assert "Traceback" not in "".join(server.output)


def test_fail_bytes_not_utf8_in_ftp_names_are_refused_and_logged(server: Server) -> None:
    client = ftplib.FTP()
    client.connect("127.0.0.1", server.ports["ftp"], timeout=10)
    try:
        client.login("PlcmSpIp", "PlcmSpIp")
        # ftplib sends str; latin-1 puts each byte on the wire as it is (0xc0 0xae).
        client.encoding = "latin-1"
        before = len(unsafe_path_lines(server, "ftp"))
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            client.retrbinary("RETR \xc0\xae\xc0\xae/000000000000.cfg", lambda _chunk: None)
        with pytest.raises(ftplib.error_perm, match=r"^553"):
            client.storbinary(f"STOR logs/{DEMO_MAC}\xff-boot.log", io.BytesIO(b"log"))
        client.encoding = "utf-8"
        assert client.sendcmd("NOOP").startswith("200")  # the session goes on
    finally:
        client.close()
    lines = unsafe_path_lines(server, "ftp")
    assert len(lines) == before + 2, server.security_log()
    assert all("not valid UTF-8" in line for line in lines[before:])


def test_fail_bytes_not_ascii_in_tftp_name_are_error_4_and_logged(server: Server) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"\x00\x01\xc0\xae.cfg\x00octet\x00", ("127.0.0.1", server.ports["tftp"]))
        answer, _ = sock.recvfrom(1000)
    assert struct.unpack("!HH", answer[:4]) == (5, 4)
    server.wait_for_log("security", "reason=malformed-request")


# --- (b) DTDs anywhere in XML ---------------------------------------------------------------

LYNC_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    # A comment longer than the 4 KiB the old check read: the DOCTYPE comes after it.
    + b"<!-- "
    + b"padding " * 700
    + b"-->\n"
    + b'<!DOCTYPE Request [<!ENTITY mac "0004f2000099">]>\n'
    + b"<Request><DeviceType>UCPhone</DeviceType><MacAddress>&mac;</MacAddress>"
    + b"<Vendor>Polycom</Vendor><Model>CX700</Model><Revision>A</Revision>"
    + b"<Locale>ENU</Locale></Request>\n"
)


def test_fail_doctype_after_4_kib_in_lync_request_is_400(server: Server) -> None:
    assert LYNC_BODY.index(b"<!DOCTYPE") > 4096
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "20",
            "-H",
            "Content-Type: text/xml",
            "--data-binary",
            "@-",
            "-w",
            "\n%{http_code}",
            f"{server.http}/RequestHandler/ucdevice.upx",
        ],
        input=LYNC_BODY,
        capture_output=True,
        timeout=30,
    )
    body, _, code = result.stdout.decode().rpartition("\n")
    assert code == "400", body
    assert "DOCTYPE" in body


XML_PARSING = re.compile(
    r"\b(ET|ElementTree|etree)\.(fromstring|parse|iterparse|XML|XMLParser|XMLPullParser)\("
    r"|\bminidom\b|\bpulldom\b|xml\.sax\b(?!\.saxutils)|ParserCreate\(|\blxml\b"
)


def test_fail_every_xml_parse_goes_through_the_dtd_refusing_parser() -> None:
    """Only protocols/safexml.py parses XML. A module may run a second expat pass (to
    learn positions, which ElementTree does not keep) over a document that
    ``safexml.parse`` accepted first."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        if path.name == "safexml.py":
            continue
        checked_first = "safexml.parse(" in text
        for number, line in enumerate(text.splitlines(), 1):
            match = XML_PARSING.search(line)
            if match and not (checked_first and match.group(0) == "ParserCreate("):
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


# --- (c) TFTP: an unanswered first packet --------------------------------------------------


def test_fail_tftp_request_never_acknowledged_gets_at_most_one_retransmission(
    server: Server,
) -> None:
    request = b"\x00\x01initial.cfg\x00octet\x00"
    assert len(request) == 20
    received: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)  # a bound: the server gives up after 2 x 0.3 s
        sock.sendto(request, ("127.0.0.1", server.ports["tftp"]))
        # The forged sender never acknowledges; collect until the server's ERROR.
        while not received or received[-1][:2] != b"\x00\x05":
            datagram, _ = sock.recvfrom(70000)
            received.append(datagram)
    data = [d for d in received if d[:2] == b"\x00\x03"]
    assert len(data) == 2, [d[:4] for d in received]  # the first block and one retransmission
    assert data[0] == data[1]
    assert sum(map(len, received)) <= 2 * len(data[0]) + 64
