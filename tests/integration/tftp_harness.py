"""A TFTP server on a thread of its own, over a real site, and a raw client with windowsize.

No Debian client sends RFC 7440 windowsize except atftp, so ``fetch`` speaks the
protocol itself (and lets tests misbehave on purpose: drop blocks, repeat ACKs).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from phoneprov.config import Settings, TftpSettings, UploadSettings
from phoneprov.provisioning.audit import ACCESS_LOGGER, SECURITY_LOGGER
from phoneprov.provisioning.services import open_phone_services
from phoneprov.servers.tftp import TftpServer, start_tftp

MASTER = b"""<?xml version="1.0" standalone="yes"?>
<APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="initial.cfg, [PHONE_MAC_ADDRESS].cfg"
 LOG_FILE_DIRECTORY="logs"/>
"""
INITIAL = b'<polycomConfig>\n<device device.set="1"/>\n</polycomConfig>\n'


class Lines(logging.Handler):
    """Collects access or security log lines (the logger may not propagate to pytest's caplog)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class Running:
    server: TftpServer
    port: int
    boot: Path
    security: Lines
    access: Lines
    loop: asyncio.AbstractEventLoop = field(repr=False)

    def call(self, name: str) -> int:
        """Read a server attribute from its own thread (e.g. the number of sessions)."""
        future = asyncio.run_coroutine_threadsafe(_len(self.server, name), self.loop)
        return future.result(5)


async def _len(server: TftpServer, name: str) -> int:
    return len(getattr(server, name))


def make_site(root: Path, firmware: bytes) -> Path:
    boot = root / "boot"
    boot.mkdir(parents=True)
    (boot / "000000000000.cfg").write_bytes(MASTER)
    (boot / "initial.cfg").write_bytes(INITIAL)
    (boot / "0004f2abcdef.cfg").write_bytes(b'<polycomConfig reg.1.auth.password="secret"/>\n')
    (boot / "sip-basic.cfg").write_bytes(b'<polycomConfig reg.1.auth.password="shared"/>\n')
    (boot / "sip.ld").write_bytes(firmware)
    (boot / ".hidden.ld").write_bytes(b"x")
    (root / "phoneprov.toml").write_text("[site]\n")
    return root


@contextmanager
def serve(site: Path, uploads: UploadSettings | None = None, **tftp: object) -> Iterator[Running]:
    """Run the server for ``site`` on 127.0.0.1 and a free port until the block ends."""
    options: dict[str, object] = {"bind": "127.0.0.1", "port": 0, "timeout": 1.0, "retries": 3}
    options.update(tftp)
    settings = Settings(
        site_dir=site,
        tftp=TftpSettings(**options),  # type: ignore[arg-type]
        uploads=uploads or UploadSettings(),
    )
    services = open_phone_services(settings)
    security, access_lines = Lines(), Lines()
    logging.getLogger(SECURITY_LOGGER).addHandler(security)
    access_logger = logging.getLogger(ACCESS_LOGGER)
    access_level = access_logger.level
    access_logger.setLevel(logging.INFO)  # access lines are INFO; the default level drops them
    access_logger.addHandler(access_lines)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="tftp-test-loop", daemon=True)
    thread.start()
    try:
        server = asyncio.run_coroutine_threadsafe(start_tftp(settings.tftp, services), loop).result(
            10
        )
        try:
            yield Running(server, server.port, settings.boot_dir, security, access_lines, loop)
        finally:
            asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        logging.getLogger(SECURITY_LOGGER).removeHandler(security)
        access_logger.removeHandler(access_lines)
        access_logger.setLevel(access_level)
        services.close()


class TftpClientError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"TFTP error {code}: {message}")
        self.code = code
        self.message = message


def request(opcode: int, name: str, mode: str = "octet", **options: object) -> bytes:
    fields = [name, mode] + [str(item) for pair in options.items() for item in pair]
    return struct.pack("!H", opcode) + b"".join(f.encode("latin-1") + b"\0" for f in fields)


def _error(datagram: bytes) -> TftpClientError:
    code = struct.unpack("!H", datagram[2:4])[0]
    return TftpClientError(code, datagram[4:].rstrip(b"\0").decode("ascii", "replace"))


@dataclass
class Fetched:
    data: bytes
    oack: dict[str, str]
    server_port: int
    duplicate_data: int  # DATA blocks received again (the server retransmitted)


def fetch(
    port: int,
    name: str,
    *,
    mode: str = "octet",
    wait: float = 2.0,
    **options: object,
) -> Fetched:
    """Read ``name`` over TFTP like a client that supports every option; raise on ERROR.

    ``options`` go into the request (blksize, windowsize, tsize, timeout); ``wait`` is
    this client's own retransmission timeout.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(wait)
    try:
        sock.sendto(request(1, name, mode, **options), ("127.0.0.1", port))
        blksize = 512  # until an OACK says otherwise (RFC 2347)
        window = 1
        received = bytearray()
        oack: dict[str, str] = {}
        expected, since_ack, duplicates = 1, 0, 0
        server: tuple[str, int] | None = None
        last_ack = b""
        tries = 0
        while True:
            try:
                datagram, addr = sock.recvfrom(70000)
            except TimeoutError:
                tries += 1
                if tries > 5 or server is None:
                    raise
                sock.sendto(last_ack, server)
                continue
            server = server or addr
            opcode, block = struct.unpack("!HH", datagram[:4])
            if opcode == 5:
                raise _error(datagram)
            if opcode == 6:
                fields = datagram[2:].rstrip(b"\0").decode().split("\0")
                oack = dict(zip(fields[::2], fields[1::2], strict=True))
                blksize = int(oack.get("blksize", 512))
                window = int(oack.get("windowsize", 1))
                last_ack = struct.pack("!HH", 4, 0)
                sock.sendto(last_ack, server)
                continue
            assert opcode == 3, datagram[:20]
            if block != expected & 0xFFFF:
                duplicates += 1
                last_ack = struct.pack("!HH", 4, (expected - 1) & 0xFFFF)
                sock.sendto(last_ack, server)
                since_ack = 0
                continue
            payload = datagram[4:]
            received += payload
            expected += 1
            since_ack += 1
            tries = 0
            if len(payload) < blksize or since_ack == window:
                last_ack = struct.pack("!HH", 4, block)
                sock.sendto(last_ack, server)
                since_ack = 0
            if len(payload) < blksize:
                return Fetched(bytes(received), oack, server[1], duplicates)
    finally:
        sock.close()
