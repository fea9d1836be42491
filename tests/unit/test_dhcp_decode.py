"""The decoder: every option it knows, Polycom's option 60, and errors that name the byte offset."""

from __future__ import annotations

import pytest

from phoneprov.errors import InputError
from phoneprov.protocols.dhcp import decode as dec

# Polycom option 60 as the SIP 3.1 admin guide describes it (research polycom_protocol.md §7.2):
# enterprise 13885, data length 0x70 (counting the END byte), sub-options 1-5, END.
POLYCOM_60 = "".join(
    [
        "0000363D70",
        "0107" + b"Polycom".hex(),
        "0215" + b"SoundPointIP-SPIP_601".hex(),
        "0310" + b"2345-11605-001,2".hex(),
        "041C" + b"SIP/Tip.XXXX/08-Jun-07 10:44".hex(),
        "051D" + b"BR/3.1.0.XXXX/28-Apr-05 13:30".hex(),
        "FF",
    ]
)


def meanings(code: int, hex_value: str, vendor_class: str | None = None) -> list[str]:
    return [f.meaning for f in dec.decode(code, dec.parse_hex(hex_value), vendor_class)]


def test_ok_polycom_binary_vendor_class() -> None:
    data = dec.parse_hex(POLYCOM_60)
    assert len(data) == 117
    fields = dec.decode(60, data)
    assert [f.name for f in fields] == [
        "enterprise number",
        "data length",
        "sub-option 1 company",
        "sub-option 2 model",
        "sub-option 3 part number, revision",
        "sub-option 4 application version",
        "sub-option 5 bootROM/Updater version",
        "end",
    ]
    assert fields[0].meaning == "13885 (Polycom)"
    assert fields[3].meaning == "SoundPointIP-SPIP_601"
    assert fields[4].meaning == "2345-11605-001,2"
    assert fields[7].offset == 116


def test_ok_polycom_vendor_class_with_end_outside_the_length() -> None:
    data = bytearray(dec.parse_hex(POLYCOM_60))
    data[4] -= 1
    assert [f.name for f in dec.decode(60, bytes(data))][-1] == "end"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("MS-UC-Client", "certificate provisioning"),
        ("CPE-OCPHONE", "voice VLAN"),
        ("Polycom-VVX310", "ASCII vendor class"),
    ],
    ids=["ok/60-ms-uc-client", "ok/60-cpe-ocphone", "ok/60-polycom-ascii"],
)
def test_ascii_vendor_classes(text: str, fragment: str) -> None:
    (field,) = dec.decode(60, text.encode())
    assert field.meaning.startswith(text) and fragment in field.meaning


def test_ok_ms_uc_client_suboptions_inferred_without_class() -> None:
    value = "010C4D532D55432D436C69656E74020568747470730303612E62040334343305012F"
    assert meanings(43, value) == ["MS-UC-Client", "https", "a.b", "443", "/"]


def test_ok_dnsmasq_vendor_form_end_byte_is_shown() -> None:
    fields = dec.decode(43, dec.parse_hex("0a020064ff"), "CPE-OCPHONE")
    assert [f.name for f in fields] == ["sub-option 10 voice VLAN", "end"]


def test_ok_dnsmasq_compressed_120() -> None:
    # dnsmasq writes a second name as a pointer counted from after the encoding byte.
    value = "00" + "0473697031076578616d706c6503636f6d00" + "0473697032c005"
    assert meanings(120, value) == [
        "0: DNS names (RFC 3361)",
        "sip1.example.com",
        "sip2.example.com",
    ]


def test_ok_trailing_nul_on_66_is_explained() -> None:
    fields = dec.decode(66, b"tftp.example.local\x00")
    assert fields[0].meaning == "tftp.example.local"
    assert fields[1].name == "trailing NUL"


def test_ok_short_hex_groups_as_dhclient_prints_them() -> None:
    assert dec.parse_hex("1:c:4d") == b"\x01\x0c\x4d"


@pytest.mark.parametrize(
    ("code", "value", "fragment"),
    [
        (43, "010C4D53", "sub-option 1 at byte offset 0 declares 12 bytes but only 2 follow"),
        (43, "0A020064FF0A", "sub-option 10 at byte offset 5 has no length byte"),
        (120, "0003736970", "name starting at byte offset 1 is truncated at byte offset 5"),
        (120, "02C0000201", "encoding byte is 2 at byte offset 0"),
        (42, "0A0000010A00", "truncated at byte offset 4"),
        (2, "FFFFB9", "exactly 4"),
        (60, "0000363D10010750", "says 16 bytes but 3 follow"),
        (60, "0000363D", "no data-length byte at byte offset 4"),
        (61, "00", "not one decode explains"),
    ],
    ids=[
        "fail/43-truncated-value",
        "fail/43-missing-length",
        "fail/120-truncated-label",
        "fail/120-bad-encoding",
        "fail/42-partial-address",
        "fail/2-three-bytes",
        "fail/60-truncated",
        "fail/60-no-length",
        "fail/unknown-option",
    ],
)
def test_malformed_values_name_the_offset(code: int, value: str, fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        dec.decode(code, dec.parse_hex(value))
    assert fragment in str(caught.value)
    assert caught.value.hint


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0A02G064", "'G' at character 5 (byte offset 2)"),
        ("0A0200641", "byte offset 4 has only one digit"),
        ("0A0:200", "splits the byte at offset 1"),
        ("", "no hex digits"),
    ],
    ids=["fail/hex-bad-digit", "fail/hex-odd-length", "fail/hex-split-byte", "fail/hex-empty"],
)
def test_bad_hex_names_the_offset(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        dec.parse_hex(text)
    assert fragment in str(caught.value)
