"""The PROXY protocol parser (protocols/proxyproto.py), without sockets.

The rules are the HAProxy specification's ("The PROXY protocol, Versions 1 & 2",
haproxy.org/download/2.0/doc/proxy-protocol.txt): version 1 is one text line of
"at most 107 bytes" ending in CRLF; version 2 starts with the 12-byte signature
``\\r\\n\\r\\n\\0\\r\\nQUIT\\n``, then version/command, family/transport and a
big-endian length of the addresses and TLVs that follow.
"""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneprov.config import settings_from_mapping
from phoneprov.config_cluster import TrustedAddresses
from phoneprov.errors import ConfigError
from phoneprov.protocols import proxyproto
from phoneprov.protocols.proxyproto import MAX_HEADER, ProxyHeaderError, needed, parse

# HAProxy's own send-proxy-v2 bytes for 172.19.0.1:42578 -> 172.19.0.3:80, then "GET".
HAPROXY_V2 = bytes.fromhex("0d0a0d0a000d0a515549540a2111000cac130001ac130003a6520050") + b"GET"


def v2(command: int, family: int, block: bytes, transport: int = 1) -> bytes:
    return (
        proxyproto.V2_SIGNATURE
        + bytes([0x20 | command, family << 4 | transport])
        + struct.pack("!H", len(block))
        + block
    )


def read_like_a_socket(stream: bytes) -> tuple[bytes, bytes]:
    """What a reader following ``needed`` takes from ``stream``, and what it leaves."""
    buffer = b""
    while more := needed(buffer):
        buffer, stream = buffer + stream[:more], stream[more:]
    return buffer, stream


def test_haproxy_v2_bytes_name_the_client() -> None:
    header, rest = read_like_a_socket(HAPROXY_V2)
    parsed = parse(header)
    assert parsed.source == ("172.19.0.1", 42578)
    assert parsed.destination == ("172.19.0.3", 80)
    assert rest == b"GET"  # never a byte past the header: the TLS ClientHello stays unread


def test_v1_tcp4_and_tcp6() -> None:
    line = b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n"
    header, rest = read_like_a_socket(line + b"\x16\x03\x01")
    assert rest == b"\x16\x03\x01"
    parsed = parse(header)
    assert (parsed.version, parsed.length) == (1, len(line))
    assert parsed.source == ("192.0.2.10", 56324)
    six = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 1000 443\r\n")
    assert six.source == ("2001:db8::1", 1000)


def test_unknown_and_local_use_the_connection_address() -> None:
    assert parse(b"PROXY UNKNOWN\r\n").local
    assert parse(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").local
    check = parse(v2(0, 1, bytes(12)))  # LOCAL: the balancer's health check
    assert check.local and check.check
    assert parse(v2(1, 0, b"", transport=0)).local  # UNSPEC
    assert parse(v2(1, 3, bytes(216))).local  # UNIX: no IP address


def test_v2_inet6_tlvs_skipped_and_mapped_ipv4() -> None:
    source = ipaddress.IPv6Address("::ffff:192.0.2.7").packed
    block = source + ipaddress.IPv6Address("2001:db8::2").packed + struct.pack("!HH", 5060, 443)
    tlv = bytes([0x04, 0, 3]) + b"abc"  # PP2_TYPE_NOOP
    parsed = parse(v2(1, 2, block + tlv))
    assert parsed.source == ("192.0.2.7", 5060)
    assert parsed.length == 16 + len(block) + len(tlv)


@pytest.mark.parametrize(
    "data",
    [
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1 65536\r\n",  # port out of range
        b"PROXY TCP4 192.0.2.01 192.0.2.2 1 2\r\n",  # leading zero
        b"PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n",  # family mismatch
        b"PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n",  # two spaces
        b"PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 \xd9\xa1 2\r\n",  # not ASCII digits
        proxyproto.V2_SIGNATURE + b"\x31\x11\x00\x0c" + bytes(12),  # version 3
        proxyproto.V2_SIGNATURE + b"\x22\x11\x00\x0c" + bytes(12),  # command 2
        v2(1, 1, bytes(12), transport=2),  # a datagram
        v2(1, 1, bytes(8)),  # addresses cut short
    ],
)
def test_malformed_headers_are_refused(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(data)


def test_version_1_is_bounded_at_107_bytes() -> None:
    with pytest.raises(ProxyHeaderError, match="107"):
        needed(b"PROXY TCP4 " + b"1" * 200)


@pytest.mark.parametrize("first", [b"\x16\x03\x01\x02\x00", b"GET / HTTP/1.1\r\n", b"PUT /x"])
def test_tls_and_http_are_not_headers(first: bytes) -> None:
    assert not proxyproto.starts_like_header(first)
    with pytest.raises(ProxyHeaderError):
        needed(first)


def test_header_starts_are_recognised() -> None:
    assert proxyproto.starts_like_header(b"PROXY TCP4 ")
    assert proxyproto.starts_like_header(HAPROXY_V2[:5])


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_fail_cleanly(data: bytes) -> None:
    try:
        more = needed(data)
    except ProxyHeaderError:
        return
    assert more >= 0 and len(data) + more <= MAX_HEADER
    if more == 0:
        try:
            header = parse(data)
        except ProxyHeaderError:
            return
        assert 0 < header.length <= len(data)


@settings(max_examples=300)
@given(st.sampled_from([b"\r\n\r\n\x00\r\nQUIT\n", b"PROXY "]), st.binary(max_size=200))
def test_header_like_bytes_never_crash_and_reads_stay_bounded(prefix: bytes, tail: bytes) -> None:
    stream = prefix + tail
    buffer = b""
    try:
        while more := needed(buffer):
            if not stream:
                return  # the peer closed: the reader gives up
            assert len(buffer) + more <= MAX_HEADER
            buffer, stream = buffer + stream[:more], stream[more:]
        header = parse(buffer)
    except ProxyHeaderError:
        return
    assert header.length == len(buffer)  # exactly the header was read


@given(st.ip_addresses(v=4), st.ip_addresses(v=4), st.integers(0, 65535), st.integers(0, 65535))
def test_v1_and_v2_agree(
    src: ipaddress.IPv4Address, dst: ipaddress.IPv4Address, sp: int, dp: int
) -> None:
    one = parse(f"PROXY TCP4 {src} {dst} {sp} {dp}\r\n".encode())
    two = parse(v2(1, 1, src.packed + dst.packed + struct.pack("!HH", sp, dp)))
    assert one.source == two.source == (str(src), sp)
    assert one.destination == two.destination == (str(dst), dp)


def test_proxy_from_setting(tmp_path: Path) -> None:
    raw = {"cluster": {"proxy_from": ["127.0.0.1", "10.1.0.0/16"]}}
    trusted = TrustedAddresses(settings_from_mapping(tmp_path, raw, tmp_path).cluster.proxy_from)
    assert "127.0.0.1" in trusted and "10.1.2.3" in trusted and "::ffff:10.1.0.9" in trusted
    assert "10.2.0.1" not in trusted and "-" not in trusted
    assert not TrustedAddresses(())
    with pytest.raises(ConfigError, match="proxy_from has 'balancer'"):
        settings_from_mapping(tmp_path, {"cluster": {"proxy_from": ["balancer"]}}, tmp_path)
