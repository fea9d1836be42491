"""The TFTP server over real sockets with a raw client: options, bad packets, timers, the cap."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.tftp_harness import (
    INITIAL,
    Running,
    TftpClientError,
    fetch,
    make_site,
    request,
    serve,
)

from phoneprov.config import UploadSettings

SMALL = 300 * 1024 + 11


@pytest.fixture(scope="module")
def tftp_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_site(tmp_path_factory.mktemp("tftp-site"), os.urandom(SMALL))
    (root / "boot" / "link.ld").symlink_to("/etc/passwd")
    return root


@pytest.fixture
def own_site(tmp_path: Path) -> Path:
    """A site (and SQLite database) of the test's own, for a server with other settings.

    Sharing the module's database would keep this server's database descriptor open
    after it stops: SQLite defers closing a file while another connection of the process
    holds a lock on it, so the leak check would see it.
    """
    return make_site(tmp_path / "site", os.urandom(SMALL))


@pytest.fixture(scope="module")
def running(tftp_site: Path) -> Iterator[Running]:
    with serve(tftp_site) as run:
        yield run


def udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(3.0)
    sock.bind(("127.0.0.1", 0))
    return sock


def ask(port: int, datagram: bytes) -> tuple[int, int, bytes]:
    """Send one datagram to the server's main port; return (opcode, field, rest) of the answer."""
    with udp() as sock:
        sock.sendto(datagram, ("127.0.0.1", port))
        answer, _ = sock.recvfrom(70000)
    opcode, field = struct.unpack("!HH", answer[:4])
    return opcode, field, answer[4:]


def wait_until_idle(run: Running) -> None:
    deadline = time.monotonic() + 5
    while run.call("sessions") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert run.call("sessions") == 0


@pytest.mark.parametrize("window", [1, 16], ids=lambda w: f"windowsize-{w}")
@pytest.mark.parametrize("blksize", [512, 1428, 8192], ids=lambda b: f"ok/blksize-{b}")
def test_options_round_trip(running: Running, blksize: int, window: int) -> None:
    got = fetch(running.port, "sip.ld", blksize=blksize, windowsize=window, tsize=0, timeout=3)
    assert got.data == (running.boot / "sip.ld").read_bytes()
    served_window = min(window, 65536 // blksize)
    assert got.oack == {
        "blksize": str(blksize),
        "windowsize": str(served_window),
        "tsize": str(SMALL),
        "timeout": "3",
    }
    assert got.duplicate_data == 0


def test_ok_no_options_no_oack(running: Running) -> None:
    got = fetch(running.port, "initial.cfg")
    assert got.oack == {} and got.data == INITIAL


def test_ok_netascii(running: Running) -> None:
    got = fetch(running.port, "initial.cfg", mode="netascii", tsize=0)
    assert got.data == INITIAL.replace(b"\n", b"\r\n")
    assert got.oack == {"tsize": str(len(got.data))}


def test_ok_leading_slash_means_boot_root(running: Running) -> None:
    assert fetch(running.port, "/initial.cfg").data == INITIAL


@pytest.mark.parametrize(
    ("name", "code"),
    [
        pytest.param("../phoneprov.toml", 2, id="fail/dot-dot"),
        pytest.param("logs/../../phoneprov.toml", 2, id="fail/dot-dot-inside"),
        pytest.param("C:\\boot.ini", 2, id="fail/backslash-drive"),
        pytest.param("link.ld", 2, id="fail/symlink-out-of-root"),
        pytest.param(".hidden.ld", 2, id="fail/hidden-file"),
        pytest.param("/etc/passwd", 2, id="fail/absolute-path"),
        pytest.param("/nothing.ld", 1, id="fail/absolute-path-inside-root-missing"),
        pytest.param("x" * 256 + ".cfg", 4, id="fail/over-long-name"),
        pytest.param("0004f2abcdef.cfg", 2, id="fail/secret"),
    ],
)
def test_refused_names(running: Running, name: str, code: int) -> None:
    with pytest.raises(TftpClientError) as caught:
        fetch(running.port, name)
    assert caught.value.code == code


@pytest.mark.parametrize(
    "option",
    [
        pytest.param({"blksize": 7}, id="fail/blksize-7"),
        pytest.param({"blksize": "big"}, id="fail/blksize-text"),
        pytest.param({"timeout": 0}, id="fail/timeout-0"),
        pytest.param({"windowsize": 0}, id="fail/windowsize-0"),
    ],
)
def test_bad_option_value_is_error_8(running: Running, option: dict[str, object]) -> None:
    with pytest.raises(TftpClientError) as caught:
        fetch(running.port, "initial.cfg", **option)
    assert caught.value.code == 8


@pytest.mark.parametrize(
    "datagram",
    [
        pytest.param(b"", id="fail/empty"),
        pytest.param(b"\x00", id="fail/one-byte"),
        pytest.param(b"\x00\x01sip.ld", id="fail/rrq-truncated"),
        pytest.param(b"\x00\x07\x00\x00", id="fail/unknown-opcode"),
        pytest.param(b"\x00\x01sip.ld\x00mail\x00", id="fail/mail-mode"),
        pytest.param(b"\x00\x01sip.ld\x00octet\x00blksize\x00", id="fail/option-no-value"),
        pytest.param(bytes(range(256)) * 4, id="fail/noise"),
    ],
)
def test_garbage_answered_then_server_still_serves(running: Running, datagram: bytes) -> None:
    opcode, code, _ = ask(running.port, datagram)
    assert (opcode, code) == (5, 4)  # ERROR, illegal TFTP operation
    assert fetch(running.port, "initial.cfg", blksize=1428).data == INITIAL


def test_stray_ack_on_main_port_is_ignored(running: Running) -> None:
    with udp() as sock:
        sock.settimeout(0.3)
        sock.sendto(struct.pack("!HH", 4, 1), ("127.0.0.1", running.port))
        with pytest.raises(TimeoutError):
            sock.recvfrom(100)


def test_foreign_tid_gets_error_5_and_transfer_continues(running: Running) -> None:
    with udp() as client, udp() as stranger:
        client.sendto(request(1, "initial.cfg", blksize=8), ("127.0.0.1", running.port))
        _, server = client.recvfrom(100)  # the OACK, from the transfer's own port
        stranger.sendto(struct.pack("!HH", 4, 0), server)
        answer, source = stranger.recvfrom(100)
        assert struct.unpack("!HH", answer[:4]) == (5, 5) and source == server
        client.sendto(struct.pack("!HH", 4, 0), server)
        data, _ = client.recvfrom(100)
        assert data == struct.pack("!HH", 3, 1) + INITIAL[:8]
        client.sendto(struct.pack("!HHH", 5, 0, 0), server)  # abort politely


def test_repeated_request_from_one_port_is_one_transfer(running: Running) -> None:
    with udp() as client:
        for _ in range(3):
            client.sendto(request(1, "initial.cfg"), ("127.0.0.1", running.port))
        _, server = client.recvfrom(1000)
        client.settimeout(0.4)
        with pytest.raises(TimeoutError):
            client.recvfrom(1000)  # no second transfer answered
        assert running.call("sessions") == 1
        client.sendto(struct.pack("!HHH", 5, 0, 0), server)
    wait_until_idle(running)


def test_duplicate_ack_is_not_answered(running: Running) -> None:
    """No Sorcerer's Apprentice: a repeated ACK does not make the server send twice."""
    with udp() as client:
        client.sendto(request(1, "sip.ld"), ("127.0.0.1", running.port))
        _, server = client.recvfrom(1000)
        client.sendto(struct.pack("!HH", 4, 1), server)
        client.sendto(struct.pack("!HH", 4, 1), server)
        second, _ = client.recvfrom(1000)
        assert struct.unpack("!HH", second[:4]) == (3, 2)
        client.settimeout(0.5)  # below the 1 s server timeout: only a duplicate could arrive
        with pytest.raises(TimeoutError):
            client.recvfrom(1000)
        client.sendto(struct.pack("!HHH", 5, 0, 0), server)
    wait_until_idle(running)


def test_retransmits_then_gives_up(own_site: Path) -> None:
    """retries=2: after block 1 is acknowledged, block 2 and two retransmissions, then
    ERROR 0, and the transfer is gone."""
    with serve(own_site, timeout=0.2, retries=2) as run, udp() as client:
        client.sendto(request(1, "sip.ld"), ("127.0.0.1", run.port))
        first, server = client.recvfrom(1000)
        assert struct.unpack("!HH", first[:4]) == (3, 1)
        client.sendto(struct.pack("!HH", 4, 1), server)
        datagrams, sources = [], set()
        while not datagrams or datagrams[-1][:2] != b"\x00\x05":
            datagram, source = client.recvfrom(1000)
            datagrams.append(datagram)
            sources.add(source)
        packets = [struct.unpack("!HH", d[:4]) for d in datagrams]
        assert packets == [(3, 2), (3, 2), (3, 2), (5, 0)]
        # The retransmissions repeat the block unchanged, from the transfer's one port (TID).
        assert len({d[4:] for d in datagrams[:3]}) == 1
        assert sources == {server}
        assert datagrams[-1][4:].rstrip(b"\0") == b"no answer after 2 retransmissions"
        wait_until_idle(run)
        aborted = [line for line in run.access.lines if 'path="sip.ld"' in line]
        assert len(aborted) == 1 and "method=RRQ" in aborted[0], run.access.lines
        assert "status=aborted bytes=512" in aborted[0]
        # The transfer's socket is closed: a late ACK to it meets ICMP port unreachable.
        with udp() as late:
            late.connect(sources.pop())
            late.send(struct.pack("!HH", 4, 1))
            with pytest.raises(ConnectionRefusedError):
                late.recv(1000)


def test_cap_answers_busy_then_frees(own_site: Path) -> None:
    with serve(own_site, max_transfers=2) as run, udp() as one, udp() as two, udp() as three:
        servers = []
        for sock in (one, two):
            sock.sendto(request(1, "sip.ld"), ("127.0.0.1", run.port))
            servers.append(sock.recvfrom(1000)[1])
        three.sendto(request(1, "initial.cfg"), ("127.0.0.1", run.port))
        answer, _ = three.recvfrom(1000)
        assert struct.unpack("!HH", answer[:4]) == (5, 0) and b"busy" in answer
        assert any("reason=busy" in line for line in run.security.lines)
        one.sendto(struct.pack("!HHH", 5, 0, 0), servers[0])
        deadline = time.monotonic() + 5
        while run.call("sessions") > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fetch(run.port, "initial.cfg").data == INITIAL
        two.sendto(struct.pack("!HHH", 5, 0, 0), servers[1])


def test_many_concurrent_transfers(running: Running) -> None:
    socks = [udp() for _ in range(100)]
    try:
        for sock in socks:
            sock.sendto(request(1, "initial.cfg", blksize=1428), ("127.0.0.1", running.port))
        ports = set()
        for sock in socks:
            oack, server = sock.recvfrom(1000)
            assert oack[:2] == b"\x00\x06"
            ports.add(server[1])
            sock.sendto(struct.pack("!HH", 4, 0), server)
        for sock in socks:
            data, server = sock.recvfrom(2000)
            assert data[4:] == INITIAL
            sock.sendto(struct.pack("!HH", 4, 1), server)
        assert len(ports) == 100  # one transfer ID each
    finally:
        for sock in socks:
            sock.close()
    wait_until_idle(running)


def test_write_refused_by_default(running: Running) -> None:
    opcode, code, _ = ask(running.port, request(2, "0004f2abcdef-boot.log"))
    assert (opcode, code) == (5, 2)
    assert not (running.boot / "logs" / "0004f2abcdef-boot.log").exists()


@pytest.fixture
def uploads(tmp_path: Path) -> Iterator[Running]:
    site = make_site(tmp_path / "site", b"fw")
    with serve(site, UploadSettings(log_max=4000), allow_log_uploads=True) as run:
        # A phone's bootROM asks for its own config first (SPEC §2): that enrols it, and
        # only then may the public TFTP identity upload its logs (decisions/0008).
        with udp() as client:
            client.sendto(request(1, "0004f2abcdef.cfg"), ("127.0.0.1", run.port))
            assert client.recvfrom(1000)[0][:2] == b"\x00\x05"  # not served: an error
        yield run


def test_log_upload_with_curl_and_busybox(uploads: Running, tmp_path: Path) -> None:
    log = tmp_path / "boot.log"
    log.write_bytes(b"0727210309|copy |3|00|Download of '0004f2abcdef.cfg' succeeded\n" * 20)
    subprocess.run(
        ["curl", "-sS", "--tftp-blksize", "512", "-T", str(log),
         f"tftp://127.0.0.1:{uploads.port}/0004f2abcdef-boot.log"],
        check=True, timeout=30, capture_output=True,
    )  # fmt: skip
    # The upload is stored before the final ACK: it is there when the client returns.
    assert (uploads.boot / "logs" / "0004f2abcdef-boot.log").read_bytes() == log.read_bytes()
    subprocess.run(
        ["busybox", "tftp", "-p", "-l", str(log), "-r", "0004F2ABCDEF-app.log", "127.0.0.1",
         str(uploads.port)],
        check=True, timeout=30, capture_output=True,
    )  # fmt: skip
    assert (uploads.boot / "logs" / "0004f2abcdef-app.log").read_bytes() == log.read_bytes()
    assert not [p for p in (uploads.boot / "logs").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("name", "size", "options", "code"),
    [
        pytest.param("0004f2abcdef-phone.cfg", 10, {}, 2, id="fail/override-not-a-log"),
        pytest.param("000000000000.cfg", 10, {}, 2, id="fail/master-file"),
        pytest.param("0004f2abcdef-boot.log", 5000, {"tsize": 5000}, 3, id="fail/tsize-over-limit"),
        pytest.param("0004f2abcdef-boot.log", 5000, {}, 3, id="fail/data-over-limit"),
    ],
)
def test_upload_refused(
    uploads: Running, name: str, size: int, options: dict[str, object], code: int
) -> None:
    with udp() as client:
        client.sendto(request(2, name, **options), ("127.0.0.1", uploads.port))
        answer, server = client.recvfrom(1000)
        block = 0
        while answer[:2] == b"\x00\x04":  # ACKed: keep sending until the server refuses
            block += 1
            client.sendto(struct.pack("!HH", 3, block) + b"x" * 512, server)
            answer, server = client.recvfrom(1000)
        assert struct.unpack("!HH", answer[:4]) == (5, code), answer
        assert block * 512 <= size
    wait_until_idle(uploads)
    logs = uploads.boot / "logs"
    assert not logs.exists() or not list(logs.iterdir())  # no file, no temporary left
    assert not (uploads.boot / name).exists() or name == "000000000000.cfg"
