"""Config snippets that install a custom device certificate on a phone (SPEC §7).

Platform slots (flash, UCS 4.0+): ``device.sec.TLS.customDeviceCertX.set |
publicCert | privateKey`` for X = 1, 2; UCS 3.3.2 has one platform slot,
``device.sec.SSL.customDeviceCert.*``; application slots (RAM):
``sec.TLS.customDeviceCert.x`` and ``sec.TLS.customDeviceKey.x``. The
certificate must be PKCS#7 with its ``-----BEGIN PKCS7-----`` wrapper: without
it the phone logs that the wrapper is missing and ignores the certificate.
Platform slots take at most 8192 bytes of certificate and 4096 of key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from phoneprov.errors import InputError
from phoneprov.pki.formats import read_certificates
from phoneprov.pki.keys import load_private_pem
from phoneprov.pki.profiles import Slot, check_slot

UcsVersion = Literal["3.3", "4", "5"]
UCS_VERSIONS: tuple[str, ...] = get_args(UcsVersion)
PLATFORM_CERT_MAX = 8192
PLATFORM_KEY_MAX = 4096
# device.sec.TLS.profile.deviceCert1|2 accept only these values (SPEC §7).
PROFILE_VALUES = ("Builtin", "Platform1", "Platform2")

_PKCS7_BLOCK = re.compile(rb"-----BEGIN PKCS7-----.*?-----END PKCS7-----", re.DOTALL)
_KEY_BLOCK = re.compile(
    rb"-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----.*?-----END \1-----", re.DOTALL
)
_BARE_BASE64 = re.compile(rb"^[A-Za-z0-9+/=\s]+$")


@dataclass(frozen=True)
class DeviceCertConfig:
    """The parameters that install one certificate, in the order they are written."""

    slot: Slot
    ucs: UcsVersion
    parameters: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, str]:
        return dict(self.parameters)

    def xml(self) -> bytes:
        """Return a config file holding the parameters: ``device.*`` on ``<device>``,
        ``sec.*`` on ``<sec>``."""
        lines = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>', "<polycomConfig>"]
        for element in ("device", "sec"):
            attrs = [(n, v) for n, v in self.parameters if n.split(".", 1)[0] == element]
            if attrs:
                body = "\n    ".join(f'{n}="{_attr(v)}"' for n, v in attrs)
                lines.append(f"  <{element}\n    {body}/>")
        lines.append("</polycomConfig>")
        return ("\n".join(lines) + "\n").encode()


def _attr(value: str) -> str:
    # PEM newlines stay literal: that is how Polycom's own templates carry certificates,
    # and phones read them; only the XML metacharacters are escaped.
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def certificate_pkcs7(
    data: bytes, source: str = "the certificate"
) -> tuple[bytes, list[x509.Certificate]]:
    """Return (PKCS#7 PEM with its wrapper, certificates in it) for a PEM/DER/PKCS#7 input.

    Raises InputError for base64 without a ``-----BEGIN`` wrapper (the phone
    rejects it) and for input that is not a certificate at all.
    """
    if b"-----BEGIN" not in data and data.strip() and _BARE_BASE64.match(data):
        raise InputError(
            f"{source} is base64 without its -----BEGIN PKCS7----- wrapper; the phone "
            "rejects such a certificate (its log says the PKCS#7 wrapper is missing)",
            "Keep the -----BEGIN PKCS7----- and -----END PKCS7----- lines, or pass the "
            "PEM certificate and phoneprov wraps it.",
        )
    certs = read_certificates(data, source)
    match = _PKCS7_BLOCK.search(data)
    if match is not None:
        return match.group(0) + b"\n", certs
    return pkcs7.serialize_certificates(certs, serialization.Encoding.PEM), certs


def key_block(data: bytes, source: str = "the private key") -> bytes:
    """Return the PEM private key block of ``data``; raise InputError if there is none."""
    match = _KEY_BLOCK.search(data)
    if match is None:
        raise InputError(
            f"{source} holds no PEM private key (a '-----BEGIN ... PRIVATE KEY-----' block)",
            "Pass the unencrypted PEM key that belongs to the certificate.",
        )
    return match.group(0) + b"\n"


def _slot_names(slot: Slot, ucs: UcsVersion) -> tuple[str, str, str | None]:
    """Return (set-name or "", certificate parameter, key parameter) for a slot."""
    if slot.startswith("app"):
        index = slot[3:]
        return "", f"sec.TLS.customDeviceCert.{index}", f"sec.TLS.customDeviceKey.{index}"
    number = slot[-1]
    if ucs == "3.3":
        if number != "1":
            raise InputError(
                "UCS 3.3.2 has one platform certificate slot; platform2 needs UCS 4.0 or later",
                "Use --slot platform1 with --ucs 3.3.",
            )
        base = "device.sec.SSL.customDeviceCert"
    else:
        base = f"device.sec.TLS.customDeviceCert{number}"
    return f"{base}.set", f"{base}.publicCert", f"{base}.privateKey"


def device_cert_config(
    cert_data: bytes,
    key_data: bytes | None,
    slot: str,
    *,
    ucs: str = "5",
    profile: int | None = None,
) -> DeviceCertConfig:
    """Return the parameters installing a certificate (and key) in ``slot``.

    ``key_data`` None leaves the key out (a certificate for a phone-made CSR:
    the key never left the phone). ``profile`` 1 or 2 also selects the platform
    certificate in ``device.sec.TLS.profile.deviceCertN``. Raises InputError for
    a missing PKCS#7 wrapper, sizes over the platform limits, a key that does
    not match, or a slot the UCS version lacks.
    """
    checked = check_slot(slot)
    if ucs not in UCS_VERSIONS:
        raise InputError(f"UCS version {ucs!r} is not known", "Use --ucs 3.3, 4 or 5.")
    version: UcsVersion = ucs  # type: ignore[assignment]
    platform = checked.startswith("platform")
    p7, certs = certificate_pkcs7(cert_data)
    label = f"platform slot {checked[-1]}" if platform else f"application slot {checked[3:]}"
    if platform and len(p7) > PLATFORM_CERT_MAX:
        raise InputError(
            f"certificate for {label} is {len(p7)} bytes in PKCS#7 form; the phone accepts "
            f"at most {PLATFORM_CERT_MAX}",
            "Leave the intermediates out of the file, or use a smaller key (RSA-2048 or EC).",
        )
    set_name, cert_name, key_name = _slot_names(checked, version)
    params: list[tuple[str, str]] = []
    if set_name:
        params += [("device.set", "1"), (set_name, "1")]
    params.append((cert_name, p7.decode().strip()))
    if key_data is not None and key_name is not None:
        block = key_block(key_data)
        if platform and len(block) > PLATFORM_KEY_MAX:
            raise InputError(
                f"private key for {label} is {len(block)} bytes; the phone accepts at most "
                f"{PLATFORM_KEY_MAX}",
                "Use a 2048-bit RSA key or an application slot.",
            )
        key = load_private_pem(block, "the private key")
        if not any(c.public_key() == key.public_key() for c in certs):
            raise InputError(
                "the private key does not belong to the certificate",
                "Pass the key file made together with this certificate.",
            )
        params.append((key_name, block.decode().strip()))
    if profile is not None:
        params += _profile_params(checked, profile)
    return DeviceCertConfig(checked, version, tuple(params))


def _profile_params(slot: Slot, profile: int) -> list[tuple[str, str]]:
    if profile not in (1, 2):
        raise InputError(f"TLS profile {profile} does not exist", "Use --profile 1 or 2.")
    if not slot.startswith("platform"):
        raise InputError(
            f"device.sec.TLS.profile.deviceCert{profile} accepts only "
            f"{', '.join(PROFILE_VALUES)}; {slot} is an application slot",
            "Install the certificate in platform1 or platform2 to select it for a profile.",
        )
    name = f"device.sec.TLS.profile.deviceCert{profile}"
    return [(f"{name}.set", "1"), (name, f"Platform{slot[-1]}")]
