"""DHCP snippets for Windows Server (netsh, PowerShell), Cisco IOS and MikroTik RouterOS.

None of these servers runs on the test machine, so the syntax follows the
vendors' own material: Microsoft's DHCPConfigScript.bat (shipped with DHCPUtil)
and the DhcpServer PowerShell module documentation, Cisco's ``option`` command
reference, MikroTik's DHCP server manual. The bytes are the encoder's, and the
unit tests decode them back out of each snippet.
"""

from __future__ import annotations

from collections.abc import Sequence

from phoneprov.protocols.dhcp import encode as enc
from phoneprov.protocols.dhcp.options import DhcpOption
from phoneprov.protocols.dhcp.render import by_class, comment_lines, plain

# Cisco IOS 15.1(3)S and later silently cut `option N hex` after 180 hex digits.
CISCO_HEX_LIMIT = 180
# Names and comments exactly as DHCPConfigScript.bat defines the MS-UC-Client sub-options.
_MS_UC_DEFS = {
    1: ("UCIdentifier", "UC Identifier"),
    2: ("URLScheme", "URL Scheme"),
    3: ("WebServerFqdn", "Web Server Fqdn"),
    4: ("WebServerPort", "Web Server Port"),
    5: ("CertProvRelPath", "Cert Prov Relative Path"),
}
_WINDOWS_DEFS = {
    120: ("UCSipServer", "Binary", "0", "Sip Server Fqdn"),
    150: ("CiscoTFTP", "IPADDRESS", "1", "Cisco TFTP servers"),
    160: ("PolycomBootServer", "STRING", "0", "Polycom boot server (Open SIP)"),
    161: ("PolycomBootServerLync", "STRING", "0", "Polycom boot server (Lync SKUs)"),
}
_WINDOWS_CLASSES = {
    enc.MS_UC_CLIENT: ("MSUCClient", "UC Vendor Class Id"),
    enc.CPE_OCPHONE: ("CPEOCPhone", "Lync Phone Edition VLAN"),
}
_WINDOWS_TRAPS = [
    "note: Windows sends String options with a trailing NUL; phones strip it (RFC 2132 §2).",
    "note: 120 and the MS-UC-Client sub-options are Binary, as Microsoft's DHCPConfigScript.bat",
    "defines them, so no NUL is added.",
    "note: option 002 is an unsigned DWORD: a negative offset is entered as its two's complement.",
    "note: the vendor class DATA must equal what the phone sends in option 60 (case matters).",
]


def _unsigned(option: DhcpOption) -> int:
    return int.from_bytes(option.data, "big", signed=False)


def _text(option: DhcpOption) -> str:
    return option.data.decode("ascii")


def _addresses(option: DhcpOption) -> list[str]:
    return option.value.split(", ")


def render_netsh(options: Sequence[DhcpOption]) -> str:
    """netsh commands for an elevated cmd.exe on the DHCP server (server-level options)."""
    lines = comment_lines(
        "rem",
        [
            "phoneprov DHCP options for Windows Server DHCP: run in an elevated cmd.exe.",
            "Server-level values; for one scope write 'netsh dhcp server scope <subnet> "
            "set optionvalue ...'.",
            *_WINDOWS_TRAPS,
        ],
    )
    for option in plain(options):
        if option.code in _WINDOWS_DEFS:
            name, kind, array, comment = _WINDOWS_DEFS[option.code]
            lines.append(
                f"netsh dhcp server add optiondef {option.code} {name} {kind} {array} "
                f'comment="{comment}"'
            )
        if option.code == 2:
            lines.append(f"netsh dhcp server set optionvalue 2 DWORD {_unsigned(option)}")
        elif option.code in (42, 150):
            joined = " ".join(_addresses(option))
            lines.append(f"netsh dhcp server set optionvalue {option.code} IPADDRESS {joined}")
        elif option.code == 120:
            lines.append(f"netsh dhcp server set optionvalue 120 Binary {option.hex}")
        else:
            lines.append(
                f'netsh dhcp server set optionvalue {option.code} STRING "{_text(option)}"'
            )
    for option in by_class(options):
        vendor = option.vendor_class or ""
        name, comment = _WINDOWS_CLASSES[vendor]
        lines.append(f'netsh dhcp server add class {name} "{comment}" "{vendor}" 1')
        if vendor == enc.MS_UC_CLIENT:
            pairs = enc.split_tlvs(option.data)
            for code, _value in pairs:
                def_name, def_comment = _MS_UC_DEFS[code]
                lines.append(
                    f"netsh dhcp server add optiondef {code} {def_name} Binary 0 "
                    f'Vendor={name} comment="{def_comment}"'
                )
            for code, value in pairs:
                lines.append(
                    f"netsh dhcp server set optionvalue {code} Binary vendor={name} "
                    f"{value.hex().upper()}"
                )
        else:
            lines.append(
                f'netsh dhcp server add optiondef 10 VLANID Word 0 Vendor={name} comment="VLAN ID"'
            )
            lines.append(f"netsh dhcp server set optionvalue 10 Word vendor={name} {option.value}")
    return "\n".join(lines) + "\n"


def _ps_bytes(data: bytes) -> str:
    return "([byte[]](" + ",".join(f"0x{b:02X}" for b in data) + "))"


def _ps_quote(text: str) -> str:
    # Single quotes: PowerShell expands $ inside double quotes.
    return "'" + text.replace("'", "''") + "'"


def render_powershell(options: Sequence[DhcpOption]) -> str:
    """DhcpServer module commands (Windows Server 2012 and later, elevated PowerShell)."""
    lines = comment_lines(
        "#",
        [
            "phoneprov DHCP options for Windows Server DHCP: run in an elevated PowerShell.",
            "Server-level values; add -ScopeId <subnet> to Set-DhcpServerv4OptionValue "
            "for one scope.",
            *_WINDOWS_TRAPS,
        ],
    )
    ps_types = {"Binary": "BinaryData", "IPADDRESS": "IPv4Address", "STRING": "String"}
    for option in plain(options):
        if option.code in _WINDOWS_DEFS:
            name, kind, array, comment = _WINDOWS_DEFS[option.code]
            multi = " -MultiValued" if array == "1" else ""
            lines.append(
                f"Add-DhcpServerv4OptionDefinition -OptionId {option.code} -Name {name} "
                f"-Type {ps_types[kind]}{multi} -Description {_ps_quote(comment)}"
            )
        prefix = f"Set-DhcpServerv4OptionValue -OptionId {option.code} -Value"
        if option.code == 2:
            lines.append(f"{prefix} {_unsigned(option)}")
        elif option.code in (42, 150):
            lines.append(f"{prefix} {','.join(_addresses(option))}")
        elif option.code == 120:
            lines.append(f"{prefix} {_ps_bytes(option.data)}")
        else:
            lines.append(f"{prefix} {_ps_quote(_text(option))}")
    for option in by_class(options):
        vendor = option.vendor_class or ""
        name, comment = _WINDOWS_CLASSES[vendor]
        lines.append(
            f"Add-DhcpServerv4Class -Name {name} -Type Vendor -Data {_ps_quote(vendor)} "
            f"-Description {_ps_quote(comment)}"
        )
        if vendor == enc.MS_UC_CLIENT:
            pairs = enc.split_tlvs(option.data)
            for code, _value in pairs:
                def_name, def_comment = _MS_UC_DEFS[code]
                lines.append(
                    f"Add-DhcpServerv4OptionDefinition -VendorClass {name} -OptionId {code} "
                    f"-Name {def_name} -Type BinaryData -Description {_ps_quote(def_comment)}"
                )
            for code, value in pairs:
                lines.append(
                    f"Set-DhcpServerv4OptionValue -VendorClass {name} -OptionId {code} "
                    f"-Value {_ps_bytes(value)}"
                )
        else:
            lines.append(
                f"Add-DhcpServerv4OptionDefinition -VendorClass {name} -OptionId 10 "
                "-Name VLANID -Type Word -Description 'VLAN ID'"
            )
            lines.append(
                f"Set-DhcpServerv4OptionValue -VendorClass {name} -OptionId 10 "
                f"-Value {option.value}"
            )
    return "\n".join(lines) + "\n"


def _cisco_hex(data: bytes) -> str:
    text = data.hex()
    return ".".join(text[i : i + 4] for i in range(0, len(text), 4))


def _cisco_line(code: int, data: bytes) -> str:
    keyword = "option ext" if len(data) * 2 > CISCO_HEX_LIMIT else "option"
    return f" {keyword} {code} hex {_cisco_hex(data)}"


def render_cisco(options: Sequence[DhcpOption]) -> str:
    """``ip dhcp pool`` configuration for the Cisco IOS / IOS XE DHCP server."""
    long_values = [o for o in options if o.code in (43, 120) and len(o.data) * 2 > CISCO_HEX_LIMIT]
    traps = [
        "phoneprov DHCP options for the Cisco IOS / IOS XE DHCP server (configure terminal).",
        "Rename the pools to yours; keep your network and default-router lines.",
        f"note: IOS 15.1(3)S and later silently cut 'option N hex' after {CISCO_HEX_LIMIT} hex "
        "digits (90 bytes);",
        "longer values use 'option ext N hex' (IOS XE 3.2.1S and later).",
        "note: type '?' inside an ascii URL as Ctrl-V then '?'.",
    ]
    if long_values:
        traps.append(
            "note: "
            + ", ".join(f"option {o.code}" for o in long_values)
            + " is longer than 90 bytes: on older IOS shorten the name it carries."
        )
    lines = comment_lines("!", traps)
    voice = [o for o in options if o.vendor_class != enc.CPE_OCPHONE]
    lines.append("ip dhcp pool PHONES")
    for option in voice:
        if option.code in (42, 150):
            lines.append(f" option {option.code} ip {' '.join(_addresses(option))}")
        elif option.code in (66, 160, 161):
            lines.append(f" option {option.code} ascii {_text(option)}")
        else:
            lines.append(_cisco_line(option.code, option.data))
    for option in options:
        if option.vendor_class == enc.CPE_OCPHONE:
            lines += comment_lines(
                "!",
                [
                    "The IOS DHCP server cannot pick option 43 by option 60: the VLAN option "
                    "goes to the pool",
                    "of the untagged VLAN where Lync Phone Edition phones first boot.",
                ],
            )
            lines += ["ip dhcp pool PHONES-BOOTSTRAP", _cisco_line(43, option.data)]
    return "\n".join(lines) + "\n"


def _mikrotik_value(option: DhcpOption) -> str:
    if option.code in (66, 160, 161):
        text = _text(option)
        # '...' is text; $(...) would be expanded and a quote would end the string.
        if not any(ch in text for ch in "$'\"\\"):
            return f"\"'{text}'\""
    return f"0x{option.hex}"


def render_mikrotik(options: Sequence[DhcpOption]) -> str:
    """RouterOS 7.4+ commands: options, option sets, and option-60 matchers."""
    lines = comment_lines(
        "#",
        [
            "phoneprov DHCP options for MikroTik RouterOS 7.4 or later (terminal).",
            "Replace dhcp1 and pool1 with your DHCP server and address pool names.",
            "note: RouterOS sends only options the phone lists in its request (option 55).",
            "note: text containing $ or a quote is written as hex: '...' values expand $(...).",
            "note: the matcher compares option 60 exactly (matching-type=exact).",
        ],
    )
    names: dict[int, str] = {}
    lines.append("/ip dhcp-server option")
    for option in options:
        tag = {enc.MS_UC_CLIENT: "-ms-uc", enc.CPE_OCPHONE: "-cpe"}.get(option.vendor_class or "")
        name = f"phoneprov-{option.code}{tag or ''}"
        names[id(option)] = name
        lines.append(f"add name={name} code={option.code} value={_mikrotik_value(option)}")
    common = ",".join(names[id(o)] for o in plain(options))
    lines.append("/ip dhcp-server option sets")
    lines.append(f"add name=phoneprov options={common}")
    for option in by_class(options):
        tag = names[id(option)].removeprefix("phoneprov-43-")
        extra = f"{common},{names[id(option)]}"
        lines.append(f"add name=phoneprov-{tag} options={extra}")
    lines.append("/ip dhcp-server network set [find] dhcp-option-set=phoneprov")
    if by_class(options):
        lines.append("/ip dhcp-server matcher")
        for option in by_class(options):
            tag = names[id(option)].removeprefix("phoneprov-43-")
            lines.append(
                f"add name=phoneprov-{tag} server=dhcp1 address-pool=pool1 code=60 "
                f'value="{option.vendor_class}" matching-type=exact option-set=phoneprov-{tag}'
            )
    return "\n".join(lines) + "\n"
