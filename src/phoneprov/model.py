"""Frozen value types shared by every layer. Valid from birth: parse, never patch."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from phoneprov.errors import InputError

_MAC_FORMS = (
    re.compile(r"^[0-9a-f]{12}$"),
    re.compile(r"^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$"),
    re.compile(r"^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$"),
)


@dataclass(frozen=True, order=True, slots=True)
class MacAddress:
    """A MAC address in canonical form: 12 lower-case hex digits (as phones name files)."""

    value: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{12}", self.value):
            raise InputError(
                f"{self.value!r} is not a canonical MAC address",
                "Use MacAddress.parse() for user input.",
            )

    @classmethod
    def parse(cls, text: str) -> MacAddress:
        """Accept ``00:04:F2:AB:CD:EF``, ``0004f2abcdef``, ``0004.f2ab.cdef``,
        ``00-04-f2-ab-cd-ef`` in any case; raise InputError otherwise."""
        lowered = text.strip().lower()
        if any(form.match(lowered) for form in _MAC_FORMS):
            return cls(re.sub(r"[^0-9a-f]", "", lowered))
        raise InputError(
            f"{text!r} is not a MAC address",
            "Write it as 0004f2abcdef, 00:04:f2:ab:cd:ef, 00-04-f2-ab-cd-ef or 0004.f2ab.cdef.",
        )

    @classmethod
    def maybe(cls, text: str) -> MacAddress | None:
        """Return the MAC if ``text`` is exactly 12 hex digits (file-name form), else None."""
        lowered = text.lower()
        if re.fullmatch(r"[0-9a-f]{12}", lowered):
            return cls(lowered)
        return None

    @property
    def is_wildcard(self) -> bool:
        """True for 000000000000, the master-file name, which is nobody's MAC."""
        return self.value == "000000000000"

    def __str__(self) -> str:
        return self.value


class Protocol(enum.StrEnum):
    HTTP = "http"
    HTTPS = "https"
    FTP = "ftp"
    FTPS = "ftps"
    TFTP = "tftp"


class CertKind(enum.StrEnum):
    """What a device certificate is, in the words of the phone's Status menu."""

    FACTORY = "factory"
    OURS = "ours"
    SELF_SIGNED = "self-signed"
    OTHER = "other"


class PrincipalKind(enum.StrEnum):
    DEVICE_CERT = "device-cert"  # mutual TLS; MAC from the certificate CN
    DEVICE_ACCOUNT = "device-account"  # per-device digest or FTP account (user = MAC)
    SITE_ACCOUNT = "site-account"  # per-site account for an administrator's tools
    BOOTSTRAP = "bootstrap"  # the phones' public default account, or TFTP
    ANONYMOUS = "anonymous"
    # Administrators on the admin listener, by role (policy.py's admin rows).
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


class DeviceStatus(enum.StrEnum):
    """Where a device stands with this site."""

    KNOWN = "known"  # in the inventory or approved
    DISCOVERED = "discovered"  # unknown, admitted by enrolment = "allow"
    PENDING = "pending"  # unknown, held by enrolment = "quarantine"
    DENIED = "denied"  # unknown, refused by enrolment = "deny"
    BLOCKED = "blocked"  # revoked or blocked by an administrator


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, as established by the transport."""

    kind: PrincipalKind
    protocol: Protocol
    name: str
    mac: MacAddress | None = None
    cert_kind: CertKind | None = None
    status: DeviceStatus | None = None

    @property
    def is_device(self) -> bool:
        return self.kind in (PrincipalKind.DEVICE_CERT, PrincipalKind.DEVICE_ACCOUNT)

    def label(self) -> str:
        """The identity as written in access and security logs (never a secret)."""
        if self.mac is not None:
            return f"{self.kind.value}:{self.mac}"
        return f"{self.kind.value}:{self.name}" if self.name else self.kind.value
