"""Certificate profiles: what goes into a root, server or device certificate.

Pure: names and lifetimes are validated here, before any key is made, and the
result is a frozen :class:`CertSpec` that either signer (``cryptography`` for the
modern profile, the ``openssl`` command for the SHA-1 legacy profile) turns into
a certificate. No files, clock or randomness: ``not_before`` and the serial are
passed in.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from phoneprov.errors import InputError
from phoneprov.model import MacAddress

KeyType = Literal["ec-p256", "rsa-2048", "rsa-3072", "rsa-4096"]
HashName = Literal["sha256", "sha384"]
ChainProfile = Literal["modern", "legacy"]
KEY_TYPES: tuple[str, ...] = get_args(KeyType)
# RFC 5280 ub-common-name: a CN longer than 64 characters is not a valid certificate.
MAX_CN = 64
# Phones and old TLS stacks mishandle serials over 20 octets (RFC 5280 §4.1.2.2).
MAX_SERIAL_BITS = 159
# A leaf may not outlive 825 days in browsers; phones do not care, the CA does.
MAX_DAYS = 36500
# Phones often boot before NTP answers; backdating covers a clock a little behind.
BACKDATE = timedelta(hours=1)

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class Usage(enum.StrEnum):
    """The role a certificate plays, which sets its extensions."""

    ROOT = "root"
    SERVER = "server"
    DEVICE = "device"


@dataclass(frozen=True)
class SubjectAltNames:
    """DNS names and IP literals for a server certificate's SAN, in the given order."""

    dns: tuple[str, ...] = ()
    ips: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()


@dataclass(frozen=True)
class CertSpec:
    """Everything a signer needs except the keys: valid from birth."""

    usage: Usage
    common_name: str
    serial: int
    not_before: datetime
    not_after: datetime
    hash_name: str = "sha256"
    sans: SubjectAltNames = SubjectAltNames()
    rsa_key: bool = False  # RSA leaves also need keyEncipherment for TLS 1.2 RSA key exchange

    def __post_init__(self) -> None:
        if not self.common_name or len(self.common_name) > MAX_CN:
            raise InputError(
                f"common name {self.common_name!r} is {len(self.common_name)} characters; "
                f"a certificate allows 1 to {MAX_CN}",
                "Put a shorter name first; every name still goes into the SAN.",
            )
        if not 0 < self.serial < 2**MAX_SERIAL_BITS:
            raise InputError(f"serial {self.serial} is outside 1..2^{MAX_SERIAL_BITS}-1")
        if self.not_after <= self.not_before:
            raise InputError("certificate lifetime must be at least one day")


def check_days(days: int) -> int:
    """Return ``days`` if it is a usable lifetime; raise InputError otherwise."""
    if not 1 <= days <= MAX_DAYS:
        raise InputError(
            f"--days {days} is out of range", f"Use a lifetime from 1 to {MAX_DAYS} days."
        )
    return days


def check_key_type(key: str) -> KeyType:
    """Return ``key`` as a KeyType; raise InputError naming the choices otherwise."""
    if key not in KEY_TYPES:
        raise InputError(
            f"key type {key!r} is not supported", f"Use one of: {', '.join(KEY_TYPES)}."
        )
    return key  # type: ignore[return-value]


def validity(now: datetime, days: int) -> tuple[datetime, datetime]:
    """Return (not_before, not_after) for a certificate made at ``now`` living ``days``."""
    check_days(days)
    start = now.replace(microsecond=0) - BACKDATE
    return start, now.replace(microsecond=0) + timedelta(days=days)


def parse_server_name(
    name: str,
) -> str | ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Return a DNS name (lower-case, no trailing dot) or an IP address.

    Raises InputError naming the reason for wildcards, empty names, labels that
    are not letters/digits/hyphens, or numbers that are not an IP address.
    """
    text = name.strip()
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    dns = text.rstrip(".").lower()
    if not dns:
        raise InputError(f"server name {name!r} is empty", "Pass --fqdn NAME or --ip ADDRESS.")
    if "*" in dns:
        raise InputError(
            f"server name {name!r} is a wildcard; phones compare the provisioning host name "
            "exactly and some firmware rejects wildcard certificates",
            "Name each server explicitly: --fqdn prov.example.com --fqdn prov2.example.com.",
        )
    if len(dns) > 253:
        raise InputError(f"server name {name!r} is {len(dns)} characters; DNS allows 253")
    labels = dns.split(".")
    for label in labels:
        if not _LABEL.match(label):
            raise InputError(
                f"server name {name!r} is not a DNS name: label {label!r} must be 1-63 "
                "letters, digits or hyphens, not starting or ending with a hyphen",
                "Use the host name the phones resolve (e.g. prov.example.com) or --ip ADDRESS.",
            )
    if all(label.isdigit() for label in labels):
        raise InputError(
            f"server name {name!r} is neither an IP address nor a DNS name",
            "Write an IPv4 address as four numbers 0-255 (e.g. 192.0.2.10).",
        )
    return dns


def server_names(names: list[str] | tuple[str, ...]) -> tuple[str, SubjectAltNames]:
    """Validate server names; return (common name, SAN) with duplicates removed.

    The first name becomes the CN, as IIS-era phones read the CN; every name also
    goes into the SAN (RFC 6125 clients read only the SAN). Raises InputError.
    """
    if not names:
        raise InputError(
            "no server name given", "Pass --fqdn NAME (and --ip ADDRESS) at least once."
        )
    dns: list[str] = []
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for name in names:
        parsed = parse_server_name(name)
        if isinstance(parsed, str):
            if parsed not in dns:
                dns.append(parsed)
        elif parsed not in ips:
            ips.append(parsed)
    first = parse_server_name(names[0])
    return str(first), SubjectAltNames(tuple(dns), tuple(ips))


def device_common_name(mac: MacAddress) -> str:
    """Return the CN of a device certificate: 12 lower-case hex digits, as in factory certs."""
    return mac.value


Slot = Literal[
    "platform1", "platform2", "app1", "app2", "app3", "app4", "app5", "app6"
]  # fmt: skip
SLOTS: tuple[str, ...] = get_args(Slot)


def check_slot(slot: str) -> Slot:
    """Return ``slot`` if it names a device certificate slot; raise InputError otherwise.

    Two platform slots (flash; also for 802.1X, provisioning, syslog) and six
    application slots (RAM) exist on the phone (SPEC §7).
    """
    if slot not in SLOTS:
        raise InputError(
            f"certificate slot {slot!r} does not exist on the phone",
            f"Use one of: {', '.join(SLOTS)}.",
        )
    return slot  # type: ignore[return-value]
