"""TFTP codec: round trips for every packet type, and the error code for each bad datagram."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.protocols.tftp.codec import (
    MAX_FILENAME,
    Ack,
    Data,
    Error,
    ErrorCode,
    Mode,
    OAck,
    Opcode,
    Packet,
    Request,
    TftpError,
    decode,
    encode,
    error_packet,
    from_netascii,
    to_netascii,
)

# Printable ASCII without NUL: what a file name, mode, option or message can hold.
_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
_name = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)
_lower_name = _name.map(str.lower)
_block = st.integers(0, 0xFFFF)

_packets: st.SearchStrategy[Packet] = st.one_of(
    st.builds(
        Request,
        st.sampled_from([Opcode.RRQ, Opcode.WRQ]),
        st.text(
            st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=MAX_FILENAME
        ),
        st.sampled_from(list(Mode)),
        st.lists(st.tuples(_lower_name, _text), max_size=5).map(tuple),
    ),
    st.builds(Data, _block, st.binary(max_size=1500)),
    st.builds(Ack, _block),
    st.builds(Error, _block, _text),
    # An OACK always carries at least one option (RFC 2347: no accepted option, no OACK).
    st.builds(OAck, st.lists(st.tuples(_lower_name, _text), min_size=1, max_size=5).map(tuple)),
)


@given(_packets)
def test_ok_round_trip(packet: Packet) -> None:
    assert decode(encode(packet)) == packet


@given(st.binary(max_size=600))
def test_ok_arbitrary_bytes_decode_or_raise_tftp_error(datagram: bytes) -> None:
    try:
        decode(datagram)
    except TftpError as error:
        assert error.code in (ErrorCode.ILLEGAL_OPERATION,)


@given(st.binary(max_size=3000))
def test_ok_netascii_round_trip(data: bytes) -> None:
    wire = to_netascii(data)
    assert from_netascii(wire) == data
    # On the wire every CR is followed by LF or NUL (RFC 764).
    assert all(wire[i + 1 : i + 2] in (b"\n", b"\0") for i in range(len(wire)) if wire[i] == 13)


def test_ok_netascii_line_ends() -> None:
    assert to_netascii(b"a\nb\rc") == b"a\r\nb\r\0c"


def test_ok_request_options_lower_cased_first_value_wins() -> None:
    packet = decode(b"\0\x01Phone.CFG\0OCTET\0BLKSIZE\x001428\0blksize\x00512\0")
    assert packet == Request(
        Opcode.RRQ, "Phone.CFG", Mode.OCTET, (("blksize", "1428"), ("blksize", "512"))
    )
    assert isinstance(packet, Request) and packet.option("blksize") == "1428"


@pytest.mark.parametrize(
    "datagram",
    [
        pytest.param(b"", id="fail/empty"),
        pytest.param(b"\0", id="fail/one-byte"),
        pytest.param(b"\0\x04\0", id="fail/short-ack"),
        pytest.param(b"\0\x09\0\0", id="fail/unknown-opcode-9"),
        pytest.param(b"\xff\xff\0\0", id="fail/unknown-opcode-65535"),
        pytest.param(b"\0\x01file\0octet", id="fail/request-no-final-nul"),
        pytest.param(b"\0\x01file\0", id="fail/request-no-mode"),
        pytest.param(b"\0\x01\0octet\0", id="fail/request-empty-name"),
        pytest.param(b"\0\x01file\0mail\0", id="fail/mode-mail"),
        pytest.param(b"\0\x01file\0binary\0", id="fail/mode-binary"),
        pytest.param(b"\0\x01file\0octet\0blksize\0", id="fail/option-without-value"),
        pytest.param(b"\0\x01fil\xe9\0octet\0", id="fail/non-ascii-name"),
        pytest.param(b"\0\x01" + b"a" * (MAX_FILENAME + 1) + b"\0octet\0", id="fail/long-name"),
        pytest.param(b"\0\x06blksize\0", id="fail/oack-odd-fields"),
    ],
)
def test_fail_bad_datagram_is_illegal_operation(datagram: bytes) -> None:
    with pytest.raises(TftpError) as caught:
        decode(datagram)
    assert caught.value.code is ErrorCode.ILLEGAL_OPERATION
    assert str(caught.value)


def test_ok_longest_name_accepted() -> None:
    packet = decode(b"\0\x01" + b"a" * MAX_FILENAME + b"\0netascii\0")
    assert isinstance(packet, Request) and packet.mode is Mode.NETASCII


def test_ok_error_without_final_nul_is_read() -> None:
    assert decode(b"\0\x05\0\x08refused") == Error(8, "refused")


def test_ok_error_packet_replaces_non_ascii() -> None:
    assert error_packet(ErrorCode.FILE_NOT_FOUND, "nö\0") == b"\0\x05\0\x01n? \0"
