"""Explain a DHCP option value byte by byte: the inverse of ``dhcp.encode``.

Input is the option *value* (no code, no length byte) as any server or capture
prints it. Every malformed value raises InputError naming the byte offset where
it broke, so an administrator can find the bad byte in a long hex string.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

from phoneprov.errors import InputError
from phoneprov.protocols.dhcp import encode as enc

POLYCOM_ENTERPRISE = 13885  # IANA enterprise number of Polycom; first 4 bytes of binary option 60
DECODABLE = (2, 42, 43, 60, 66, 120, 150, 160, 161)

_MS_UC_SUBOPTIONS = {
    1: "UC identifier",
    2: "URL scheme",
    3: "web server FQDN",
    4: "web server port",
    5: "certificate provisioning path",
}
# Polycom admin guides (SIP 3.1 p.317, UCS 5.9 "parse vendor ID"): option 60 sub-options.
_POLYCOM_SUBOPTIONS = {
    1: "company",
    2: "model",
    3: "part number, revision",
    4: "application version",
    5: "bootROM/Updater version",
}
_SHORT_HEX_GROUPS = re.compile(r"^[0-9A-Fa-f]{1,2}(:[0-9A-Fa-f]{1,2})+$")


@dataclass(frozen=True)
class Field:
    """One decoded piece: where it sits, its raw bytes (upper-case hex) and what it means."""

    offset: int
    length: int
    name: str
    hex: str
    meaning: str

    def as_json(self) -> dict[str, object]:
        return {
            "offset": self.offset,
            "length": self.length,
            "name": self.name,
            "hex": self.hex,
            "meaning": self.meaning,
        }


def parse_hex(text: str) -> bytes:
    """Parse hex as servers print it: ``0A02``, ``0a:02``, ``0a02.0064``, ``0x0A02``, ``a:2``.

    The short-group form ``1:c:4d`` (dhclient drops leading zeros) is read byte by
    byte. Raises InputError naming the byte offset of the first bad character.
    """
    raw = text.strip()
    if raw[:2].lower() == "0x":
        raw = raw[2:]
    if _SHORT_HEX_GROUPS.match(raw):
        return bytes(int(group, 16) for group in raw.split(":"))
    digits: list[str] = []
    for position, char in enumerate(raw):
        if char in ":.- \t\n":
            if len(digits) % 2:
                raise InputError(
                    f"separator {char!r} at character {position + 1} splits the byte at "
                    f"offset {len(digits) // 2}",
                    "Write every byte as two hex digits, e.g. 0A not A.",
                )
            continue
        if char not in "0123456789abcdefABCDEF":
            raise InputError(
                f"{char!r} at character {position + 1} (byte offset {len(digits) // 2}) "
                "is not a hex digit",
                "Give the option value as hex digits 0-9 A-F, e.g. 0A020064.",
            )
        digits.append(char)
    if not digits:
        raise InputError("no hex digits given", "Give the option value, e.g. 0A020064.")
    if len(digits) % 2:
        raise InputError(
            f"odd number of hex digits: byte offset {len(digits) // 2} has only one digit",
            "Every byte is two hex digits; check the end of the value for a missing digit.",
        )
    return bytes.fromhex("".join(digits))


def _field(data: bytes, offset: int, length: int, name: str, meaning: str) -> Field:
    return Field(offset, length, name, data[offset : offset + length].hex().upper(), meaning)


def _ascii(raw: bytes) -> str:
    text = raw.decode("ascii", "backslashreplace")
    return text if text.isprintable() else repr(raw)[2:-1]


def _time_offset(data: bytes) -> list[Field]:
    if len(data) != 4:
        raise InputError(
            f"option 2 is {len(data)} bytes; it must be exactly 4 "
            f"(byte offset {min(len(data), 4)})",
            "Option 2 is a signed 32-bit number of seconds, e.g. FFFFB9B0 for -18000.",
        )
    (seconds,) = struct.unpack("!i", data)
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return [_field(data, 0, 4, "time offset", f"{seconds} s (UTC{sign}{hours:02d}:{minutes:02d})")]


def _addresses(data: bytes, start: int = 0, name: str = "IPv4 address") -> list[Field]:
    body = len(data) - start
    if body == 0 or body % 4:
        broken = start + body - body % 4
        raise InputError(
            f"address list is {body} bytes, not a multiple of 4: truncated at byte offset {broken}",
            "Each IPv4 address is 4 bytes; check the value is complete.",
        )
    return [
        _field(data, i, 4, name, str(ipaddress.IPv4Address(data[i : i + 4])))
        for i in range(start, len(data), 4)
    ]


def _text(data: bytes) -> list[Field]:
    if not data:
        raise InputError("the value is empty (byte offset 0)", "Give the option's bytes.")
    body = data.rstrip(b"\x00")
    fields = [_field(data, 0, len(body), "text", _ascii(body))]
    if len(body) < len(data):
        fields.append(
            _field(
                data,
                len(body),
                len(data) - len(body),
                "trailing NUL",
                "RFC 2132 §2: senders should not add it, receivers strip it "
                "(dnsmasq adds it to option 66, Windows to String options)",
            )
        )
    return fields


def _names(data: bytes) -> list[Field]:
    fields: list[Field] = []
    offset = 1
    while offset < len(data):
        start = offset
        labels: list[str] = []
        while True:
            if offset >= len(data):
                raise InputError(
                    f"name starting at byte offset {start} is truncated at byte offset {offset}",
                    "Each name ends with a 00 byte; the value is cut short.",
                )
            size = data[offset]
            if size == 0:
                offset += 1
                break
            if size & 0xC0 == 0xC0:
                # RFC 3361 §3.1 allows RFC 1035 compression; the pointer counts from
                # the byte after the encoding byte (how dnsmasq writes it).
                if offset + 1 >= len(data):
                    raise InputError(
                        f"compression pointer at byte offset {offset} is truncated",
                        "A pointer is two bytes.",
                    )
                target = ((size & 0x3F) << 8 | data[offset + 1]) + 1
                labels.append(_pointed_name(data, target, offset))
                offset += 2
                break
            if size > 63 or offset + 1 + size > len(data):
                raise InputError(
                    f"label at byte offset {offset} declares {size} bytes; "
                    f"{len(data) - offset - 1} follow",
                    "Labels are 1-63 bytes; the value is truncated or not enc-0 names.",
                )
            labels.append(data[offset + 1 : offset + 1 + size].decode("ascii", "replace"))
            offset += 1 + size
        fields.append(_field(data, start, offset - start, "SIP server name", ".".join(labels)))
    if not fields:
        raise InputError("encoding 00 but no name follows (byte offset 1)", "Add a name.")
    return fields


def _pointed_name(data: bytes, target: int, at: int) -> str:
    labels: list[str] = []
    seen: set[int] = set()
    while 0 < target < len(data) and target not in seen:
        seen.add(target)
        size = data[target]
        if size == 0:
            return ".".join(labels)
        if size & 0xC0 == 0xC0 and target + 1 < len(data):
            target = ((size & 0x3F) << 8 | data[target + 1]) + 1
            continue
        labels.append(data[target + 1 : target + 1 + size].decode("ascii", "replace"))
        target += 1 + size
    raise InputError(
        f"compression pointer at byte offset {at} points outside the names or loops",
        "Write the names uncompressed.",
    )


def _sip_servers(data: bytes) -> list[Field]:
    if not data:
        raise InputError("option 120 is empty (byte offset 0)", "RFC 3361 needs an encoding byte.")
    kind = data[0]
    if kind == 0:
        head = _field(data, 0, 1, "encoding", "0: DNS names (RFC 3361)")
        return [head, *_names(data)]
    if kind == 1:
        head = _field(data, 0, 1, "encoding", "1: IPv4 addresses (RFC 3361)")
        return [head, *_addresses(data, 1, "SIP server address")]
    raise InputError(
        f"option 120 encoding byte is {kind} at byte offset 0; RFC 3361 defines 0 and 1",
        "Start the value with 00 (names) or 01 (addresses).",
    )


def _suboptions(
    data: bytes, start: int, end: int, meaning: Callable[[int, bytes], tuple[str, str]]
) -> list[Field]:
    fields: list[Field] = []
    offset = start
    while offset < end:
        code = data[offset]
        if code == 0xFF:
            fields.append(_field(data, offset, 1, "end", "END (255): no more sub-options"))
            offset += 1
            continue
        if code == 0:
            fields.append(_field(data, offset, 1, "pad", "PAD (0)"))
            offset += 1
            continue
        if offset + 1 >= end:
            raise InputError(
                f"sub-option {code} at byte offset {offset} has no length byte",
                "The value is truncated; each sub-option is code, length, value.",
            )
        size = data[offset + 1]
        if offset + 2 + size > end:
            raise InputError(
                f"sub-option {code} at byte offset {offset} declares {size} bytes but only "
                f"{end - offset - 2} follow",
                "The value is truncated or the length byte is wrong.",
            )
        value = data[offset + 2 : offset + 2 + size]
        name, text = meaning(code, value)
        fields.append(_field(data, offset, 2 + size, f"sub-option {code} {name}", text))
        offset += 2 + size
    return fields


def _ms_uc_meaning(code: int, value: bytes) -> tuple[str, str]:
    return _MS_UC_SUBOPTIONS.get(code, "(not defined by Microsoft)"), _ascii(value)


def _cpe_meaning(code: int, value: bytes) -> tuple[str, str]:
    if code == 10 and len(value) == 2:
        return "voice VLAN", f"VLAN {struct.unpack('!H', value)[0]}"
    return "(not a CPE-OCPHONE sub-option)", value.hex().upper()


def _generic_meaning(code: int, value: bytes) -> tuple[str, str]:
    text = value.decode("ascii", "replace")
    return "", text if value and text.isprintable() else value.hex().upper()


def _vendor_specific(data: bytes, vendor_class: str | None) -> list[Field]:
    if not data:
        raise InputError("option 43 is empty (byte offset 0)", "Give the option's bytes.")
    chosen = (vendor_class or "").lower()
    if not chosen:
        if data.startswith(b"\x01\x0c" + enc.MS_UC_CLIENT.encode()):
            chosen = enc.MS_UC_CLIENT.lower()
        elif data[0] == 10:
            chosen = enc.CPE_OCPHONE.lower()
    if chosen == enc.MS_UC_CLIENT.lower():
        return _suboptions(data, 0, len(data), _ms_uc_meaning)
    if chosen == enc.CPE_OCPHONE.lower():
        return _suboptions(data, 0, len(data), _cpe_meaning)
    return _suboptions(data, 0, len(data), _generic_meaning)


def _polycom_meaning(code: int, value: bytes) -> tuple[str, str]:
    return _POLYCOM_SUBOPTIONS.get(code, "(unknown)"), _ascii(value)


def _vendor_class(data: bytes) -> list[Field]:
    if len(data) >= 4 and int.from_bytes(data[:4], "big") == POLYCOM_ENTERPRISE:
        if len(data) < 5:
            raise InputError(
                "Polycom vendor class has no data-length byte at byte offset 4",
                "The value is truncated after the enterprise number.",
            )
        size = data[4]
        if 5 + size > len(data):
            raise InputError(
                f"data-length at byte offset 4 says {size} bytes but {len(data) - 5} follow",
                "The value is truncated.",
            )
        fields = [
            _field(data, 0, 4, "enterprise number", f"{POLYCOM_ENTERPRISE} (Polycom)"),
            _field(data, 4, 1, "data length", f"{size} bytes"),
            *_suboptions(data, 5, 5 + size, _polycom_meaning),
        ]
        # Some captures leave the END byte outside the counted length.
        if len(data) > 5 + size:
            fields.extend(_suboptions(data, 5 + size, len(data), _polycom_meaning))
        return fields
    fields = _text(data)
    known = {
        enc.MS_UC_CLIENT: "Lync/SfB phone asking for certificate provisioning (option 43)",
        enc.CPE_OCPHONE: "Lync Phone Edition asking for its voice VLAN (option 43)",
    }
    body = data.rstrip(b"\x00").decode("ascii", "replace")
    hint = known.get(body) or (
        "Polycom phone, ASCII vendor class (device.dhcp.option60Type = ASCII)"
        if body.lower().startswith("poly")
        else "vendor class identifier"
    )
    first = fields[0]
    fields[0] = Field(first.offset, first.length, "vendor class", first.hex, f"{body}: {hint}")
    return fields


def decode(code: int, data: bytes, vendor_class: str | None = None) -> list[Field]:
    """Explain ``data`` as the value of option ``code``; ``vendor_class`` selects the 43 variant.

    Returns the fields in byte order. Raises InputError for an option this
    decoder does not know or for malformed bytes (the message names the offset).
    """
    decoders: dict[int, Callable[[bytes], list[Field]]] = {
        2: _time_offset,
        42: _addresses,
        150: _addresses,
        66: _text,
        160: _text,
        161: _text,
        120: _sip_servers,
        60: _vendor_class,
    }
    if code == 43:
        return _vendor_specific(data, vendor_class)
    if code not in decoders:
        raise InputError(
            f"option {code} is not one decode explains",
            f"Known options: {', '.join(str(c) for c in DECODABLE)}.",
        )
    return decoders[code](data)
