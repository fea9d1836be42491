"""TFTP transfers as sans-IO state machines: datagrams and ``now`` in, datagrams and deadlines out.

``negotiate`` turns a request's options into the values a transfer uses and the
OACK to send (RFC 2347 blksize/tsize/timeout RFC 2348/2349, windowsize RFC 7440).
``ReadTransfer`` serves a file; ``WriteTransfer`` receives an upload. Both are
driven the same way: ``start``, then ``receive`` for each datagram from the
client's TID and ``expire`` when the last returned deadline has passed. Each call
returns a ``Step``. Nothing here opens sockets or files or reads a clock; file
contents come through the ``Content`` seam, which the adapter backs by a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from phoneprov.protocols.tftp.codec import (
    Ack,
    Data,
    Error,
    ErrorCode,
    Mode,
    OAck,
    Request,
    TftpError,
    ack_packet,
    data_packet,
    decode,
    encode,
    error_packet,
    from_netascii,
    to_netascii,
)

MIN_BLKSIZE, MAX_BLKSIZE = 8, 65464  # RFC 2348
MIN_TIMEOUT, MAX_TIMEOUT = 1, 255  # RFC 2349, seconds
MIN_WINDOWSIZE, MAX_WINDOWSIZE = 1, 65535  # RFC 7440
DEFAULT_BLKSIZE = 512  # RFC 1350
# Retransmissions of the first packet before the client has answered anything. A
# request's source address is not proven (UDP, RFC 768), so a forged one would make
# the server send every retry to a victim: 20 bytes in, 6 packets of 516 bytes out
# with retries = 5. One retransmission covers a lost first packet; a client that
# heard nothing repeats its request (RFC 1350 §2), which starts a transfer afresh.
UNANSWERED_RETRIES = 1
_ACK_OPCODE = b"\x00\x04"


class Content(Protocol):
    """The bytes a read transfer serves; the adapter backs it by a file or by memory."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes:
        """Return up to ``length`` bytes at ``offset`` (fewer only at the end)."""
        ...


@dataclass(frozen=True, slots=True)
class BytesContent:
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]


def prepare_content(content: Content, mode: Mode) -> Content:
    """Return what goes on the wire: the content itself, or its netascii form.

    Netascii changes the length, so the whole text is converted up front (config
    files are small); ``tsize`` then reports the exact number of bytes sent.
    """
    if mode is Mode.NETASCII:
        return BytesContent(to_netascii(content.read(0, content.size)))
    return content


@dataclass(frozen=True, slots=True)
class Limits:
    """Server-side bounds: the timeout and retries are the administrator's settings."""

    timeout: float = 2.0
    retries: int = 5
    max_blksize: int = MAX_BLKSIZE
    max_windowsize: int = 64  # bounds one burst; RFC 7440 lets the server lower it
    # One window's payload must fit the client's socket receive buffer, or its tail is
    # dropped on every window: Linux gives a UDP socket 208 KiB by default and charges
    # each 8 KiB datagram about 16 KiB of it. 64 KiB keeps windowsize 16 at blksize 1428
    # (a full Ethernet frame) and lowers it to 8 at blksize 8192.
    max_window_bytes: int = 64 * 1024
    max_upload: int = 10 * 1024**2


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The values a transfer runs with, and the options to acknowledge (empty: no OACK)."""

    blksize: int = DEFAULT_BLKSIZE
    windowsize: int = 1
    timeout: float = 2.0
    tsize: int | None = None
    accepted: tuple[tuple[str, str], ...] = ()


def _number(request: Request, name: str, low: int, high: int | None) -> int | None:
    text = request.option(name)
    if text is None:
        return None
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        upper = "" if high is None else f" to {high}"
        raise TftpError(
            ErrorCode.OPTION_REFUSED,
            f"option {name}={text!r} is out of range; valid values are {low}{upper}",
        )
    return int(text)


def negotiate(request: Request, size: int | None, limits: Limits) -> Negotiated:
    """Return the transfer values for ``request``.

    ``size`` is the number of bytes to send (reads) or None (writes). Raises
    TftpError 8 for an option value outside its RFC range, and 3 when a write
    announces a tsize over ``limits.max_upload``. Unknown options are left out of
    the OACK, as RFC 2347 asks.
    """
    accepted: list[tuple[str, str]] = []
    blksize = _number(request, "blksize", MIN_BLKSIZE, None)
    if blksize is not None:
        # RFC 2348: a server that cannot use the size asked for answers a smaller one.
        blksize = min(blksize, limits.max_blksize, MAX_BLKSIZE)
        accepted.append(("blksize", str(blksize)))
    timeout = _number(request, "timeout", MIN_TIMEOUT, MAX_TIMEOUT)
    if timeout is not None:
        accepted.append(("timeout", str(timeout)))
    tsize = _number(request, "tsize", 0, None)
    if tsize is not None:
        if size is not None:
            tsize = size  # RFC 2349: a reader sends 0 and the server answers the size
        elif tsize > limits.max_upload:
            raise TftpError(
                ErrorCode.DISK_FULL,
                f"upload of {tsize} bytes is over the limit of {limits.max_upload} bytes",
            )
        accepted.append(("tsize", str(tsize)))
    windowsize = _number(request, "windowsize", MIN_WINDOWSIZE, MAX_WINDOWSIZE)
    if windowsize is not None:
        burst = max(1, limits.max_window_bytes // (blksize or DEFAULT_BLKSIZE))
        windowsize = min(windowsize, limits.max_windowsize, burst)
        accepted.append(("windowsize", str(windowsize)))
    return Negotiated(
        blksize=blksize or DEFAULT_BLKSIZE,
        windowsize=windowsize or 1,
        timeout=float(timeout) if timeout is not None else limits.timeout,
        tsize=tsize,
        accepted=tuple(accepted),
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a transfer ended: ``ok``, the bytes moved, and what went wrong if not ok."""

    ok: bool
    bytes: int
    retransmits: int
    error: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    """Datagrams to send now, in order, and the outcome when this step decided the transfer.

    After every call the adapter reads the transfer's ``deadline``: call ``expire``
    then; None means the transfer is over and its socket can close.
    """

    send: tuple[bytes, ...] = ()
    outcome: Outcome | None = None


class _Transfer:
    """What both directions share: negotiated values, retries, the deadline, the end.

    ``retries`` applies once the client has answered (``answered``); before that, at
    most ``UNANSWERED_RETRIES``, whatever the administrator's setting says.
    """

    def __init__(self, negotiated: Negotiated, limits: Limits) -> None:
        self.negotiated = negotiated
        self.retries = limits.retries
        self.answered = False  # the client acknowledged something: its address is real
        self.tries = 0
        self.retransmits = 0
        self.bytes = 0
        self.finished = False
        self.deadline: float | None = None

    def _fail(self, message: str, code: ErrorCode | None) -> Step:
        self.finished = True
        self.deadline = None
        send = () if code is None else (error_packet(code, message),)
        return Step(send, Outcome(False, self.bytes, self.retransmits, message))

    def _decode(self, datagram: bytes) -> Ack | Data | Step:
        """Return the ACK or DATA packet in ``datagram``, or the Step that ends the transfer."""
        try:
            packet = decode(datagram)
        except TftpError as error:
            return self._fail(str(error), error.code)
        if isinstance(packet, Error):
            # RFC 1350 §7: an error packet ends the transfer and is not answered.
            return self._fail(f"client sent error {packet.code}: {packet.message}", None)
        if isinstance(packet, Ack | Data):
            return packet
        return self._fail(f"unexpected {type(packet).__name__} packet", ErrorCode.ILLEGAL_OPERATION)

    def _spend_retry(self) -> Step | None:
        """Count a timeout; return the failing Step once the retries are spent."""
        self.tries += 1
        allowed = self.retries if self.answered else min(self.retries, UNANSWERED_RETRIES)
        if self.tries > allowed:
            plural = "" if allowed == 1 else "s"
            return self._fail(
                f"no answer after {allowed} retransmission{plural}", ErrorCode.NOT_DEFINED
            )
        self.retransmits += 1
        return None

    def _oack(self) -> bytes:
        return encode(OAck(self.negotiated.accepted))


class ReadTransfer(_Transfer):
    """Serve ``content`` (RRQ) a window of blocks at a time (RFC 7440; window 1 is RFC 1350)."""

    def __init__(self, negotiated: Negotiated, content: Content, limits: Limits) -> None:
        super().__init__(negotiated, limits)
        self.content = content
        # Blocks are numbered from 1; the last one is shorter than blksize, even empty.
        self.last_block = content.size // negotiated.blksize + 1
        self.acked = 0  # highest block acknowledged; 0 also stands for the OACK
        self.sent_to = 0  # highest block sent in the window in flight
        self.oack_pending = bool(negotiated.accepted)

    def start(self, now: float) -> Step:
        """Return the OACK (when options were accepted) or the first window."""
        if self.oack_pending:
            self.deadline = now + self.negotiated.timeout
            return Step((self._oack(),))
        return self._send_window(now)

    def _send_window(self, now: float) -> Step:
        size = self.negotiated.blksize
        last = min(self.acked + self.negotiated.windowsize, self.last_block)
        packets = []
        for block in range(self.acked + 1, last + 1):
            payload = self.content.read((block - 1) * size, size)
            # Block numbers wrap to 0 after 65535, as tftp-hpa, curl and atftp expect.
            packets.append(data_packet(block & 0xFFFF, payload))
        self.sent_to = last
        self.deadline = now + self.negotiated.timeout
        return Step(tuple(packets))

    def receive(self, datagram: bytes, now: float) -> Step:
        """Handle a datagram from the client's TID; return what to send."""
        if self.finished:
            return Step()
        if len(datagram) == 4 and datagram[:2] == _ACK_OPCODE and not self.oack_pending:
            # The hot path, once per window: a well-formed ACK needs no general decoding.
            return self._acknowledged(int.from_bytes(datagram[2:], "big"), now)
        packet = self._decode(datagram)
        if isinstance(packet, Step):
            return packet
        if isinstance(packet, Data):
            return self._fail("DATA sent to a read transfer", ErrorCode.ILLEGAL_OPERATION)
        if self.oack_pending:
            if packet.block != 0:
                return Step()
            self.oack_pending = False
            self.answered = True
            self.tries = 0
            return self._send_window(now)
        return self._acknowledged(packet.block, now)

    def _acknowledged(self, block: int, now: float) -> Step:
        # Map the 16-bit wire number onto the window in flight. An ACK outside
        # (acked, sent_to] is a duplicate or stale: ignore it and let the timer
        # retransmit. Answering duplicates is the Sorcerer's Apprentice bug
        # (RFC 1123 §4.2.3.1). An ACK inside the window moves it (RFC 7440 §4).
        delta = (block - self.acked) & 0xFFFF
        if delta == 0 or delta > self.sent_to - self.acked:
            return Step()
        self.acked += delta
        self.bytes = min(self.acked * self.negotiated.blksize, self.content.size)
        self.answered = True
        self.tries = 0
        if self.acked >= self.last_block:
            self.finished = True
            self.deadline = None
            return Step(outcome=Outcome(True, self.content.size, self.retransmits))
        return self._send_window(now)

    def expire(self, now: float) -> Step:
        """The deadline passed without progress: retransmit the window (or OACK), or give up."""
        if self.finished:
            self.deadline = None
            return Step()
        failed = self._spend_retry()
        if failed is not None:
            return failed
        if self.oack_pending:
            self.deadline = now + self.negotiated.timeout
            return Step((self._oack(),))
        return self._send_window(now)


class WriteTransfer(_Transfer):
    """Receive an upload (WRQ), acknowledging every ``windowsize`` blocks (RFC 7440).

    The upload is kept in memory (it is bounded by ``limits.max_upload``) and is in
    ``upload`` once the outcome is ok, converted from netascii when sent so.
    """

    def __init__(self, negotiated: Negotiated, mode: Mode, limits: Limits) -> None:
        super().__init__(negotiated, limits)
        self.mode = mode
        self.max_upload = limits.max_upload
        self.received = 0  # last block received in order
        self.since_ack = 0
        self.answered_disorder = False
        self.buffer = bytearray()
        self.upload = b""
        self.last_ack = self._oack() if negotiated.accepted else ack_packet(0)

    def start(self, now: float) -> Step:
        """Return the OACK, or ACK 0 when no option was accepted (RFC 2347)."""
        self.deadline = now + self.negotiated.timeout
        return Step((self.last_ack,))

    def _ack(self, now: float) -> bytes:
        self.last_ack = ack_packet(self.received & 0xFFFF)
        self.since_ack = 0
        self.deadline = now + self.negotiated.timeout
        return self.last_ack

    def receive(self, datagram: bytes, now: float) -> Step:
        """Handle a datagram from the client's TID; return what to send."""
        if self.finished:
            # Dallying (RFC 1350 §6): the final ACK may have been lost; repeat it for
            # each repeated final block until the deadline closes the transfer.
            repeat = datagram[:4] == data_packet(self.received & 0xFFFF, b"")
            return Step((self.last_ack,) if repeat else ())
        packet = self._decode(datagram)
        if isinstance(packet, Step):
            return packet
        if isinstance(packet, Ack):
            return self._fail("ACK sent to a write transfer", ErrorCode.ILLEGAL_OPERATION)
        size = self.negotiated.blksize
        if packet.block != (self.received + 1) & 0xFFFF:
            # A duplicate (our ACK was lost) or a gap (a block was lost): ACK the last
            # block in order, once, so the sender restarts from there (RFC 7440 §4).
            if self.answered_disorder:
                return Step()
            self.answered_disorder = True
            return Step((self._ack(now),))
        if len(packet.payload) > size:
            return self._fail(
                f"DATA block of {len(packet.payload)} bytes is over blksize {size}",
                ErrorCode.ILLEGAL_OPERATION,
            )
        if len(self.buffer) + len(packet.payload) > self.max_upload:
            return self._fail(
                f"upload is over the limit of {self.max_upload} bytes", ErrorCode.DISK_FULL
            )
        self.buffer += packet.payload
        self.bytes = len(self.buffer)
        self.received += 1
        self.since_ack += 1
        self.answered = True
        self.tries = 0
        self.answered_disorder = False
        if len(packet.payload) < size:
            ack = self._ack(now)
            self.finished = True
            raw = bytes(self.buffer)
            self.upload = from_netascii(raw) if self.mode is Mode.NETASCII else raw
            return Step((ack,), Outcome(True, len(self.upload), self.retransmits))
        if self.since_ack >= self.negotiated.windowsize:
            return Step((self._ack(now),))
        self.deadline = now + self.negotiated.timeout
        return Step()

    def expire(self, now: float) -> Step:
        """The deadline passed: end the dally, re-send the last ACK, or give up."""
        if self.finished:
            self.deadline = None
            return Step()
        failed = self._spend_retry()
        if failed is not None:
            return failed
        self.deadline = now + self.negotiated.timeout
        return Step((self.last_ack,))
