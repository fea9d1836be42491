"""FTP and TFTP, as a phone uses them: one session per file.

FTP: the phones' default account is ``PlcmSpIp``/``PlcmSpIp`` (SPEC §4); a
missing file is ``550`` (mapped to 404 so the plan reads every protocol alike).
TFTP: RFC 1350 with the RFC 2347/2348 ``blksize`` and RFC 2349 ``tsize``
options; error 1 is a missing file (404), error 2 an access violation (403).
"""

from __future__ import annotations

import asyncio
import ftplib
import io
import socket

from phoneprov.protocols.tftp import codec
from phoneprov.sim.endpoint import Endpoint
from phoneprov.sim.plan import Outcome, Step
from phoneprov.sim.transport import MAX_KEPT_BODY

DEFAULT_FTP_USER = "PlcmSpIp"
TFTP_BLKSIZE = 1428  # fits an Ethernet frame with IP/UDP/TFTP headers (RFC 2348 example)
TFTP_RETRIES = 5


def _ftp_status(error: ftplib.Error, method: str) -> int:
    code = str(error)[:3]
    if code == "530":
        return 401
    if code == "550" and method != "PUT":
        return 404
    if code.startswith("4"):
        return 503
    return 403


class FtpTransport:
    """FTP through the stdlib client, run in a worker thread per session."""

    can_head = True  # SIZE answers what HEAD would
    tls_version: str | None = None

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.endpoint = endpoint
        self.user = user or endpoint.user or DEFAULT_FTP_USER
        self.password = password or endpoint.password or DEFAULT_FTP_USER
        self.timeout = timeout

    def _session(self, step: Step, body: bytes) -> Outcome:
        ftp = ftplib.FTP(timeout=self.timeout)
        try:
            ftp.connect(self.endpoint.host, self.endpoint.port)
            ftp.login(self.user, self.password)
            path = self.endpoint.base_path.lstrip("/") + step.path
            if step.method == "PUT":
                verb = "STOR" if step.append_from is None else "APPE"  # the phone's append
                ftp.storbinary(f"{verb} {path}", io.BytesIO(body))
                return Outcome(201, size=len(body))
            if step.method == "HEAD":
                ftp.voidcmd("TYPE I")
                return Outcome(200, size=ftp.size(path))
            kept = bytearray()
            received = 0

            def collect(chunk: bytes) -> None:
                nonlocal received
                received += len(chunk)
                if len(kept) < MAX_KEPT_BODY:
                    kept.extend(chunk)

            ftp.retrbinary(f"RETR {path}", collect)
            return Outcome(200, bytes(kept), size=received)
        except ftplib.Error as error:
            return Outcome(_ftp_status(error, step.method), error=f"ftp: {error}")
        except ConnectionRefusedError:
            return Outcome(
                0,
                error=f"connect: could not connect to {self.endpoint.host} port "
                f"{self.endpoint.port}: connection refused",
            )
        except (OSError, EOFError) as error:
            return Outcome(0, error=f"ftp: {error}")
        finally:
            try:
                ftp.quit()
            except (OSError, EOFError, ftplib.Error):
                ftp.close()

    async def request(self, step: Step, body: bytes = b"") -> Outcome:
        return await asyncio.to_thread(self._session, step, body)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


class TftpError(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


def _error_outcome(packet: codec.Error) -> Outcome:
    status = {1: 404, 2: 403}.get(packet.code, 500)
    return Outcome(status, error=f"tftp: error {packet.code}: {packet.message}")


class TftpTransport:
    """A TFTP client on its own UDP socket per transfer (the server answers from a new port)."""

    can_head = False
    tls_version: str | None = None

    def __init__(self, endpoint: Endpoint, *, timeout: float = 2.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    async def request(self, step: Step, body: bytes = b"") -> Outcome:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.endpoint.host else socket.AF_INET
        transport, proto = await loop.create_datagram_endpoint(
            _Datagrams,
            family=family,
            local_addr=("::" if family == socket.AF_INET6 else "0.0.0.0", 0),
        )
        try:
            path = self.endpoint.base_path.lstrip("/") + step.path
            if step.method == "PUT":
                return await self._write(transport, proto, path, body)
            return await self._read(transport, proto, path)
        except TftpError as failure:
            return failure.outcome
        finally:
            transport.close()

    async def _exchange(
        self,
        transport: asyncio.DatagramTransport,
        proto: _Datagrams,
        packet: bytes,
        peer: tuple[str, int] | None,
    ) -> tuple[codec.Packet, tuple[str, int]]:
        """Send ``packet`` and wait for the answer, resending on timeout (RFC 1350 §2)."""
        server = (self.endpoint.host, self.endpoint.port)
        for _ in range(TFTP_RETRIES):
            transport.sendto(packet, peer or server)
            try:
                while True:
                    data, addr = await asyncio.wait_for(proto.queue.get(), self.timeout)
                    if peer is not None and addr[:2] != peer[:2]:
                        continue  # another TID: not our transfer (RFC 1350 §4)
                    try:
                        return codec.decode(data), addr
                    except codec.TftpError:
                        continue
            except TimeoutError:
                continue
        raise TftpError(
            Outcome(
                0,
                error=f"timeout: no TFTP answer from {self.endpoint.host} "
                f"port {self.endpoint.port}",
            )
        )

    async def _read(
        self, transport: asyncio.DatagramTransport, proto: _Datagrams, path: str
    ) -> Outcome:
        request = codec.Request(
            codec.Opcode.RRQ,
            path,
            codec.Mode.OCTET,
            (("blksize", str(TFTP_BLKSIZE)), ("tsize", "0")),
        )
        packet, peer = await self._exchange(transport, proto, codec.encode(request), None)
        blksize = 512
        kept = bytearray()
        received = 0
        expected = 1
        while True:
            if isinstance(packet, codec.Error):
                return _error_outcome(packet)
            if isinstance(packet, codec.OAck):
                blksize = int(dict(packet.options).get("blksize", "512"))
                packet, peer = await self._exchange(transport, proto, codec.ack_packet(0), peer)
                continue
            if not isinstance(packet, codec.Data):
                raise TftpError(Outcome(0, error="protocol: unexpected TFTP packet"))
            if packet.block == expected % 65536:
                received += len(packet.payload)
                if len(kept) < MAX_KEPT_BODY:
                    kept += packet.payload
                expected += 1
                if len(packet.payload) < blksize:
                    transport.sendto(codec.ack_packet(packet.block), peer)
                    return Outcome(200, bytes(kept), size=received)
            packet, peer = await self._exchange(
                transport, proto, codec.ack_packet(packet.block), peer
            )

    async def _write(
        self, transport: asyncio.DatagramTransport, proto: _Datagrams, path: str, body: bytes
    ) -> Outcome:
        request = codec.Request(
            codec.Opcode.WRQ,
            path,
            codec.Mode.OCTET,
            (("blksize", str(TFTP_BLKSIZE)), ("tsize", str(len(body)))),
        )
        packet, peer = await self._exchange(transport, proto, codec.encode(request), None)
        blksize = 512
        if isinstance(packet, codec.OAck):
            blksize = int(dict(packet.options).get("blksize", "512"))
        elif isinstance(packet, codec.Error):
            return _error_outcome(packet)
        elif not (isinstance(packet, codec.Ack) and packet.block == 0):
            raise TftpError(Outcome(0, error="protocol: unexpected TFTP answer to a write"))
        block = 1
        offset = 0
        while True:
            chunk = body[offset : offset + blksize]
            packet, peer = await self._exchange(
                transport, proto, codec.data_packet(block % 65536, chunk), peer
            )
            if isinstance(packet, codec.Error):
                return _error_outcome(packet)
            if isinstance(packet, codec.Ack) and packet.block == block % 65536:
                offset += len(chunk)
                block += 1
                if len(chunk) < blksize:
                    return Outcome(201, size=len(body))
