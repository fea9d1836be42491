"""TFTP packets: decode datagrams into values and encode values into datagrams.

Pure: bytes in, frozen values out, and back. RFC 1350 (packets, netascii),
RFC 2347 (options in requests, OACK, error 8). Decoding raises ``TftpError``
carrying the error code the server answers with, so a bad datagram becomes one
error packet and never an exception escaping the server.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from phoneprov.errors import PhoneprovError

# The longest file name accepted in a request. RFC 2347 §"Packet Size" keeps a
# request with its options within 512 octets, so no real client sends more;
# Polycom names (e.g. "polycom/3111-46135-002.sip.ld") are far shorter.
MAX_FILENAME = 255


class Opcode(enum.IntEnum):
    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6  # RFC 2347


class ErrorCode(enum.IntEnum):
    """RFC 1350 §5 error codes, plus 8 from RFC 2347."""

    NOT_DEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_REFUSED = 8


class Mode(enum.StrEnum):
    OCTET = "octet"
    NETASCII = "netascii"


class TftpError(PhoneprovError):
    """A datagram or request the server refuses; ``code`` is the TFTP error code to send."""

    def __init__(self, code: ErrorCode, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.code = code


@dataclass(frozen=True, slots=True)
class Request:
    """An RRQ or WRQ. ``options`` keeps the client's order with lower-cased names."""

    opcode: Opcode
    filename: str
    mode: Mode
    options: tuple[tuple[str, str], ...] = ()

    @property
    def is_write(self) -> bool:
        return self.opcode is Opcode.WRQ

    def option(self, name: str) -> str | None:
        """Return the first value the client sent for ``name``, or None."""
        for key, value in self.options:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Data:
    block: int  # wire block number, 0..65535
    payload: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    block: int


@dataclass(frozen=True, slots=True)
class Error:
    code: int  # kept as int: clients send codes outside ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class OAck:
    options: tuple[tuple[str, str], ...]


Packet = Request | Data | Ack | Error | OAck

_HEADER = struct.Struct("!HH")


def _illegal(message: str) -> TftpError:
    return TftpError(ErrorCode.ILLEGAL_OPERATION, message)


def _split_strings(body: bytes, what: str) -> list[str]:
    """Split NUL-terminated ASCII strings; raise TftpError(4) when malformed."""
    if not body.endswith(b"\0"):
        raise _illegal(f"{what} is not terminated by a NUL byte")
    try:
        return body[:-1].decode("ascii").split("\0")
    except UnicodeDecodeError:
        raise _illegal(f"{what} contains bytes that are not ASCII") from None


def _decode_request(opcode: Opcode, body: bytes) -> Request:
    fields = _split_strings(body, "request")
    if len(fields) < 2:
        raise _illegal("request has no transfer mode")
    filename, mode_text, *option_fields = fields
    if not filename:
        raise _illegal("request names no file")
    if len(filename) > MAX_FILENAME:
        raise _illegal(f"file name is {len(filename)} characters; at most {MAX_FILENAME}")
    mode_name = mode_text.lower()
    if mode_name not in (Mode.OCTET, Mode.NETASCII):
        # "mail" mode is obsolete (RFC 1350 §1); anything else is not TFTP.
        raise _illegal(f"transfer mode {mode_text!r} is not supported; use octet or netascii")
    if len(option_fields) % 2:
        raise _illegal("request option has a name but no value")
    options = tuple(
        (option_fields[i].lower(), option_fields[i + 1]) for i in range(0, len(option_fields), 2)
    )
    return Request(opcode, filename, Mode(mode_name), options)


def decode(datagram: bytes) -> Packet:
    """Return the packet in ``datagram``; raise TftpError with the code to answer."""
    if len(datagram) < 4:
        # Every packet is at least an opcode and two more bytes (RFC 1350 §5).
        raise _illegal(f"packet is {len(datagram)} bytes; a TFTP packet has at least 4")
    number, field = _HEADER.unpack_from(datagram)
    try:
        opcode = Opcode(number)
    except ValueError:
        raise _illegal(f"unknown opcode {number}") from None
    body = datagram[2:]
    if opcode in (Opcode.RRQ, Opcode.WRQ):
        return _decode_request(opcode, body)
    if opcode is Opcode.DATA:
        return Data(field, datagram[4:])
    if opcode is Opcode.ACK:
        return Ack(field)
    if opcode is Opcode.ERROR:
        # Clients in the wild omit the final NUL; be lenient on what we only log.
        text = datagram[4:].split(b"\0", 1)[0].decode("ascii", "replace")
        return Error(field, text)
    fields = _split_strings(body, "option acknowledgement")
    if len(fields) % 2:
        raise _illegal("option acknowledgement has a name but no value")
    return OAck(tuple((fields[i].lower(), fields[i + 1]) for i in range(0, len(fields), 2)))


def _strings(*items: str) -> bytes:
    return b"".join(item.encode("ascii") + b"\0" for item in items)


def encode(packet: Packet) -> bytes:
    """Return the datagram for ``packet``; raise ValueError for values off the wire range."""
    if isinstance(packet, Data):
        return _HEADER.pack(Opcode.DATA, packet.block) + packet.payload
    if isinstance(packet, Ack):
        return _HEADER.pack(Opcode.ACK, packet.block)
    if isinstance(packet, Error):
        return _HEADER.pack(Opcode.ERROR, packet.code) + _strings(packet.message)
    if isinstance(packet, OAck):
        flat = [item for pair in packet.options for item in pair]
        return struct.pack("!H", Opcode.OACK) + _strings(*flat)
    flat = [item for pair in packet.options for item in pair]
    return struct.pack("!H", packet.opcode) + _strings(packet.filename, packet.mode, *flat)


def data_packet(block: int, payload: bytes) -> bytes:
    """The DATA datagram for wire block ``block`` (the hot path: no dataclass)."""
    return _HEADER.pack(Opcode.DATA, block) + payload


def ack_packet(block: int) -> bytes:
    return _HEADER.pack(Opcode.ACK, block)


def error_packet(code: ErrorCode, message: str) -> bytes:
    """An ERROR datagram; non-ASCII characters in ``message`` become '?'."""
    text = message.encode("ascii", "replace").replace(b"\0", b" ")
    return _HEADER.pack(Opcode.ERROR, code) + text + b"\0"


def to_netascii(data: bytes) -> bytes:
    """Native text to netascii (RFC 1350 §1, RFC 764): LF -> CR LF, bare CR -> CR NUL."""
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


def from_netascii(data: bytes) -> bytes:
    """Netascii to native text: CR LF -> LF, CR NUL -> CR (the inverse of to_netascii)."""
    return data.replace(b"\r\n", b"\n").replace(b"\r\0", b"\r")
