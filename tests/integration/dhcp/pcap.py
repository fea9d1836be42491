"""Read DHCP messages from a classic pcap file (Ethernet, IPv4, UDP 67/68), standard library only.

Options are returned as wire bytes; a code seen twice in one message is
concatenated, as RFC 3396 says a receiver must do, and options a server moved
into the ``file``/``sname`` fields (option 52 overload, RFC 2131 §4.1: options
field first, then file, then sname) are read from there too. dnsmasq does this
when a 576-byte client like udhcpc asks for every phone option.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

MAGIC_COOKIE = b"\x63\x82\x53\x63"
MESSAGE_TYPES = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 5: "ACK", 6: "NAK"}


@dataclass(frozen=True)
class Message:
    xid: int
    kind: str
    options: dict[int, bytes]


def _options(data: bytes, out: dict[int, bytes]) -> dict[int, bytes]:
    offset = 0
    while offset < len(data):
        code = data[offset]
        if code == 255:
            break
        if code == 0:
            offset += 1
            continue
        size = data[offset + 1]
        out[code] = out.get(code, b"") + data[offset + 2 : offset + 2 + size]
        offset += 2 + size
    return out


def _frames(raw: bytes) -> list[bytes]:
    magic = raw[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"not a pcap file (magic {magic.hex()})")
    (linktype,) = struct.unpack(endian + "I", raw[20:24])
    if linktype != 1:
        raise ValueError(f"pcap link type {linktype}; expected 1 (Ethernet)")
    frames: list[bytes] = []
    offset = 24
    while offset + 16 <= len(raw):
        (size,) = struct.unpack(endian + "I", raw[offset + 8 : offset + 12])
        frames.append(raw[offset + 16 : offset + 16 + size])
        offset += 16 + size
    return frames


def dhcp_messages(path: Path) -> list[Message]:
    """Every DHCP message in the capture, in order."""
    messages: list[Message] = []
    for frame in _frames(path.read_bytes()):
        if len(frame) < 14 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        header = (ip[0] & 0x0F) * 4
        if ip[9] != 17:
            continue
        udp = ip[header:]
        ports = struct.unpack("!HH", udp[:4])
        if not {67, 68} & set(ports):
            continue
        bootp = udp[8:]
        if bootp[236:240] != MAGIC_COOKIE:
            continue
        options = _options(bootp[240:], {})
        overload = options.get(52, b"\x00")[0]
        if overload & 1:
            _options(bootp[108:236], options)
        if overload & 2:
            _options(bootp[44:108], options)
        kind = MESSAGE_TYPES.get(options.get(53, b"\x00")[0], "OTHER")
        (xid,) = struct.unpack("!I", bootp[4:8])
        messages.append(Message(xid, kind, options))
    return messages
