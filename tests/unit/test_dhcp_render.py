"""Each snippet carries exactly the encoder's bytes: parse every format back and compare.

The parsers below read each syntax the way its server documents it (ISC
dhcp-options(5), Kea ARM, dnsmasq(8), netsh/PowerShell DhcpServer docs, Cisco
``option``, RouterOS ``/ip dhcp-server option``), independently of the renderers.
"""

from __future__ import annotations

import ipaddress
import json
import re
import struct

import pytest

from phoneprov.protocols.dhcp import encode as enc
from phoneprov.protocols.dhcp.options import DhcpOption, OptionRequest, Skus, build_options
from phoneprov.protocols.dhcp.snippet import SnippetFormat, render

Key = tuple[int, str | None]
STANDARD = {"time-offset": 2, "ntp-servers": 42, "tftp-server-name": 66}
WINDOWS_CLASSES = {"MSUCClient": enc.MS_UC_CLIENT, "CPEOCPhone": enc.CPE_OCPHONE}

FULL = OptionRequest(
    provisioning_url="https://PlcmSpIp:pa$s,word@prov.example.com:8443/boot/",
    sip_servers=("sip1.example.com", "sip2.example.com"),
    web_server="lyncwebpool01.corp.example.com",
    ntp_servers=("10.99.0.1", "10.99.0.2"),
    tz_offset=-18000,
    tftp_server="10.99.0.5",
    vlan=100,
)
PLAIN = OptionRequest(provisioning_url="http://prov.example.com:8080/", skus=Skus.open_sip)
ADDRESSES = OptionRequest(
    provisioning_url="ftp://prov.example.com/", sip_servers=("192.0.2.10",), tz_offset=19800
)


def ips(text: str) -> bytes:
    return b"".join(ipaddress.IPv4Address(a).packed for a in re.split(r"[,\s]+", text.strip()))


def from_hex(text: str) -> bytes:
    return bytes.fromhex(re.sub(r"[:.\s]", "", text.removeprefix("0x")))


def parse_isc(text: str) -> dict[Key, bytes]:
    codes = dict(STANDARD)
    codes.update({n: int(c) for n, c in re.findall(r"^option (\S+) code (\d+) =", text, re.M)})
    out: dict[Key, bytes] = {}
    for name, value in re.findall(r"^option (\S+) (?!code )(.+);$", text, re.M):
        code = codes[name]
        if value.startswith('"'):
            out[(code, None)] = value[1:-1].encode()
        elif code == 2:
            out[(code, None)] = struct.pack("!i", int(value))
        elif code in (42, 150):
            out[(code, None)] = ips(value)
        else:
            out[(code, None)] = from_hex(value)
    for vendor, value in re.findall(
        r'class "([^"]+)" \{[^}]*vendor-encapsulated-options ([0-9a-f:]+);', text
    ):
        out[(43, vendor)] = from_hex(value)
    return out


def parse_kea(text: str) -> dict[Key, bytes]:
    config = json.loads("\n".join(ln for ln in text.splitlines() if not ln.startswith("//")))
    dhcp4 = config["Dhcp4"]
    codes = dict(STANDARD)
    codes.update({d["name"]: d["code"] for d in dhcp4.get("option-def", [])})
    out: dict[Key, bytes] = {}
    for item in dhcp4["option-data"]:
        code, data = codes[item["name"]], item["data"]
        if item.get("csv-format") is False:
            out[(code, None)] = from_hex(data)
        elif code == 2:
            out[(code, None)] = struct.pack("!i", int(data))
        elif code in (42, 150):
            out[(code, None)] = ips(data)
        else:
            out[(code, None)] = data.replace("\\,", ",").encode()
    for klass in dhcp4.get("client-classes", []):
        vendor = re.match(r"option\[60\]\.text == '([^']+)'", klass["test"])
        assert vendor and klass["option-def"][0] == {
            "name": "vendor-encapsulated-options",
            "code": 43,
            "type": "binary",
        }
        out[(43, vendor.group(1))] = from_hex(klass["option-data"][0]["data"])
    return out


def parse_dnsmasq(text: str) -> dict[Key, bytes]:
    tags: dict[str, str] = {}
    for tag, vendor in re.findall(r"^dhcp-vendorclass=set:([^,]+),(.+)$", text, re.M):
        tags.setdefault(tag, vendor)
    names = {"option:time-offset": 2, "option:ntp-server": 42}
    out: dict[Key, bytes] = {}
    for tag, code_text, value in re.findall(
        r"^dhcp-option(?:-force)?=(?:tag:([^,]+),)?([^,]+),(.+)$", text, re.M
    ):
        code = names.get(code_text) or int(code_text)
        vendor = tags[tag] if tag else None
        if value.startswith('"'):
            data = value[1:-1].encode()
        elif code == 2:
            data = struct.pack("!i", int(value))
        elif code in (42, 150):
            data = ips(value)
        else:
            data = from_hex(value)
        out[(code, vendor)] = data
    return out


def _windows_class(text: str, vendor_key: str | None) -> str | None:
    return WINDOWS_CLASSES[vendor_key] if vendor_key else None


def parse_netsh(text: str) -> dict[Key, bytes]:
    out: dict[Key, bytes] = {}
    for code, kind, vendor_key, value in re.findall(
        r"^netsh dhcp server set optionvalue (\d+) (\w+) (?:vendor=(\w+) )?(.+)$", text, re.M
    ):
        vendor = _windows_class(text, vendor_key)
        if vendor:
            sub = bytes([int(code)])
            body = from_hex(value) if kind == "Binary" else struct.pack("!H", int(value))
            out[(43, vendor)] = out.get((43, vendor), b"") + sub + bytes([len(body)]) + body
        elif kind == "DWORD":
            out[(int(code), None)] = struct.pack("!I", int(value))
        elif kind == "IPADDRESS":
            out[(int(code), None)] = ips(value)
        elif kind == "STRING":
            out[(int(code), None)] = value.strip('"').encode()
        else:
            out[(int(code), None)] = from_hex(value)
    return out


def _ps_value(value: str) -> bytes:
    if value.startswith("([byte[]]"):
        return bytes(int(b, 16) for b in re.findall(r"0x([0-9A-F]{2})", value))
    return value[1:-1].replace("''", "'").encode()


def parse_powershell(text: str) -> dict[Key, bytes]:
    out: dict[Key, bytes] = {}
    for vendor_key, code_text, value in re.findall(
        r"^Set-DhcpServerv4OptionValue (?:-VendorClass (\w+) )?-OptionId (\d+) -Value (.+)$",
        text,
        re.M,
    ):
        code, vendor = int(code_text), _windows_class(text, vendor_key)
        if vendor:
            body = struct.pack("!H", int(value)) if code == 10 else _ps_value(value)
            out[(43, vendor)] = out.get((43, vendor), b"") + bytes([code, len(body)]) + body
        elif code == 2:
            out[(2, None)] = struct.pack("!I", int(value))
        elif code in (42, 150):
            out[(code, None)] = ips(value.replace(",", " "))
        else:
            out[(code, None)] = _ps_value(value)
    return out


def parse_cisco(text: str) -> dict[Key, bytes]:
    out: dict[Key, bytes] = {}
    pool = ""
    for line in text.splitlines():
        if line.startswith("ip dhcp pool "):
            pool = line.split()[-1]
            continue
        match = re.match(r"^ option(?: ext)? (\d+) (hex|ip|ascii) (.+)$", line)
        if not match:
            continue
        code, kind, value = int(match.group(1)), match.group(2), match.group(3)
        if kind == "hex" and "ext" not in line:
            assert len(value.replace(".", "")) <= 180, "plain hex longer than IOS keeps"
        data = {"hex": from_hex, "ip": ips, "ascii": str.encode}[kind](value)
        vendor = None
        if code == 43:
            vendor = enc.CPE_OCPHONE if pool.endswith("BOOTSTRAP") else enc.MS_UC_CLIENT
        out[(code, vendor)] = data
    return out


def parse_mikrotik(text: str) -> dict[Key, bytes]:
    out: dict[Key, bytes] = {}
    suffix = {"-ms-uc": enc.MS_UC_CLIENT, "-cpe": enc.CPE_OCPHONE}
    for name, code, value in re.findall(r"^add name=(\S+) code=(\d+) value=(.+)$", text, re.M):
        vendor = next((v for s, v in suffix.items() if name.endswith(s)), None)
        data = from_hex(value) if value.startswith("0x") else value[2:-2].encode()
        out[(int(code), vendor)] = data
    return out


PARSERS = {
    SnippetFormat.isc_dhcpd: parse_isc,
    SnippetFormat.kea: parse_kea,
    SnippetFormat.dnsmasq: parse_dnsmasq,
    SnippetFormat.windows_netsh: parse_netsh,
    SnippetFormat.powershell: parse_powershell,
    SnippetFormat.cisco_ios: parse_cisco,
    SnippetFormat.mikrotik: parse_mikrotik,
}


def expected(options: tuple[DhcpOption, ...]) -> dict[Key, bytes]:
    return {(o.code, o.vendor_class): o.data for o in options}


@pytest.mark.parametrize("fmt", list(SnippetFormat), ids=[f"ok/{f.value}" for f in SnippetFormat])
@pytest.mark.parametrize("request_", [FULL, PLAIN, ADDRESSES], ids=["full", "plain", "addresses"])
def test_snippet_carries_the_encoder_bytes(fmt: SnippetFormat, request_: OptionRequest) -> None:
    options = build_options(request_)
    assert PARSERS[fmt](render(fmt, options)) == expected(options)


def test_ok_cisco_uses_option_ext_past_180_hex_digits() -> None:
    options = build_options(FULL)
    ms_uc = next(o for o in options if o.vendor_class == enc.MS_UC_CLIENT)
    assert len(ms_uc.hex) > 180  # a 30-character web server name
    snippet = render(SnippetFormat.cisco_ios, options)
    assert " option ext 43 hex 010c.4d53" in snippet
    assert "option 43 is longer than 90 bytes" in snippet


def test_ok_mikrotik_writes_dollar_urls_as_hex() -> None:
    snippet = render(SnippetFormat.mikrotik, build_options(FULL))
    assert "code=160 value=0x68747470" in snippet
    assert "$" not in snippet.split("/ip dhcp-server option\n")[1]


def test_ok_kea_escapes_commas_in_csv_strings() -> None:
    snippet = render(SnippetFormat.kea, build_options(FULL))
    assert "pa$s\\\\,word@" in snippet


@pytest.mark.parametrize("fmt", list(SnippetFormat), ids=[f.value for f in SnippetFormat])
def test_every_snippet_has_note_lines(fmt: SnippetFormat) -> None:
    snippet = render(fmt, build_options(FULL))
    assert re.search(r"^(#|//|!|rem) note: ", snippet, re.M)
