"""Option encoders against independent vectors (Microsoft DHCPUtil output, RFC 3361, RFC 2132)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.errors import InputError
from phoneprov.protocols.dhcp import decode as dec
from phoneprov.protocols.dhcp import encode as enc

# Printed by DHCPUtil.exe -sipserver server.fqdn.company.com (Skype for Business 2015),
# quoted in research/dhcp.md §1: the "Full Option 43 value" and "Option 120" lines.
DHCPUTIL_43 = (
    "010C4D532D55432D436C69656E740205687474707303177365727665722E6671646E2E636F6D70616E792E"
    "636F6D040334343305252F4365727450726F762F4365727450726F766973696F6E696E675365727669"
    "63652E737663"
)
DHCPUTIL_120 = "0006736572766572046671646E07636F6D70616E7903636F6D00"


def test_ok_dhcputil_option_43_byte_for_byte() -> None:
    value = enc.ms_uc_client("server.fqdn.company.com")
    assert value.hex().upper() == DHCPUTIL_43
    assert len(DHCPUTIL_43) == 180  # "Full Option 43 value (Length: 180)"


def test_ok_dhcputil_option_120_byte_for_byte() -> None:
    assert enc.sip_servers(["server.fqdn.company.com"]).hex().upper() == DHCPUTIL_120


def test_ok_dhcputil_port_is_ascii_text() -> None:
    pairs = dict(enc.split_tlvs(enc.ms_uc_client("a.example.com", 443)))
    assert pairs[4].hex().upper() == "343433"  # DHCPUtil "sub-option 4 <Port>: 343433"


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        # RFC 3361 §3.1 layout: enc 0, then each name as length-prefixed labels ending in 00.
        (
            ["example.com", "example.net"],
            "00" + "076578616d706c6503636f6d00" + "076578616d706c65036e657400",
        ),
        # RFC 3361 §3.2 layout: enc 1, then 4 bytes per address.
        (["192.0.2.1", "192.0.2.2"], "01" + "c0000201" + "c0000202"),
    ],
    ids=["ok/rfc3361-names", "ok/rfc3361-addresses"],
)
def test_rfc3361_examples(servers: list[str], expected: str) -> None:
    value = enc.sip_servers(servers)
    assert value.hex() == expected
    assert len(value) == (27 if servers[0] == "example.com" else 9)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(-18000, "ffffb9b0"), (36000, "00008ca0"), (0, "00000000"), (19800, "00004d58")],
    ids=["ok/utc-5", "ok/utc+10", "ok/utc", "ok/utc+5:30"],
)
def test_time_offset_twos_complement(seconds: int, expected: str) -> None:
    assert enc.time_offset(seconds).hex() == expected


def test_ok_cpe_ocphone_vlan_word() -> None:
    assert enc.cpe_ocphone_vlan(100).hex() == "0a020064"
    assert enc.cpe_ocphone_vlan(4094).hex() == "0a020ffe"


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: enc.cpe_ocphone_vlan(4095), "outside 1..4094"),
        (lambda: enc.cpe_ocphone_vlan(0), "outside 1..4094"),
        (lambda: enc.time_offset(-50000), "outside"),
        (lambda: enc.sip_servers(["sip.example.com", "192.0.2.1"]), "mixes names and IP"),
        (lambda: enc.sip_servers(["a" * 64 + ".example.com"]), "at most 63"),
        (lambda: enc.sip_servers(["bad_label-.example.com"]), "not a DNS label"),
        (lambda: enc.ms_uc_client("192.0.2.5"), "is an IP address"),
        (lambda: enc.ms_uc_client("web.example.com", 70000), "not a TCP port"),
        (lambda: enc.ms_uc_client("web.example.com", 443, "no/slash"), "absolute URL path"),
        (lambda: enc.boot_url("prov.example.com/"), "no ftp://"),
        (lambda: enc.boot_url("ldap://prov.example.com/"), "no ftp://"),
        (lambda: enc.boot_url("http:///path"), "names no host"),
        (lambda: enc.boot_url("http://prov.example.com/a b"), "space"),
        (lambda: enc.ipv4_list(["10.0.0.300"], "--ntp"), "not an IPv4 address"),
        (lambda: enc.ipv4_list([], "--ntp"), "at least one"),
        (lambda: enc.text_value("x" * 256, "option 160"), "at most 255"),
    ],
    ids=[
        "fail/vlan-4095",
        "fail/vlan-0",
        "fail/offset-beyond-utc-12",
        "fail/120-mixed",
        "fail/label-64-bytes",
        "fail/label-trailing-hyphen",
        "fail/web-server-ip",
        "fail/web-port",
        "fail/cert-path-relative",
        "fail/url-without-scheme",
        "fail/url-ldap-scheme",
        "fail/url-without-host",
        "fail/url-with-space",
        "fail/ntp-bad-ip",
        "fail/ntp-empty",
        "fail/option-over-255",
    ],
)
def test_input_errors_name_the_fix(call: object, fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        call()  # type: ignore[operator]
    assert fragment in str(caught.value)
    assert caught.value.hint
    assert caught.value.exit_code == 2


def test_ok_url_with_credentials_and_path_kept_verbatim() -> None:
    url = "ftp://PlcmSpIp:PlcmSpIp@prov.example.com/phones/"
    assert enc.boot_url(url) == url
    assert enc.text_value(url, "160") == url.encode()


_label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z")
# The last label starts with a letter, as top-level domains do (so no name reads as an address).
_tld = st.from_regex(r"\A[a-z][a-z0-9]{0,9}\Z")
_name = st.builds(lambda head, tld: ".".join([*head, tld]), st.lists(_label, max_size=3), _tld)
_ipv4 = st.integers(0, 2**32 - 1).map(lambda n: ".".join(str(b) for b in struct.pack("!I", n)))


@given(st.lists(_name, min_size=1, max_size=3))
def test_roundtrip_120_names(names: list[str]) -> None:
    fields = dec.decode(120, enc.sip_servers(names))
    assert [f.meaning for f in fields[1:]] == names


@given(st.lists(_ipv4, min_size=1, max_size=8))
def test_roundtrip_120_and_42_addresses(addresses: list[str]) -> None:
    assert [f.meaning for f in dec.decode(120, enc.sip_servers(addresses))[1:]] == addresses
    assert [f.meaning for f in dec.decode(42, enc.ipv4_list(addresses, "--ntp"))] == addresses


@given(st.integers(enc.MIN_TZ_OFFSET, enc.MAX_TZ_OFFSET))
def test_roundtrip_time_offset(seconds: int) -> None:
    (field,) = dec.decode(2, enc.time_offset(seconds))
    assert field.meaning.startswith(f"{seconds} s ")


@given(_name, st.integers(1, 65535), st.from_regex(r"\A/[A-Za-z0-9/._-]{0,60}\Z"))
def test_roundtrip_ms_uc_client(fqdn: str, port: int, path: str) -> None:
    fields = dec.decode(43, enc.ms_uc_client(fqdn, port, path), enc.MS_UC_CLIENT)
    assert [f.meaning for f in fields] == ["MS-UC-Client", "https", fqdn, str(port), path]


@given(st.integers(1, 4094))
def test_roundtrip_vlan(vlan: int) -> None:
    (field,) = dec.decode(43, enc.cpe_ocphone_vlan(vlan), enc.CPE_OCPHONE)
    assert field.meaning == f"VLAN {vlan}"


@given(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=200))
def test_roundtrip_text(text: str) -> None:
    (field,) = dec.decode(160, enc.text_value(text, "160"))
    assert field.meaning == text


@given(st.binary(min_size=1, max_size=64))
def test_roundtrip_hex_forms(data: bytes) -> None:
    plain = data.hex()
    assert dec.parse_hex(plain.upper()) == data
    assert dec.parse_hex(":".join(f"{b:02x}" for b in data)) == data
    assert dec.parse_hex(".".join(plain[i : i + 4] for i in range(0, len(plain), 4))) == data
    assert dec.parse_hex("0x" + plain) == data
