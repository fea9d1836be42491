"""DHCP option values as bytes: the encoders every renderer and the decoder agree on.

Bytes first, syntax second: each function returns the option *value* (no code,
no length byte) exactly as it must appear on the wire, and refuses input that a
phone or a DHCP server would mangle. Sources: RFC 2132 (options 2, 42, 43, 66),
RFC 3361 (option 120), RFC 1035 §3.1 (name wire format), Microsoft DHCPUtil
(option 43 for ``MS-UC-Client``), OCS 2007 Phone Edition notes (``CPE-OCPHONE``).
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Sequence
from urllib.parse import urlsplit

from phoneprov.errors import InputError

MS_UC_CLIENT = "MS-UC-Client"
CPE_OCPHONE = "CPE-OCPHONE"
# The OCS 2007 Phone Edition release notes spell the class this way; servers that
# compare option 60 case-sensitively must list both.
CPE_OCPHONE_ALT = "CPE-OCPhone"
DEFAULT_CERT_PROV_PATH = "/CertProv/CertProvisioningService.svc"
BOOT_SCHEMES = ("ftp", "tftp", "http", "https")

# RFC 2132 §2: one option carries at most 255 bytes; longer values need RFC 3396
# splitting, which none of the hex syntaxes of the target servers do for us.
MAX_OPTION = 255
# Real zones span UTC-12:00 (Baker Island) to UTC+14:00 (Kiribati).
MIN_TZ_OFFSET = -12 * 3600
MAX_TZ_OFFSET = 14 * 3600

_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?$")
# Characters RFC 3986 never allows raw and that break quoting in the server syntaxes.
_URL_FORBIDDEN = re.compile(r"[\s\"\\`<>{}|^]")


def _check_length(what: str, data: bytes, fix: str) -> bytes:
    if len(data) > MAX_OPTION:
        raise InputError(
            f"{what} is {len(data)} bytes; one DHCP option holds at most {MAX_OPTION}",
            fix,
        )
    return data


def time_offset(seconds: int) -> bytes:
    """Option 2 (RFC 2132 §3.4): signed 32-bit seconds east of UTC, two's complement.

    Raises InputError outside UTC-12:00..UTC+14:00.
    """
    if not MIN_TZ_OFFSET <= seconds <= MAX_TZ_OFFSET:
        raise InputError(
            f"time offset {seconds} s is outside {MIN_TZ_OFFSET}..{MAX_TZ_OFFSET} (UTC-12..UTC+14)",
            "Give seconds east of UTC, e.g. --tz-offset -18000 for UTC-05:00, "
            "or --timezone America/New_York.",
        )
    return struct.pack("!i", seconds)


def ipv4_address(text: str, flag: str) -> ipaddress.IPv4Address:
    """Parse one dotted IPv4 address; raise InputError naming ``flag`` otherwise."""
    try:
        return ipaddress.IPv4Address(text.strip())
    except ValueError:
        raise InputError(
            f"{flag} {text!r} is not an IPv4 address",
            f"Give {flag} a dotted address such as 192.0.2.10 (DHCPv4 options carry no names).",
        ) from None


def ipv4_list(addresses: Sequence[str], flag: str) -> bytes:
    """Options 42 and 150: n × 4-byte IPv4 addresses in the order given."""
    if not addresses:
        raise InputError(f"{flag} needs at least one address", f"Pass {flag} 192.0.2.10.")
    data = b"".join(ipv4_address(a, flag).packed for a in addresses)
    return _check_length(f"{flag} list", data, f"Give at most {MAX_OPTION // 4} addresses.")


def is_ipv4(text: str) -> bool:
    """True when ``text`` is a dotted IPv4 address."""
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def hostname(name: str, flag: str) -> str:
    """Validate a DNS name (RFC 1035 §2.3.4: labels 1-63 bytes, name at most 253).

    Returns the name without a trailing dot; raises InputError with the fix.
    """
    stripped = name.strip().rstrip(".")
    if not stripped:
        raise InputError(f"{flag} is empty", f"Give {flag} a name such as prov.example.com.")
    if len(stripped) > 253:
        raise InputError(
            f"{flag} {name!r} is {len(stripped)} characters; a DNS name has at most 253",
            "Use a shorter name.",
        )
    for label in stripped.split("."):
        size = len(label.encode("utf-8"))
        if size > 63:
            raise InputError(
                f"{flag} {name!r}: label {label!r} is {size} bytes; a DNS label has at most 63",
                "Shorten that part of the name (the text between two dots).",
            )
        if not _LABEL.match(label):
            raise InputError(
                f"{flag} {name!r}: label {label!r} is not a DNS label",
                "Use letters, digits and inner hyphens only; write IDN names in their "
                "xn-- (punycode) form.",
            )
    return stripped


def web_server_name(name: str) -> str:
    """The ``MS-UC-Client`` web server must be a name: the phone checks it against TLS."""
    if is_ipv4(name.strip()):
        raise InputError(
            f"--web-server {name!r} is an IP address; Lync/SfB phones need the FQDN",
            "Give the web server's FQDN (the name in its TLS certificate), "
            "e.g. --web-server lyncweb.example.com.",
        )
    return hostname(name, "--web-server")


def boot_url(url: str, flag: str = "--provisioning-url") -> str:
    """Validate a boot-server URL for options 66/160/161; returns it unchanged.

    The phone picks the protocol from the scheme; ``user:pass@`` and a path may
    follow (Polycom admin guides, boot server lookup). Raises InputError.
    """
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in BOOT_SCHEMES or not text.lower().startswith(
        parts.scheme.lower() + "://"
    ):
        raise InputError(
            f"{flag} {url!r} has no ftp://, tftp://, http:// or https:// scheme",
            f"Write the whole URL, e.g. {flag} http://prov.example.com:8080/ "
            "(the phone picks the protocol from the scheme).",
        )
    if not parts.hostname:
        raise InputError(
            f"{flag} {url!r} names no host",
            f"Write the host after the scheme, e.g. {parts.scheme}://prov.example.com/.",
        )
    if not text.isascii() or _URL_FORBIDDEN.search(text):
        raise InputError(
            f"{flag} {url!r} contains a space, double quote, backslash or a non-ASCII character",
            "Percent-encode those characters (RFC 3986), e.g. a space as %20.",
        )
    if not is_ipv4(parts.hostname):
        hostname(parts.hostname, flag)
    return text


def text_value(text: str, what: str) -> bytes:
    """Options 60, 66, 160, 161: NVT ASCII without a trailing NUL (RFC 2132 §2)."""
    if not text.isascii():
        raise InputError(f"{what} {text!r} is not ASCII", "Use ASCII characters only.")
    return _check_length(what, text.encode("ascii"), "Use a shorter value.")


def dns_wire(name: str) -> bytes:
    """RFC 1035 §3.1 uncompressed wire format: length-prefixed labels and a 00 byte."""
    out = bytearray()
    for label in name.rstrip(".").split("."):
        encoded = label.encode("ascii")
        out += bytes([len(encoded)]) + encoded
    return bytes(out + b"\x00")


def sip_servers(servers: Sequence[str]) -> bytes:
    """Option 120 (RFC 3361 §3): ``00`` + wire names, or ``01`` + IPv4 addresses.

    Names are written uncompressed (every client parses those). Raises
    InputError when names and addresses are mixed: RFC 3361 forbids it.
    """
    if not servers:
        raise InputError("--sip-server needs a value", "Pass --sip-server sip.example.com.")
    kinds = {is_ipv4(s.strip()) for s in servers}
    if len(kinds) > 1:
        raise InputError(
            f"--sip-server mixes names and IP addresses ({', '.join(servers)})",
            "RFC 3361 forbids mixing them in option 120: give only names "
            "(Lync/SfB phones need names for TLS) or only IPv4 addresses.",
        )
    if kinds == {True}:
        data = b"\x01" + ipv4_list(servers, "--sip-server")
    else:
        data = b"\x00" + b"".join(dns_wire(hostname(s, "--sip-server")) for s in servers)
    return _check_length("option 120", data, "Give fewer or shorter SIP server names.")


def tlv(code: int, data: bytes) -> bytes:
    """One encapsulated sub-option (RFC 2132 §8.4): code, length, value."""
    if len(data) > MAX_OPTION:
        raise InputError(
            f"sub-option {code} is {len(data)} bytes; a sub-option holds at most {MAX_OPTION}",
            "Use a shorter value.",
        )
    return bytes([code, len(data)]) + data


def ms_uc_client(fqdn: str, port: int = 443, path: str = DEFAULT_CERT_PROV_PATH) -> bytes:
    """Option 43 for vendor class ``MS-UC-Client``, byte for byte as DHCPUtil prints it.

    Sub-options 1..5 in order: UC identifier, URL scheme ``https``, web server
    FQDN, port as ASCII digits, relative path. No NUL, no END byte.
    """
    if not 1 <= port <= 65535:
        raise InputError(f"--web-port {port} is not a TCP port", "Use 1..65535 (usually 443).")
    if not path.startswith("/") or not path.isascii() or _URL_FORBIDDEN.search(path):
        raise InputError(
            f"--cert-prov-path {path!r} is not an absolute URL path",
            f"Start it with / and percent-encode spaces, e.g. {DEFAULT_CERT_PROV_PATH}.",
        )
    data = (
        tlv(1, MS_UC_CLIENT.encode("ascii"))
        + tlv(2, b"https")
        + tlv(3, web_server_name(fqdn).encode("ascii"))
        + tlv(4, str(port).encode("ascii"))
        + tlv(5, path.encode("ascii"))
    )
    return _check_length("option 43 (MS-UC-Client)", data, "Use a shorter web server name.")


def cpe_ocphone_vlan(vlan: int) -> bytes:
    """Option 43 for vendor class ``CPE-OCPHONE``: sub-option 10, VLAN ID as a 16-bit word."""
    if not 1 <= vlan <= 4094:
        raise InputError(
            f"--vlan {vlan} is outside 1..4094 (IEEE 802.1Q reserves 0 and 4095)",
            "Give the voice VLAN ID, e.g. --vlan 100.",
        )
    return tlv(10, struct.pack("!H", vlan))


def split_tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """Split encapsulated sub-options this module wrote back into (code, value) pairs."""
    pairs: list[tuple[int, bytes]] = []
    offset = 0
    while offset + 2 <= len(data):
        code, size = data[offset], data[offset + 1]
        pairs.append((code, data[offset + 2 : offset + 2 + size]))
        offset += 2 + size
    return pairs
