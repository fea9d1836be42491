"""The HTTPS listener: blocking TLS sockets in worker threads, HTTP/1.1 parsed by h11.

Phones open a new TLS connection for every file, so the handshake is the cost
of a request. asyncio's TLS layer passes every record through Python; here a
thread per connection runs ``SSLSocket.do_handshake`` (OpenSSL releases the GIL
for the whole handshake, so handshakes run in parallel with the rest of the
server) and the socket's reads and writes, and h11 turns bytes into requests
(decisions/0013).

Limits (the same as the HTTP listener's, ``servers.connections``): a connection
is admitted at accept under the per-address and global caps, and one thread
serves it, so stalling clients hold at most their cap of threads; from accept it
has ``header_timeout`` seconds to finish the handshake and send its first
request's headers (a ``Watchdog`` deadline, which bytes arriving do not move); a
kept-alive connection gets as long again after each response. Every failed
handshake writes one security line with OpenSSL's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import BinaryIO

import h11

from phoneprov.policy import Reason
from phoneprov.provisioning.audit import Audit
from phoneprov.servers.connections import Admission
from phoneprov.servers.phonehttp.deadlines import Deadline, Watchdog, shut
from phoneprov.servers.phonehttp.gate import FifoGate, default_permits
from phoneprov.servers.phonehttp.message import PhoneRequest, PhoneResponse, file_part
from phoneprov.servers.phonehttp.parking import Parking
from phoneprov.servers.phonehttp.router import PhoneRouter
from phoneprov.servers.proxied import ProxyGate
from phoneprov.servers.reload import TlsContexts

READ_SIZE = 64 * 1024
FILE_CHUNK = 256 * 1024
MAX_HEADERS = 32 * 1024  # request line and headers, as aiohttp allows
DRAIN_LIMIT = 64 * 1024  # an unread request body up to this is read so the connection stays
SMALL_BODY = 64 * 1024  # a response up to this is sent holding the gate's permit
IO_TIMEOUT = 60.0  # one read or write of a connection past its headers (nginx's default)
log = logging.getLogger("phoneprov.server")
REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


def handshake_reason(error: BaseException) -> str:
    """OpenSSL's reason for a failed handshake, as the security log names it."""
    if isinstance(error, ssl.SSLError):
        reason = (error.reason or error.__class__.__name__).lower().replace("_", "-")
        detail = getattr(error, "verify_message", "")
        return f"{reason}: {detail}" if detail else reason
    if isinstance(error, TimeoutError):
        return "handshake-timeout"
    return error.__class__.__name__.lower()


class _Date:
    """The Date header (RFC 9110 §6.6.1), formatted once per second."""

    def __init__(self) -> None:
        self.second = 0
        self.value = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self.second:
            self.value = email.utils.formatdate(second, usegmt=True).encode()
            self.second = second
        return self.value


class _Body:
    """A request body read from the connection as the handler asks for it."""

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.buffer = b""
        self.ended = False

    def read(self, size: int) -> bytes:
        while not self.buffer and not self.ended:
            event = self.connection.next_event()
            if isinstance(event, h11.Data):
                self.buffer = bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.ended = True
            else:
                raise ConnectionError(f"unexpected {type(event).__name__} in a request body")
        chunk, self.buffer = self.buffer[:size], self.buffer[size:]
        return chunk


class _Connection:
    """One accepted connection, served by one worker thread."""

    def __init__(self, listener: HttpsListener, sock: socket.socket, ip: str) -> None:
        self.listener = listener
        self.sock = sock
        self.ip = ip
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
        self.peer_cert: bytes | None = None
        self.deadline: Deadline | None = None
        self.since = time.monotonic()  # its place in the gate's queue: accepted, or resumed

    def next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        """The next h11 event, reading from the socket as needed; ConnectionError when the
        client breaks off (closed, reset or malformed mid-request)."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as error:
                raise ConnectionError(str(error)) from error
            if event is not h11.NEED_DATA:
                return event
            if self.h11.they_are_waiting_for_100_continue:
                self.send(h11.InformationalResponse(status_code=100, headers=[]))
            self.h11.receive_data(self._read())

    def _read(self) -> bytes:
        """The next bytes from the client; while they are not there (even a TLS record's
        last byte) the thread waits without its permit."""
        sock = self.sock
        timeout = sock.gettimeout()
        sock.setblocking(False)
        try:
            while True:
                try:
                    return sock.recv(READ_SIZE)
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError as error:
                    raise ConnectionError(str(error)) from error
                with self.listener.gate.released(self.since):
                    if not _ready(sock, select.POLLIN, timeout):
                        raise TimeoutError("no bytes from the client in time")
        finally:
            sock.settimeout(timeout)

    def send(self, event: h11.Event) -> None:
        data = self.h11.send(event)
        if data:
            self.sock.sendall(data)

    def idle(self) -> bool:
        """Nothing to read yet: no bytes in h11, OpenSSL or the socket."""
        assert isinstance(self.sock, ssl.SSLSocket)
        if self.h11.trailing_data[0] or self.sock.pending():
            return False
        return not _ready(self.sock, select.POLLIN, 0)

    def serve(self) -> bool:
        """Answer requests until the client is idle (True: park the connection) or done."""
        listener = self.listener
        while True:
            if self.idle():
                return True
            event = self.next_event()
            if not isinstance(event, h11.Request):
                return False  # ConnectionClosed: the client is done
            assert self.deadline is not None
            if not listener.watchdog.cancel(self.deadline):
                return False
            self.sock.settimeout(IO_TIMEOUT)
            request = PhoneRequest(
                method=event.method.decode("ascii", "replace"),
                target=event.target.decode("ascii", "replace"),
                headers={
                    name.decode("ascii", "replace"): value.decode("latin-1")
                    for name, value in event.headers
                },
                ip=self.ip,
                body=_Body(self),
                peer_cert=self.peer_cert,
            )
            with listener.request():
                try:
                    response = listener.router.handle(request)
                except (ConnectionError, OSError):
                    raise
                except Exception:
                    # As aiohttp does: the traceback to the journal, a 500 to the phone.
                    log.exception("error handling %s %r", request.method, request.path)
                    response = PhoneResponse.text(500, "internal server error\n")
                    response.headers["Connection"] = "close"
                self.respond(request, response)
            if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
                return False
            self.h11.start_next_cycle()
            # The next request's headers must arrive in time too (keep-alive).
            self.deadline = listener.watchdog.add(self.sock, listener.keepalive_timeout)

    def _drained(self) -> bool:
        """Read an unread request body up to DRAIN_LIMIT; True when it ended."""
        if self.h11.their_state is not h11.SEND_BODY:
            return True  # read to its end (DONE, or MUST_CLOSE after "Connection: close")
        if self.h11.they_are_waiting_for_100_continue:
            return False  # the client has not sent the body: never ask for it
        left = DRAIN_LIMIT
        body = _Body(self)
        while left > 0:
            chunk = body.read(left)
            if not chunk:
                return body.ended
            left -= len(chunk)
        return False

    def respond(self, request: PhoneRequest, response: PhoneResponse) -> None:
        headers = [(b"date", self.listener.date.now())]
        headers += [
            (name.encode(), value.encode("latin-1")) for name, value in response.headers.items()
        ]
        status, size, part = response.status, response.size, None
        if response.file is not None and request.method == "GET":
            range_header = request.headers.get("range")
            part = file_part(range_header, size) if range_header else None
            if part is not None and part[0] >= size:
                status, part = 416, None
                headers.append((b"content-range", f"bytes */{size}".encode()))
                response = PhoneResponse(416)
                size = 0
            elif part is not None:
                status = 206
                headers.append((b"content-range", f"bytes {part[0]}-{part[1]}/{size}".encode()))
                size = part[1] - part[0] + 1
        headers.append((b"content-length", str(size).encode()))
        if not self._drained():
            headers.append((b"connection", b"close"))
        head = (
            self.h11.send(
                h11.Response(status_code=status, headers=headers, reason=REASONS.get(status, b""))
            )
            or b""
        )
        if request.method == "HEAD" or status in (204, 304):
            self.sock.sendall(head + (self.h11.send(h11.EndOfMessage()) or b""))
        elif response.file is None:
            data = head + (self.h11.send(h11.Data(data=response.body)) or b"")
            if len(data) <= SMALL_BODY:  # fits the socket's buffer: no wait
                self.sock.sendall(data)
            else:
                with self.listener.gate.released(self.since):
                    self.sock.sendall(data)
            self.send(h11.EndOfMessage())
        else:
            self.sock.sendall(head)
            # A file goes out at the client's pace: no permit held meanwhile.
            with self.listener.gate.released(self.since), response.file.open("rb") as stream:
                self._send_file(stream, part[0] if part else 0, size)
            self.send(h11.EndOfMessage())

    def _send_file(self, stream: BinaryIO, offset: int, size: int) -> None:
        stream.seek(offset)
        left = size
        while left > 0:
            chunk = stream.read(min(FILE_CHUNK, left))
            if not chunk:
                raise ConnectionError("the file shrank while it was sent")
            for piece in self.h11.send_with_data_passthrough(h11.Data(data=chunk)) or []:
                self.sock.sendall(piece)
            left -= len(chunk)


class HttpsListener:
    """Accepts on ``sock`` in one thread; each admitted connection gets a worker thread."""

    def __init__(
        self,
        sock: socket.socket,
        contexts: TlsContexts,
        router: PhoneRouter,
        admission: Admission,
        audit: Audit,
        grace: float,
        proxy: ProxyGate | None = None,
    ) -> None:
        self.sock = sock
        self.grace = grace
        self.proxy = proxy  # PROXY protocol headers: servers.proxied
        self.contexts = contexts
        self.router = router
        self.admission = admission
        self.audit = audit
        self.header_timeout = admission.limits.header_timeout
        # aiohttp's keep-alive slack: the admission deadline closes a first request first.
        self.keepalive_timeout = self.header_timeout + 1.0
        self.port = int(sock.getsockname()[1])
        self.watchdog = Watchdog()
        self.gate = FifoGate(default_permits())
        self.date = _Date()
        self.workers = ThreadPoolExecutor(
            max_workers=admission.max_connections, thread_name_prefix="https"
        )
        self.open: set[_Connection] = set()
        self.in_flight = 0
        self.lock = threading.Condition()
        self.stopping = False
        sock.setblocking(True)
        self.acceptor = threading.Thread(target=self._accept, name="https-accept", daemon=True)
        self.parking = Parking(self._resume)

    def start(self) -> None:
        self.acceptor.start()

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        with self.lock:
            self.in_flight += 1
        try:
            yield
        finally:
            with self.lock:
                self.in_flight -= 1
                if not self.in_flight:
                    self.lock.notify_all()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                if self.stopping:
                    return
                time.sleep(0.01)  # EMFILE and the like: the caps should prevent it
                continue
            ip = str(peer[0])
            balancer = self.proxy is not None and ip in self.proxy.trusted
            refuse = functools.partial(_reset, conn)
            if not self.admission.admit_address(ip, "https", refuse, per_address=not balancer):
                continue
            self.workers.submit(self._serve, conn, ip)

    def _serve(self, raw: socket.socket, ip: str) -> None:
        connection = _Connection(self, raw, ip)
        deadline = self.watchdog.add(raw, self.header_timeout, lambda: self._slow(connection.ip))
        connection.deadline = deadline
        with self.lock:
            self.open.add(connection)
        phone = ip if self.proxy is None else self.proxy.address(raw, ip, "https")
        if phone is not None:
            connection.ip = phone  # the address a balancer's PROXY header named
        self.gate.acquire(connection.since)
        try:
            if phone is not None and self._handshake(connection, deadline):
                self._work(connection)
            else:
                self._finish(connection)
        finally:
            self.gate.release()

    def _run(self, connection: _Connection) -> None:
        """A resumed connection: wait for its turn, then serve it."""
        self.gate.acquire(connection.since)
        try:
            self._work(connection)
        finally:
            self.gate.release()

    def _work(self, connection: _Connection) -> None:
        """Serve a connection in this worker thread until it is idle (parked) or done."""
        try:
            if connection.serve():
                self.parking.park(connection.sock, connection)
                return
            _close_notify(connection.sock)
        except (OSError, ConnectionError, h11.LocalProtocolError):
            pass  # the client went away; the handler logged an upload it cut short
        self._finish(connection)

    def _resume(self, connection: _Connection) -> None:
        """A parked connection became readable (a request, a close or its deadline)."""
        connection.since = time.monotonic()
        try:
            self.workers.submit(self._run, connection)
        except RuntimeError:  # the listener is stopping
            self._finish(connection)

    def _finish(self, connection: _Connection) -> None:
        if connection.deadline is not None:
            self.watchdog.cancel(connection.deadline)
        with self.lock:
            self.open.discard(connection)
        with contextlib.suppress(OSError):
            connection.sock.close()
        self.admission.leave(connection.ip)

    def _handshake(self, connection: _Connection, deadline: Deadline) -> bool:
        raw = connection.sock
        try:
            tls = self.contexts.current.wrap_socket(
                raw, server_side=True, do_handshake_on_connect=False
            )
        except OSError:
            return False
        connection.sock = tls
        self.watchdog.retarget(deadline, tls)
        tls.setblocking(False)
        try:
            while not _handshake_step(tls):
                # Waiting for the client's next flight: without a permit. The watchdog's
                # shutdown at the deadline wakes the wait (the socket turns readable).
                with self.gate.released(connection.since):
                    _ready(tls, select.POLLIN, None)
            tls.setblocking(True)
        except (OSError, EOFError) as error:
            if not deadline.expired:  # an expired deadline wrote its own (throttled) line
                self.audit.refused(
                    protocol="https",
                    ip=connection.ip,
                    identity="-",
                    reason=Reason.TLS_HANDSHAKE.value,
                    detail=handshake_reason(error),
                )
            return False
        connection.peer_cert = tls.getpeercert(binary_form=True)
        return True

    def _slow(self, ip: str) -> None:
        self.admission.reports.note(
            ip, "https", Reason.SLOW_CLIENT, f"no-request-headers-after:{self.header_timeout:g}s"
        )

    async def close(self) -> None:
        """The runner's stop: ``close_now`` off the event loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.close_now, self.grace)

    def close_now(self, grace: float) -> None:
        """Stop accepting, let requests in flight finish (up to ``grace`` s), close the rest."""
        self.stopping = True
        shut(self.sock)
        self.sock.close()
        self.acceptor.join(timeout=5)
        with self.lock:
            self.lock.wait_for(lambda: not self.in_flight, timeout=grace)
            for connection in self.open:
                shut(connection.sock)
        self.workers.shutdown(wait=False, cancel_futures=True)
        self.parking.stop()
        self.watchdog.stop()


def _handshake_step(tls: ssl.SSLSocket) -> bool:
    """Run the handshake on a non-blocking socket as far as the bytes at hand allow:
    True when done, False when it needs the client's next flight."""
    while True:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLWantWriteError:
            # Our flight did not fit in the socket's buffer: wait until it drains (the
            # watchdog's shutdown at the deadline ends the wait too).
            if not _ready(tls, select.POLLOUT, None):
                raise TimeoutError("the client does not read the handshake") from None
        else:
            return True


def _ready(sock: socket.socket, events: int, timeout: float | None) -> bool:
    """Whether ``sock`` is ready for ``events`` within ``timeout`` seconds (None: wait).

    poll, not select: descriptors past 1024 are common with 1,000 phones connected."""
    poller = select.poll()
    poller.register(sock, events)
    return bool(poller.poll(None if timeout is None else timeout * 1000))


def _close_notify(sock: socket.socket) -> None:
    """End the TLS session with our close_notify (RFC 8446 §6.1), without waiting for the
    client's: clients such as ab count a connection closed without it as failed."""
    assert isinstance(sock, ssl.SSLSocket)
    sock.setblocking(False)
    with contextlib.suppress(OSError, ValueError):
        sock.unwrap()


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset: the socket is freed now, without a FIN_WAIT on our side."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()
