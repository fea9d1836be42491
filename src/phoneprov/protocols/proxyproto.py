"""The PROXY protocol header a TCP load balancer puts before a connection's bytes.

HAProxy in TCP mode (``send-proxy`` / ``send-proxy-v2``) forwards the phone's
bytes untouched, so mutual TLS stays end to end, and first writes one header
naming the phone's address (the HAProxy specification, "The PROXY protocol,
Versions 1 & 2", haproxy.org/download/2.0/doc/proxy-protocol.txt):

- version 1, text: ``PROXY TCP4 <src> <dst> <sport> <dport>\\r\\n`` (or ``TCP6``,
  or ``UNKNOWN`` with anything up to the CRLF), "at most 107 bytes" in all;
- version 2, binary: the 12-byte signature ``\\r\\n\\r\\n\\0\\r\\nQUIT\\n``, a byte
  whose high nibble is the version (2) and low nibble the command (0 LOCAL,
  1 PROXY), a byte with the address family (0 UNSPEC, 1 INET, 2 INET6, 3 UNIX)
  and transport (0 UNSPEC, 1 STREAM, 2 DGRAM), a big-endian 16-bit length,
  then that many bytes: addresses (12 for INET, 36 for INET6, 216 for UNIX)
  and TLVs, which are skipped.

LOCAL (a balancer's own health check), ``UNKNOWN`` and the UNSPEC and UNIX
families mean "use the connection's own addresses" (``ProxyHeader.local``).

Pure: bytes in, values out. A reader asks ``needed`` how many more bytes to read
(never past the header's end, so the TLS or HTTP bytes after it stay in the
socket) and calls ``parse`` when it says 0; every read is bounded by
``MAX_HEADER``.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the spec's bound for a whole version 1 line, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version and command, family, length
MAX_HEADER = V2_FIXED + 0xFFFF
# Neither version is shorter: "PROXY UNKNOWN\r\n" is 15 bytes, a version 2 header 16.
FIRST_READ = 15
_V2_ADDRESS_SIZES = {1: 12, 2: 36}


class ProxyHeaderError(ValueError):
    """The bytes are not a well-formed PROXY protocol header."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    version: int
    length: int  # bytes the header took, the connection's own bytes follow
    source: tuple[str, int] | None = None  # the client (the phone), unless local
    destination: tuple[str, int] | None = None  # where the client connected to
    check: bool = False  # version 2 LOCAL: the balancer's own connection (a health check)

    @property
    def local(self) -> bool:
        """No client address given: the connection's own addresses apply."""
        return self.source is None


def starts_like_header(data: bytes) -> bool:
    """True when ``data`` (the first bytes a client sent) opens a PROXY header: a TLS
    record starts with 0x16 and an HTTP or FTP request with a letter, never with these."""
    return data.startswith(V1_PREFIX) or (len(data) >= 4 and V2_SIGNATURE.startswith(data[:12]))


def needed(buffer: bytes) -> int:
    """How many more bytes to read before ``parse`` can decide; 0 when it can now.

    Raises ProxyHeaderError as soon as ``buffer`` cannot begin a header.
    """
    if len(buffer) < FIRST_READ:
        if buffer and not (
            V1_PREFIX.startswith(buffer[:6]) or V2_SIGNATURE.startswith(buffer[:12])
        ):
            raise ProxyHeaderError("not a PROXY protocol header")
        return FIRST_READ - len(buffer)
    if buffer.startswith(V2_SIGNATURE):
        if len(buffer) < V2_FIXED:
            return V2_FIXED - len(buffer)
        length = int.from_bytes(buffer[14:16], "big")
        return max(0, V2_FIXED + length - len(buffer))
    if not buffer.startswith(V1_PREFIX):
        raise ProxyHeaderError("not a PROXY protocol header")
    if b"\r\n" in buffer[:V1_MAX]:
        return 0
    if len(buffer) >= V1_MAX:
        raise ProxyHeaderError(f"a version 1 header longer than {V1_MAX} bytes")
    return 1  # the line ends at CRLF: read a byte at a time, never into what follows


def parse(buffer: bytes) -> ProxyHeader:
    """The header at the start of ``buffer`` (``needed(buffer)`` must be 0)."""
    if needed(buffer):
        raise ProxyHeaderError("the header is not complete")
    if buffer.startswith(V2_SIGNATURE):
        return _parse_v2(buffer)
    return _parse_v1(buffer)


def _port(text: str) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 5 or int(text) > 0xFFFF:
        raise ProxyHeaderError(f"bad port {text!r}")
    return int(text)


def _parse_v1(buffer: bytes) -> ProxyHeader:
    end = buffer.index(b"\r\n")
    length = end + 2
    try:
        line = buffer[:end].decode("ascii")
    except UnicodeDecodeError:
        raise ProxyHeaderError("a version 1 header with non-ASCII bytes") from None
    fields = line.split(" ")
    if fields[1:2] == ["UNKNOWN"]:
        return ProxyHeader(1, length)
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError("a version 1 header is PROXY TCP4|TCP6 SRC DST SPORT DPORT")
    kind = ipaddress.IPv4Address if fields[1] == "TCP4" else ipaddress.IPv6Address
    try:
        source, destination = kind(fields[2]), kind(fields[3])
    except ValueError:
        raise ProxyHeaderError(f"bad {fields[1]} address in a version 1 header") from None
    return ProxyHeader(
        1, length, (str(source), _port(fields[4])), (str(destination), _port(fields[5]))
    )


def _parse_v2(buffer: bytes) -> ProxyHeader:
    version, command = buffer[12] >> 4, buffer[12] & 0x0F
    family, transport = buffer[13] >> 4, buffer[13] & 0x0F
    (size,) = struct.unpack_from("!H", buffer, 14)
    length = V2_FIXED + size
    if version != 2:
        raise ProxyHeaderError(f"version {version} in a version 2 header")
    if command > 1 or family > 3 or transport > 2:
        raise ProxyHeaderError("unknown command, family or transport in a version 2 header")
    if command == 0:
        return ProxyHeader(2, length, check=True)
    if family not in _V2_ADDRESS_SIZES:
        return ProxyHeader(2, length)  # UNSPEC or UNIX: no IP address to use
    if transport != 1:
        raise ProxyHeaderError("a version 2 header for a datagram on a stream connection")
    if size < _V2_ADDRESS_SIZES[family]:
        raise ProxyHeaderError("a version 2 header shorter than its addresses")
    block = buffer[V2_FIXED:length]
    width = 4 if family == 1 else 16
    kind = ipaddress.IPv4Address if family == 1 else ipaddress.IPv6Address
    source, destination = kind(block[:width]), kind(block[width : 2 * width])
    sport, dport = struct.unpack_from("!HH", block, 2 * width)
    return ProxyHeader(2, length, (_plain(source), sport), (_plain(destination), dport))


def _plain(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An IPv4-mapped IPv6 address as the IPv4 address it is (as the kernel names peers)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
