"""TFTP transfer state machines driven in memory: negotiation, windows, loss, duplicates, ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneprov.protocols.tftp.codec import (
    Data,
    Error,
    ErrorCode,
    Mode,
    OAck,
    Opcode,
    Request,
    TftpError,
    ack_packet,
    data_packet,
    decode,
    error_packet,
)
from phoneprov.protocols.tftp.transfer import (
    BytesContent,
    Limits,
    Negotiated,
    ReadTransfer,
    WriteTransfer,
    negotiate,
    prepare_content,
)

LIMITS = Limits(timeout=2.0, retries=3)


def rrq(*options: tuple[str, str], mode: Mode = Mode.OCTET) -> Request:
    return Request(Opcode.RRQ, "f.bin", mode, options)


def wrq(*options: tuple[str, str]) -> Request:
    return Request(Opcode.WRQ, "0004f2abcdef-app.log", Mode.OCTET, options)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param((), Negotiated(timeout=2.0), id="ok/no-options"),
        pytest.param(
            (("blksize", "1428"), ("tsize", "0")),
            Negotiated(1428, 1, 2.0, 5000, (("blksize", "1428"), ("tsize", "5000"))),
            id="ok/blksize-1428-tsize",
        ),
        pytest.param(
            (("blksize", "70000"),),
            Negotiated(65464, 1, 2.0, None, (("blksize", "65464"),)),
            id="ok/blksize-over-max-lowered",
        ),
        pytest.param(
            (("windowsize", "1000"), ("timeout", "7"), ("utimeout", "9")),
            Negotiated(512, 64, 7.0, None, (("timeout", "7"), ("windowsize", "64"))),
            id="ok/windowsize-lowered-timeout-unknown-ignored",
        ),
        pytest.param(
            (("blksize", "8192"), ("windowsize", "16")),
            Negotiated(8192, 8, 2.0, None, (("blksize", "8192"), ("windowsize", "8"))),
            id="ok/windowsize-lowered-to-fit-64k-burst",
        ),
        pytest.param(
            (("blksize", "65464"), ("windowsize", "4")),
            Negotiated(65464, 1, 2.0, None, (("blksize", "65464"), ("windowsize", "1"))),
            id="ok/windowsize-1-at-largest-blksize",
        ),
        pytest.param(
            (("blksize", "8"), ("windowsize", "1")),
            Negotiated(8, 1, 2.0, None, (("blksize", "8"), ("windowsize", "1"))),
            id="ok/lowest-values",
        ),
    ],
)
def test_negotiate(options: tuple[tuple[str, str], ...], expected: Negotiated) -> None:
    assert negotiate(rrq(*options), 5000, LIMITS) == expected


@pytest.mark.parametrize(
    "option",
    [
        pytest.param(("blksize", "7"), id="fail/blksize-7"),
        pytest.param(("blksize", "abc"), id="fail/blksize-not-a-number"),
        pytest.param(("blksize", "-512"), id="fail/blksize-negative"),
        pytest.param(("timeout", "0"), id="fail/timeout-0"),
        pytest.param(("timeout", "256"), id="fail/timeout-256"),
        pytest.param(("windowsize", "0"), id="fail/windowsize-0"),
        pytest.param(("windowsize", "65536"), id="fail/windowsize-65536"),
        pytest.param(("tsize", "x"), id="fail/tsize-not-a-number"),
    ],
)
def test_negotiate_bad_value_is_option_refused(option: tuple[str, str]) -> None:
    with pytest.raises(TftpError) as caught:
        negotiate(rrq(option), 10, LIMITS)
    assert caught.value.code is ErrorCode.OPTION_REFUSED
    assert option[0] in str(caught.value) and option[1] in str(caught.value)


def test_negotiate_upload_over_limit_is_disk_full() -> None:
    with pytest.raises(TftpError) as caught:
        negotiate(wrq(("tsize", "11")), None, Limits(max_upload=10))
    assert caught.value.code is ErrorCode.DISK_FULL


def test_negotiate_upload_tsize_echoed() -> None:
    assert negotiate(wrq(("tsize", "10")), None, Limits(max_upload=10)).accepted == (
        ("tsize", "10"),
    )


def test_netascii_tsize_counts_wire_bytes() -> None:
    content = prepare_content(BytesContent(b"a\nb\n"), Mode.NETASCII)
    assert content.read(0, 100) == b"a\r\nb\r\n"
    assert negotiate(rrq(("tsize", "0")), content.size, LIMITS).tsize == 6


def blocks(step_send: tuple[bytes, ...]) -> list[int]:
    result = []
    for datagram in step_send:
        packet = decode(datagram)
        assert isinstance(packet, Data)
        result.append(packet.block)
    return result


def test_read_plain_lock_step_and_final_empty_block() -> None:
    transfer = ReadTransfer(Negotiated(blksize=8), BytesContent(b"x" * 16), LIMITS)
    assert transfer.start(0.0).send == (data_packet(1, b"x" * 8),)
    assert transfer.deadline == 2.0
    assert transfer.receive(ack_packet(1), 0.1).send == (data_packet(2, b"x" * 8),)
    # A file that is a multiple of blksize ends with an empty block (RFC 1350 §6).
    assert transfer.receive(ack_packet(2), 0.2).send == (data_packet(3, b""),)
    step = transfer.receive(ack_packet(3), 0.3)
    assert step.send == () and step.outcome is not None and step.outcome.ok
    assert step.outcome.bytes == 16 and transfer.deadline is None


def test_read_oack_then_windows() -> None:
    negotiated = negotiate(rrq(("blksize", "8"), ("windowsize", "3")), 40, LIMITS)
    transfer = ReadTransfer(negotiated, BytesContent(bytes(range(40))), LIMITS)
    assert decode(transfer.start(0.0).send[0]) == OAck((("blksize", "8"), ("windowsize", "3")))
    assert transfer.receive(ack_packet(1), 0.1).send == ()  # not an answer to the OACK
    assert blocks(transfer.receive(ack_packet(0), 0.2).send) == [1, 2, 3]
    # The client lost block 3 and acknowledges 2: the window restarts at 3 (RFC 7440 §4).
    assert blocks(transfer.receive(ack_packet(2), 0.3).send) == [3, 4, 5]
    assert blocks(transfer.receive(ack_packet(5), 0.4).send) == [6]
    step = transfer.receive(ack_packet(6), 0.5)
    assert step.outcome is not None and step.outcome.ok


def test_read_duplicate_ack_is_not_answered() -> None:
    transfer = ReadTransfer(Negotiated(blksize=8), BytesContent(b"y" * 30), LIMITS)
    transfer.start(0.0)
    assert blocks(transfer.receive(ack_packet(1), 0.1).send) == [2]
    # The Sorcerer's Apprentice bug answers this with block 2 again; we wait for the timer.
    assert transfer.receive(ack_packet(1), 0.2).send == ()
    assert transfer.receive(ack_packet(7), 0.2).send == ()  # from the future: stale
    assert transfer.deadline == 2.1
    assert blocks(transfer.expire(2.1).send) == [2]
    assert transfer.retransmits == 1


def test_read_gives_up_after_retries_with_error() -> None:
    transfer = ReadTransfer(Negotiated(blksize=8), BytesContent(b"z" * 12), LIMITS)
    transfer.start(0.0)
    assert blocks(transfer.receive(ack_packet(1), 0.1).send) == [2]
    for attempt in range(1, LIMITS.retries + 1):
        assert blocks(transfer.expire(0.1 + 2.0 * attempt).send) == [2]
    step = transfer.expire(10.0)
    assert step.outcome is not None and not step.outcome.ok
    packet = decode(step.send[0])
    assert isinstance(packet, Error) and packet.code == ErrorCode.NOT_DEFINED
    assert transfer.deadline is None


@pytest.mark.parametrize(
    ("datagram", "answer"),
    [
        pytest.param(error_packet(ErrorCode.DISK_FULL, "full"), None, id="fail/client-error"),
        pytest.param(b"\0\x04\0", ErrorCode.ILLEGAL_OPERATION, id="fail/short-ack"),
        pytest.param(data_packet(1, b"a"), ErrorCode.ILLEGAL_OPERATION, id="fail/data-to-reader"),
        pytest.param(b"\0\x01f\0octet\0", ErrorCode.ILLEGAL_OPERATION, id="fail/request-on-tid"),
        pytest.param(b"\0\x63\0\0", ErrorCode.ILLEGAL_OPERATION, id="fail/unknown-opcode"),
    ],
)
def test_read_bad_packet_ends_transfer(datagram: bytes, answer: ErrorCode | None) -> None:
    transfer = ReadTransfer(Negotiated(blksize=8), BytesContent(b"z" * 20), LIMITS)
    transfer.start(0.0)
    step = transfer.receive(datagram, 0.1)
    assert step.outcome is not None and not step.outcome.ok
    if answer is None:
        assert step.send == ()  # errors are never answered (RFC 1350 §7)
    else:
        packet = decode(step.send[0])
        assert isinstance(packet, Error) and packet.code == answer
    assert transfer.deadline is None and transfer.receive(ack_packet(1), 0.2).send == ()


def test_read_block_numbers_roll_over_to_zero() -> None:
    size = 8 * 65540 + 3
    content = bytes(i % 251 for i in range(size))
    transfer = ReadTransfer(Negotiated(blksize=8, windowsize=7), BytesContent(content), LIMITS)
    received = bytearray()
    send = transfer.start(0.0).send
    now = 0.0
    while send:
        last = 0
        for datagram in send:
            packet = decode(datagram)
            assert isinstance(packet, Data)
            received += packet.payload
            last = packet.block
        now += 0.001
        step = transfer.receive(ack_packet(last), now)
        send = step.send
    assert bytes(received) == content
    assert transfer.acked == 65541  # wire numbers 65535, 0, 1, ... mapped back


def run_lossy_read(content: bytes, blksize: int, window: int, drops: list[bool]) -> bytes:
    """Drive a reader through a channel that drops datagrams as ``drops`` says, then none.

    A client that heard nothing before the server gave up repeats its request, which
    the server answers with a new transfer (RFC 1350 §2).
    """
    limits = Limits(timeout=1.0, retries=len(drops) + 2)
    negotiated = negotiate(
        rrq(("blksize", str(blksize)), ("windowsize", str(window))), len(content), limits
    )
    lossy = iter(drops)
    while True:
        transfer = ReadTransfer(negotiated, BytesContent(content), limits)
        received = run_lossy_transfer(transfer, blksize, window, lossy)
        if transfer.answered:
            return received


def run_lossy_transfer(
    transfer: ReadTransfer, blksize: int, window: int, lossy: Iterator[bool]
) -> bytes:
    """One transfer through the lossy channel until it ends; returns what arrived in order."""
    received = bytearray()
    expected, since_ack, now = 1, 0, 0.0
    pending = list(transfer.start(now).send)
    while transfer.deadline is not None:
        acks: list[bytes] = []
        for datagram in pending:
            if next(lossy, False):
                continue
            packet = decode(datagram)
            if isinstance(packet, OAck):
                acks.append(ack_packet(0))
                continue
            assert isinstance(packet, Data)
            if packet.block != expected & 0xFFFF:
                acks.append(ack_packet((expected - 1) & 0xFFFF))
                since_ack = 0
                continue
            received += packet.payload
            expected += 1
            since_ack += 1
            if len(packet.payload) < blksize or since_ack == window:
                acks.append(ack_packet(packet.block))
                since_ack = 0
        pending = []
        for ack in acks:
            if not next(lossy, False):
                step = transfer.receive(ack, now)
                pending += step.send
        if not pending and transfer.deadline is not None:
            now = transfer.deadline
            pending = list(transfer.expire(now).send)
            since_ack = 0
    return bytes(received)


@settings(max_examples=60, deadline=None)
@given(
    content=st.binary(max_size=300),
    blksize=st.sampled_from([8, 13, 64]),
    window=st.integers(1, 6),
    drops=st.lists(st.booleans(), max_size=40),
)
def test_read_survives_any_loss_pattern(
    content: bytes, blksize: int, window: int, drops: list[bool]
) -> None:
    assert run_lossy_read(content, blksize, window, drops) == content


@pytest.mark.parametrize(
    "options",
    [
        pytest.param((), id="fail/unanswered-data-block-1"),
        pytest.param((("blksize", "1428"), ("tsize", "0")), id="fail/unanswered-oack"),
    ],
)
def test_read_unanswered_first_packet_is_sent_at_most_twice(
    options: tuple[tuple[str, str], ...],
) -> None:
    """A forged request (UDP source not proven) must not turn the retries into a flood."""
    limits = Limits(timeout=2.0, retries=5)
    content = BytesContent(b"c" * 3000)
    transfer = ReadTransfer(negotiate(rrq(*options), content.size, limits), content, limits)
    sent = list(transfer.start(0.0).send)
    now = 0.0
    while transfer.deadline is not None:
        now = transfer.deadline
        sent += transfer.expire(now).send
    first, repeat, *rest = sent
    assert repeat == first
    assert [type(decode(datagram)) for datagram in rest] == [Error]
    assert transfer.retransmits == 1


def test_read_answered_transfer_keeps_every_retry() -> None:
    limits = Limits(timeout=2.0, retries=5)
    transfer = ReadTransfer(Negotiated(blksize=8), BytesContent(b"q" * 20), limits)
    transfer.start(0.0)
    transfer.receive(ack_packet(1), 0.5)  # the client answered: its address is real
    resent = [blocks(transfer.expire(0.5 + 2.0 * n).send) for n in range(1, 6)]
    assert resent == [[2]] * 5
    assert transfer.deadline is not None


def test_write_lock_step_upload() -> None:
    transfer = WriteTransfer(Negotiated(blksize=8), Mode.OCTET, LIMITS)
    assert transfer.start(0.0).send == (ack_packet(0),)
    assert transfer.receive(data_packet(1, b"12345678"), 0.1).send == (ack_packet(1),)
    # The same block again: our ACK was lost; answer it once.
    assert transfer.receive(data_packet(1, b"12345678"), 0.2).send == (ack_packet(1),)
    assert transfer.receive(data_packet(1, b"12345678"), 0.2).send == ()
    step = transfer.receive(data_packet(2, b"9"), 0.3)
    assert step.send == (ack_packet(2),) and step.outcome is not None and step.outcome.ok
    assert transfer.upload == b"123456789"
    # Dallying: a repeated final block gets the final ACK again until the deadline.
    assert transfer.receive(data_packet(2, b"9"), 0.4).send == (ack_packet(2),)
    assert transfer.deadline == pytest.approx(2.3)
    assert transfer.expire(2.3).send == () and transfer.deadline is None


def test_write_window_acks_every_windowsize_blocks_and_gaps() -> None:
    negotiated = negotiate(wrq(("blksize", "8"), ("windowsize", "2")), None, LIMITS)
    transfer = WriteTransfer(negotiated, Mode.OCTET, LIMITS)
    assert decode(transfer.start(0.0).send[0]) == OAck((("blksize", "8"), ("windowsize", "2")))
    assert transfer.receive(data_packet(1, b"a" * 8), 0.1).send == ()
    assert transfer.receive(data_packet(2, b"b" * 8), 0.1).send == (ack_packet(2),)
    # Block 3 lost: block 4 is out of order, acknowledged back to 2 once (RFC 7440 §4).
    assert transfer.receive(data_packet(4, b"d" * 8), 0.2).send == (ack_packet(2),)
    assert transfer.receive(data_packet(5, b"e"), 0.2).send == ()
    assert transfer.receive(data_packet(3, b"c" * 8), 0.3).send == ()
    step = transfer.receive(data_packet(4, b"d"), 0.3)
    assert step.outcome is not None and step.outcome.ok
    assert transfer.upload == b"a" * 8 + b"b" * 8 + b"c" * 8 + b"d"


def test_write_netascii_converted() -> None:
    transfer = WriteTransfer(Negotiated(blksize=512), Mode.NETASCII, LIMITS)
    transfer.start(0.0)
    transfer.receive(data_packet(1, b"line 1\r\nline 2\r\n"), 0.1)
    assert transfer.upload == b"line 1\nline 2\n"


def test_write_over_limit_is_disk_full() -> None:
    transfer = WriteTransfer(Negotiated(blksize=8), Mode.OCTET, Limits(max_upload=10))
    transfer.start(0.0)
    transfer.receive(data_packet(1, b"x" * 8), 0.1)
    step = transfer.receive(data_packet(2, b"x" * 8), 0.2)
    assert step.outcome is not None and not step.outcome.ok
    packet = decode(step.send[0])
    assert isinstance(packet, Error) and packet.code == ErrorCode.DISK_FULL


@pytest.mark.parametrize(
    "datagram",
    [
        pytest.param(ack_packet(1), id="fail/ack-to-writer"),
        pytest.param(data_packet(1, b"x" * 9), id="fail/block-over-blksize"),
    ],
)
def test_write_illegal_packets(datagram: bytes) -> None:
    transfer = WriteTransfer(Negotiated(blksize=8), Mode.OCTET, LIMITS)
    transfer.start(0.0)
    step = transfer.receive(datagram, 0.1)
    packet = decode(step.send[0])
    assert isinstance(packet, Error) and packet.code == ErrorCode.ILLEGAL_OPERATION


def test_write_retransmits_last_ack_then_gives_up() -> None:
    transfer = WriteTransfer(Negotiated(blksize=8), Mode.OCTET, LIMITS)
    transfer.start(0.0)
    transfer.receive(data_packet(1, b"x" * 8), 0.5)
    for attempt in range(LIMITS.retries):
        assert transfer.expire(2.5 + 2 * attempt).send == (ack_packet(1),)
    step = transfer.expire(20.0)
    assert step.outcome is not None and not step.outcome.ok
    assert isinstance(decode(step.send[0]), Error)
