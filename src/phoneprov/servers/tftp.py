"""The TFTP listener: asyncio datagram endpoints driving ``protocols.tftp``.

One socket on the configured port takes requests. Each accepted request gets
its own socket on an ephemeral port, the server's transfer ID (RFC 1350 §4), and
one transfer state machine; timers are ``loop.call_at`` at the machine's
deadline. Every request goes through the phone services with the TFTP principal,
so the one policy decides; refusals become TFTP error packets.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass
from typing import cast

from phoneprov.config import TftpSettings
from phoneprov.errors import DiskFullError, ListenError, PhoneprovError
from phoneprov.model import Principal, PrincipalKind, Protocol
from phoneprov.policy import Reason
from phoneprov.protocols.tftp.codec import (
    ErrorCode,
    Request,
    TftpError,
    decode,
    error_packet,
)
from phoneprov.protocols.tftp.transfer import (
    BytesContent,
    Content,
    Limits,
    ReadTransfer,
    Step,
    WriteTransfer,
    negotiate,
    prepare_content,
)
from phoneprov.provisioning.gate import NotFound, Refused
from phoneprov.provisioning.services import PhoneServices
from phoneprov.provisioning.uploads import UploadWriter

Address = tuple[str, int]
PRINCIPAL = Principal(PrincipalKind.BOOTSTRAP, Protocol.TFTP, name="tftp")


class _FileContent:
    """Content read from an open file with pread: no shared offset, no mapping to go stale."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = os.fstat(fd).st_size

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)


@dataclass
class _Job:
    """What a transfer needs besides its state machine: for the log and the end."""

    request: Request
    ip: str
    started: float
    fd: int | None = None  # the served file, closed with the transfer
    writer: UploadWriter | None = None  # the upload, committed when the transfer succeeds


class _Session(asyncio.DatagramProtocol):
    """One transfer on its own socket, talking to one client address."""

    def __init__(
        self, server: TftpServer, peer: Address, transfer: ReadTransfer | WriteTransfer, job: _Job
    ) -> None:
        self.server = server
        self.peer = peer
        self.transfer = transfer
        self.job = job
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.holding = False  # an upload is being committed; its final ACK waits

    def send(self, datagrams: tuple[bytes, ...]) -> None:
        if self.transport is not None and not self.closed:
            for datagram in datagrams:
                self.transport.sendto(datagram, self.peer)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self._apply(self.transfer.start(self.loop.time()))

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if self.closed or self.transport is None:
            return
        if addr != self.peer:
            # RFC 1350 §4: a packet from another TID gets error 5 and does not disturb us.
            self.transport.sendto(error_packet(ErrorCode.UNKNOWN_TID, "unknown transfer ID"), addr)
            return
        self._apply(self.transfer.receive(data, self.loop.time()))

    def error_received(self, exc: Exception) -> None:
        """ICMP errors (client gone) are left to the retry limit, like a lost packet."""

    def _apply(self, step: Step) -> None:
        if step.outcome is not None and step.outcome.ok and self.job.writer is not None:
            # The final ACK tells the phone its upload is stored: send it only once the
            # upload is committed, and an error instead if it cannot be.
            self.holding = True
            self.server.commit(self, step.send)
        elif not self.holding:
            self.send(step.send)
        if step.outcome is not None and not self.holding:
            self.server.finished(self, step.outcome.ok, step.outcome.bytes)
        deadline = self.transfer.deadline
        if deadline is None:
            self.close()
        elif self.timer is None or self.timer.when() > deadline:
            # A timer that fires early re-arms itself (see _expire), so moving the
            # deadline later, which happens on every ACK, costs no timer churn.
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self.loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self.timer = None
        deadline = self.transfer.deadline
        if self.closed or deadline is None:
            return
        now = self.loop.time()
        if now < deadline:
            self.timer = self.loop.call_at(deadline, self._expire)
            return
        self._apply(self.transfer.expire(now))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None:
            self.transport.close()
        if self.job.fd is not None:
            os.close(self.job.fd)
            self.job.fd = None
        if self.job.writer is not None:
            # A successful upload's writer was handed to the commit task; this one failed.
            self.job.writer.abort()
            self.job.writer = None
        self.server.forget(self)


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, server: TftpServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.server.request(data, addr)

    def error_received(self, exc: Exception) -> None:
        """A client that went away before our error reached it: nothing to do."""


class TftpServer:
    """The running listener; ``port`` is the bound port, ``close()`` stops everything."""

    def __init__(self, settings: TftpSettings, services: PhoneServices) -> None:
        self.settings = settings
        self.services = services
        self.loop = asyncio.get_running_loop()
        self.sessions: dict[Address, _Session] = {}  # by client address: one transfer each
        self.opening: set[asyncio.Task[None]] = set()
        self.committing: set[asyncio.Task[None]] = set()
        self.transport: asyncio.DatagramTransport | None = None
        self.limits = Limits(timeout=settings.timeout, retries=settings.retries)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def _error(self, addr: Address, code: ErrorCode, message: str) -> None:
        if self.transport is not None:
            self.transport.sendto(error_packet(code, message), addr)

    def request(self, data: bytes, addr: Address) -> None:
        """A datagram on the main port: start a transfer or answer with an error."""
        peer = addr  # (host, port) for IPv4, (host, port, flow, scope) for IPv6
        if peer in self.sessions:
            return  # the client repeated its request; the transfer's own timer answers
        try:
            packet = decode(data)
        except TftpError as error:
            self._refuse(peer, error.code, str(error), Reason.MALFORMED_REQUEST, "")
            return
        if not isinstance(packet, Request):
            # Late traffic of an ended transfer (tftp-hpa ACKs the error it was sent) or an
            # error packet: answering could start a loop between two hosts (RFC 1350 §7).
            return
        if len(self.sessions) >= self.settings.max_transfers:
            self._refuse(
                peer,
                ErrorCode.NOT_DEFINED,
                f"server busy: {len(self.sessions)} transfers in progress; try again",
                Reason.BUSY,
                packet.filename,
            )
            return
        try:
            transfer, job = self._prepare(packet, peer)
        except Refused:
            # The gate already wrote the security line with the policy reason.
            self._answer(peer, packet, ErrorCode.ACCESS_VIOLATION, "access violation")
            return
        except NotFound:
            self._answer(peer, packet, ErrorCode.FILE_NOT_FOUND, "file not found")
            return
        except TftpError as error:
            self._answer(peer, packet, error.code, str(error))
            return
        except DiskFullError:
            # RFC 1350 error 3; the uploads service wrote the security line.
            self._answer(peer, packet, ErrorCode.DISK_FULL, "disk full")
            return
        except (OSError, PhoneprovError) as error:
            # The detail (a server path, an errno) is for the administrator, not the client.
            self._security(peer[0], Reason.SERVER_ERROR, packet.filename, str(error))
            self._answer(peer, packet, ErrorCode.NOT_DEFINED, "the file cannot be read")
            return
        session = _Session(self, peer, transfer, job)
        self.sessions[peer] = session
        task = self.loop.create_task(self._open(session))
        self.opening.add(task)
        task.add_done_callback(self.opening.discard)

    def _refuse(
        self, peer: Address, code: ErrorCode, message: str, reason: Reason, path: str
    ) -> None:
        self._security(peer[0], reason, path, message)
        self._error(peer, code, message)

    def _security(self, ip: str, reason: Reason, path: str, detail: str) -> None:
        """One security-log line for a refusal the gate did not make itself."""
        self.services.audit.refused(
            protocol=Protocol.TFTP.value,
            ip=ip,
            identity=PRINCIPAL.label(),
            reason=reason.value,
            path=path,
            detail=detail,
        )

    def _answer(self, peer: Address, request: Request, code: ErrorCode, message: str) -> None:
        self._error(peer, code, message)
        self._log(request, peer[0], code.name.lower().replace("_", "-"), 0, time.perf_counter())

    def _prepare(
        self, request: Request, peer: Address
    ) -> tuple[ReadTransfer | WriteTransfer, _Job]:
        """Ask the phone services, then build the state machine; raises what it refuses."""
        job = _Job(request, peer[0], time.perf_counter())
        if request.is_write:
            _resource, writer = self.services.uploads.open(
                PRINCIPAL, request.filename, ip=peer[0], decoded=True
            )
            limits = Limits(self.limits.timeout, self.limits.retries, max_upload=writer.limit)
            try:
                negotiated = negotiate(request, None, limits)
            except TftpError:
                writer.abort()
                raise
            job.writer = writer
            return WriteTransfer(negotiated, request.mode, limits), job
        grant = self.services.reads.read(PRINCIPAL, request.filename, ip=peer[0], decoded=True)
        content: Content
        if grant.body is not None:
            content = BytesContent(grant.body)
        else:
            assert grant.path is not None
            job.fd = os.open(grant.path, os.O_RDONLY)
            content = _FileContent(job.fd)
        try:
            content = prepare_content(content, request.mode)
            negotiated = negotiate(request, content.size, self.limits)
        except TftpError:
            if job.fd is not None:
                os.close(job.fd)
            raise
        return ReadTransfer(negotiated, content, self.limits), job

    async def _open(self, session: _Session) -> None:
        """Open the transfer's own socket (its TID); the session starts once it is bound."""
        assert self.transport is not None
        host = self.transport.get_extra_info("sockname")[0]
        family = self.transport.get_extra_info("socket").family
        try:
            await self.loop.create_datagram_endpoint(
                lambda: session, local_addr=(host, 0), family=family
            )
        except OSError as error:
            self._security(
                session.peer[0], Reason.NO_SOCKET, session.job.request.filename, str(error)
            )
            self._error(session.peer, ErrorCode.NOT_DEFINED, "server cannot open a socket")
            session.close()

    def finished(self, session: _Session, ok: bool, size: int) -> None:
        """A transfer's outcome is known: write the access line, note the sighting."""
        job = session.job
        self._log(job.request, job.ip, "ok" if ok else "aborted", size, job.started)
        self.services.identity.note(PRINCIPAL, ip=job.ip, agent=None)

    def commit(self, session: _Session, final: tuple[bytes, ...]) -> None:
        """Store a received upload off the loop (fsync), then send ``final`` (the last ACK)."""
        assert isinstance(session.transfer, WriteTransfer) and session.job.writer is not None
        writer, session.job.writer = session.job.writer, None
        task = self.loop.create_task(self._commit(session, writer, final))
        self.committing.add(task)
        task.add_done_callback(self.committing.discard)

    async def _commit(
        self, session: _Session, writer: UploadWriter, final: tuple[bytes, ...]
    ) -> None:
        assert isinstance(session.transfer, WriteTransfer)
        upload = session.transfer.upload

        def store() -> int:
            writer.write(upload)
            return writer.commit()

        try:
            size = await self.loop.run_in_executor(None, store)
        except (OSError, PhoneprovError) as error:
            writer.abort()
            session.send((error_packet(ErrorCode.DISK_FULL, "upload could not be stored"),))
            if not isinstance(error, DiskFullError):  # the uploads service logged that one
                self._security(
                    session.peer[0], Reason.UPLOAD_FAILED, session.job.request.filename, str(error)
                )
            session.holding = False
            self.finished(session, False, 0)
            session.close()
            return
        session.send(final)
        session.holding = False
        self.finished(session, True, size)

    def _log(self, request: Request, ip: str, status: str, size: int, started: float) -> None:
        self.services.audit.access(
            protocol=Protocol.TFTP.value,
            ip=ip,
            identity=PRINCIPAL.label(),
            method="WRQ" if request.is_write else "RRQ",
            path=request.filename,
            status=status,
            size=size,
            duration=time.perf_counter() - started,
        )

    def forget(self, session: _Session) -> None:
        if self.sessions.get(session.peer) is session:
            del self.sessions[session.peer]

    async def close(self) -> None:
        """Stop listening, end every transfer and wait for uploads being committed."""
        if self.transport is not None:
            self.transport.close()
        for task in self.opening:
            task.cancel()
        for session in list(self.sessions.values()):
            session.close()
        tasks = self.opening | self.committing
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


async def start_tftp(settings: TftpSettings, services: PhoneServices) -> TftpServer:
    """Bind the TFTP port and return the running server.

    Access and security lines go through ``services.audit``. Raises ListenError when
    the port cannot be bound.
    """
    server = TftpServer(settings, services)
    family = socket.AF_INET6 if ":" in settings.bind else socket.AF_INET
    try:
        transport, _ = await server.loop.create_datagram_endpoint(
            lambda: _Listener(server), local_addr=(settings.bind, settings.port), family=family
        )
    except OSError as error:
        raise ListenError(
            f"cannot bind TFTP on {settings.bind}:{settings.port}: {error.strerror}",
            "Choose another [tftp] port in phoneprov.toml or pass --tftp-port; ports below "
            "1024 (69 is the standard) need root or CAP_NET_BIND_SERVICE.",
        ) from None
    server.transport = transport
    return server
