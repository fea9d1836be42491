"""DHCP server snippets from encoded options: ISC dhcpd, Kea and dnsmasq.

Every renderer writes the bytes ``dhcp.encode`` produced, in the one syntax of
each server that is known (and tested against the real server, see
tests/integration/test_dhcp_servers.py) to put exactly those bytes on the wire.
Each trap of a server gets a comment line in its snippet. Windows, Cisco and
MikroTik live in ``dhcp.vendor``; ``dhcp.snippet.render`` picks one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from phoneprov.protocols.dhcp import encode as enc
from phoneprov.protocols.dhcp.options import DhcpOption

# Option names the snippets define for codes the servers do not know.
DEFINED_NAMES = {
    120: "sip-server-rfc3361",
    150: "cisco-tftp-servers",
    160: "polycom-boot-server",
    161: "polycom-boot-server-lync",
}
KEA_NAMES = {2: "time-offset", 42: "ntp-servers", 66: "tftp-server-name"}
CLASS_TAGS = {enc.MS_UC_CLIENT: "ms-uc-client", enc.CPE_OCPHONE: "cpe-ocphone"}
# Phones may leave 160/161 and 43 out of their parameter request list; servers
# that honour the list strictly (Kea, dnsmasq) are told to send them anyway.
FORCED = (43, 160, 161)


def plain(options: Sequence[DhcpOption]) -> list[DhcpOption]:
    """The options every phone gets (all but the vendor-class 43 variants)."""
    return [o for o in options if o.vendor_class is None]


def by_class(options: Sequence[DhcpOption]) -> list[DhcpOption]:
    """The option 43 variants, each for one vendor class."""
    return [o for o in options if o.vendor_class is not None]


def colon_hex(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


def comment_lines(prefix: str, lines: Sequence[str]) -> list[str]:
    return [f"{prefix} {line}".rstrip() for line in lines]


def _addresses(option: DhcpOption) -> list[str]:
    return [str(enc.ipv4_address(a, "address")) for a in option.value.split(", ")]


def _text(option: DhcpOption) -> str:
    return option.data.decode("ascii")


def render_isc(options: Sequence[DhcpOption]) -> str:
    """dhcpd.conf statements for ISC dhcpd 4.x (global scope or inside a subnet)."""
    codes = {o.code for o in options}
    lines = comment_lines(
        "#",
        [
            "phoneprov DHCP options for ISC dhcpd 4.x: paste into dhcpd.conf at global scope",
            "(or move the plain option lines into your subnet { } block); check with dhcpd -t.",
            "note: options 120, 150, 160 and 161 need the 'code N =' definitions below; "
            "remove any other definition of those codes first.",
            "note: 'text' values go out without a NUL; 120 is given as hex bytes (RFC 3361).",
            "note: class matching on option 60 is exact; CPE-OCPHONE is matched "
            "case-insensitively because Microsoft spells it two ways.",
        ],
    )
    for code in (120, 150, 160, 161):
        if code in codes:
            kind = {120: "string", 150: "array of ip-address"}.get(code, "text")
            lines.append(f"option {DEFINED_NAMES[code]} code {code} = {kind};")
    lines.append("")
    for option in plain(options):
        if option.code == 2:
            lines.append(f"option time-offset {enc_int(option)};")
        elif option.code == 42:
            lines.append(f"option ntp-servers {', '.join(_addresses(option))};")
        elif option.code == 66:
            lines.append(f'option tftp-server-name "{_text(option)}";')
        elif option.code == 120:
            lines.append(f"option {DEFINED_NAMES[120]} {colon_hex(option.data)};")
        elif option.code == 150:
            lines.append(f"option {DEFINED_NAMES[150]} {', '.join(_addresses(option))};")
        else:
            lines.append(f'option {DEFINED_NAMES[option.code]} "{_text(option)}";')
    for option in by_class(options):
        vendor = option.vendor_class or ""
        match = (
            f'lcase(option vendor-class-identifier) = "{vendor.lower()}"'
            if vendor == enc.CPE_OCPHONE
            else f'option vendor-class-identifier = "{vendor}"'
        )
        lines += [
            "",
            f'class "{vendor}" {{',
            f"  match if {match};",
            f"  option vendor-encapsulated-options {colon_hex(option.data)};",
            "}",
        ]
    return "\n".join(lines) + "\n"


def enc_int(option: DhcpOption) -> int:
    """The signed integer an option 2 value carries."""
    return int.from_bytes(option.data, "big", signed=True)


def _kea_escape(text: str) -> str:
    # Kea splits CSV option data on commas; a literal comma is written "\,".
    return text.replace(",", "\\,")


def _json_block(value: object, indent: str = "") -> list[str]:
    """Stable JSON with one line per flat object, so snippets stay short and diffable."""
    if isinstance(value, dict) and any(isinstance(v, list | dict) for v in value.values()):
        items = list(value.items())
        out = [indent + "{"]
        for index, (key, item) in enumerate(items):
            inner = _json_block(item, indent + "  ")
            inner[0] = f"{indent}  {json.dumps(key)}: {inner[0].lstrip()}"
            if index < len(items) - 1:
                inner[-1] += ","
            out += inner
        return [*out, indent + "}"]
    if isinstance(value, list) and value:
        out = [indent + "["]
        for index, item in enumerate(value):
            inner = _json_block(item, indent + "  ")
            if index < len(value) - 1:
                inner[-1] += ","
            out += inner
        return [*out, indent + "]"]
    return [indent + json.dumps(value, separators=(", ", ": "))]


def kea_config(options: Sequence[DhcpOption]) -> dict[str, object]:
    """The ``Dhcp4`` keys to merge into kea-dhcp4.conf (option-def, option-data, classes)."""
    defs: list[dict[str, object]] = []
    data: list[dict[str, object]] = []
    for option in plain(options):
        if option.code in DEFINED_NAMES:
            definition: dict[str, object] = {
                "name": DEFINED_NAMES[option.code],
                "code": option.code,
                "space": "dhcp4",
                "type": {120: "binary", 150: "ipv4-address"}.get(option.code, "string"),
            }
            if option.code == 150:
                definition["array"] = True
            defs.append(definition)
        entry: dict[str, object] = {
            "name": KEA_NAMES.get(option.code) or DEFINED_NAMES[option.code]
        }
        if option.code == 120:
            entry.update({"csv-format": False, "data": option.hex})
        elif option.code in (42, 150):
            entry["data"] = ", ".join(_addresses(option))
        elif option.code == 2:
            entry["data"] = str(enc_int(option))
        else:
            entry["data"] = _kea_escape(_text(option))
        if option.code in FORCED:
            entry["always-send"] = True
        data.append(entry)
    classes: list[dict[str, object]] = []
    for option in by_class(options):
        vendor = option.vendor_class or ""
        test = f"option[60].text == '{vendor}'"
        if vendor == enc.CPE_OCPHONE:
            test += f" or option[60].text == '{enc.CPE_OCPHONE_ALT}'"
        classes.append(
            {
                "name": f"phoneprov-{CLASS_TAGS[vendor]}",
                "test": test,
                "option-def": [
                    {"name": "vendor-encapsulated-options", "code": 43, "type": "binary"}
                ],
                "option-data": [
                    {
                        "name": "vendor-encapsulated-options",
                        "csv-format": False,
                        "data": option.hex,
                        "always-send": True,
                    }
                ],
            }
        )
    body: dict[str, object] = {}
    if defs:
        body["option-def"] = defs
    body["option-data"] = data
    if classes:
        body["client-classes"] = classes
    return {"Dhcp4": body}


def render_kea(options: Sequence[DhcpOption]) -> str:
    """A kea-dhcp4 configuration fragment (Kea 2.x accepts // comments)."""
    lines = comment_lines(
        "//",
        [
            "phoneprov DHCP options for Kea 2.x: merge these keys into the Dhcp4 map of",
            "kea-dhcp4.conf (or move option-data into a subnet4 entry); check with kea-dhcp4 -t.",
            "note: Kea has no definitions for 120, 150, 160 and 161: option-def adds them;",
            "a Kea that already defines one of them rejects the duplicate: drop that option-def.",
            "note: option 43 is redefined as binary inside each class so the bytes are exact.",
            "note: always-send: phones that leave 43/160/161 out of their request list "
            "still get them.",
            "note: a comma inside a CSV string is written \\, (Kea splits on commas).",
        ],
    )
    return "\n".join(lines + _json_block(kea_config(options))) + "\n"


def render_dnsmasq(options: Sequence[DhcpOption]) -> str:
    """dnsmasq.conf lines (dnsmasq 2.8x-2.90)."""
    lines = comment_lines(
        "#",
        [
            "phoneprov DHCP options for dnsmasq: add to dnsmasq.conf; check with dnsmasq --test.",
            "note: dnsmasq always appends a NUL to option 66 (phones strip it, RFC 2132 §2).",
            "note: option 43 is given as raw hex per vendor class: dnsmasq's vendor: form",
            "writes sub-options in reverse order and adds an END byte.",
            "note: text is quoted so dnsmasq never re-types it as an address or hex.",
            "note: dhcp-vendorclass matches a case-sensitive substring of option 60, so",
            "CPE-OCPHONE is listed in both of Microsoft's spellings.",
        ],
    )
    for option in plain(options):
        key = "dhcp-option-force" if option.code in FORCED else "dhcp-option"
        if option.code == 2:
            lines.append(f"{key}=option:time-offset,{enc_int(option)}")
        elif option.code == 42:
            lines.append(f"{key}=option:ntp-server,{','.join(_addresses(option))}")
        elif option.code == 150:
            lines.append(f"{key}=150,{','.join(_addresses(option))}")
        elif option.code == 120:
            lines.append(f"{key}=120,{colon_hex(option.data)}")
        else:
            lines.append(f'{key}={option.code},"{_text(option)}"')
    for option in by_class(options):
        tag = CLASS_TAGS[option.vendor_class or ""]
        lines.append(f"dhcp-vendorclass=set:{tag},{option.vendor_class}")
        if option.vendor_class == enc.CPE_OCPHONE:
            lines.append(f"dhcp-vendorclass=set:{tag},{enc.CPE_OCPHONE_ALT}")
        lines.append(f"dhcp-option-force=tag:{tag},43,{colon_hex(option.data)}")
    return "\n".join(lines) + "\n"
