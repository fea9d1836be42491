"""Device-certificate messages, as Feature Profile 37148 quotes them.

"Device Certificates on Polycom Phones", Feature Profile 37148 (July 2012,
1725-47079-001 Rev. E), Troubleshooting, quotes the phone's own lines; each
recogniser below names the excerpt it reads (the excerpts are verbatim in
tests/data/phone-log-examples/):

- key over the platform limit (keytoolarge.log, a line copied without its header)::

    hwDescSecurityDeviceCredentialsStore: Could not store key for custom device key1,
    length 4677 is bigger than maximum 4096

- PKCS#7 wrapper missing (nopkcs7.log)::

    hwDescSecurityDeviceCredentialsStoreAscii: Could not decode cert chain, results 0

- a custom certificate saved (saved.log)::

    Saving new Custom platform device certificate 1
    New Certificate Common Name '0004F206075D'
    Fingerprint 'CA:70:79:D5:FA:B8:3E:6A:DF:A0:F6:80:3D:53:0B:FC'
    No previous certificate stored

- the certificates at boot (bootcerts.log)::

    Polycom device certificate length 802
    Polycom device certificate MD5 fingerprint: 70:8B:...
    Polycom device certificate common name "0004F206075D"
    Polycom device key length 636
    Custom platform device certificate 1 length 2021 ...
    Custom platform device certificate 2 is not available

- an invalid credential (invalid.log)::

    Device credential invalid: Cert is not proper in the certificate

Pure: one (folded) message in, observations out.
"""

from __future__ import annotations

import re

from phoneprov.protocols.phonelog.kinds import Detail, FindingKind, Observation, Signal

_I = re.IGNORECASE

# FP 37148, keytoolarge.log. Only the key form is quoted; the certificate form
# ("Could not store cert for custom device cert1, ...") is inferred from it.
_NOT_STORED = re.compile(
    r"Could not store (?P<item>key|cert\w*) for custom device (?:key|cert\w*)\s*(?P<slot>\d+),"
    r"\s*length (?P<size>\d+) is bigger than maximum (?P<limit>\d+)",
    _I,
)
# FP 37148, nopkcs7.log.
_CHAIN_UNDECODED = re.compile(
    r"Could not decode cert chain(?:,\s*results?\s*(?P<results>-?\d+))?", _I
)
# FP 37148, saved.log: three entries that belong together.
_SAVING = re.compile(r"Saving new Custom platform device certificate\s*(?P<slot>\d+)", _I)
_NEW_IDENTITY = re.compile(
    r"New Certificate Common Name\s*'(?P<cn>[^']*)'(?:\s*Fingerprint\s*'(?P<fp>[0-9A-F:]+)')?", _I
)
_NO_PREVIOUS = re.compile(r"No previous certificate stored", _I)
# FP 37148, bootcerts.log: one fact per entry, the value often wrapped onto the next line.
_AT_BOOT = re.compile(
    r"(?P<who>Polycom|Custom platform) device (?P<item>certificate|key)(?:\s+(?P<slot>\d+))?\s+"
    r"(?:length\s+(?P<length>\d+)"
    r"|(?P<algo>MD5|SHA-?1|SHA-?256)\s+fingerprint:?\s*(?P<fp>(?:[0-9A-F]{2}:){15,31}[0-9A-F]{2})"
    r"|common name\s*\"(?P<cn>[^\"]*)\""
    r"|(?P<absent>is not\s+available))",
    _I,
)
# FP 37148, invalid.log ("Failed to save certificate" on the phone's screen).
_INVALID = re.compile(r"Device credential invalid:\s*(?P<reason>.+)", _I | re.DOTALL)


def fingerprint(text: str) -> str:
    """A fingerprint as the phone and ``openssl x509 -fingerprint`` print it: ``CA:70:...``."""
    digits = re.sub(r"[^0-9A-Fa-f]", "", text).upper()
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))


def _slot(value: str | None) -> int | None:
    return int(value) if value else None


def certificate(text: str) -> list[Observation]:
    """The device-certificate facts one message states (empty for any other message)."""
    found: list[Observation] = []
    stored = _NOT_STORED.search(text)
    if stored:
        is_key = stored.group("item").lower() == "key"
        detail: Detail = {
            "item": "private key" if is_key else "certificate",
            "slot": int(stored.group("slot")),
            "size": int(stored.group("size")),
            "limit": int(stored.group("limit")),
        }
        kind = FindingKind.DEVICE_KEY_TOO_LARGE if is_key else FindingKind.DEVICE_CERT_TOO_LARGE
        found.append(Observation(kind, detail))
    chain = _CHAIN_UNDECODED.search(text)
    if chain:
        detail = {"results": int(chain.group("results"))} if chain.group("results") else {}
        found.append(Observation(FindingKind.PKCS7_WRAPPER_MISSING, detail))
    saving = _SAVING.search(text)
    if saving:
        found.append(Observation(Signal.CERT_SAVING, {"slot": int(saving.group("slot"))}))
    identity = _NEW_IDENTITY.search(text)
    if identity:
        detail = {"cn": identity.group("cn")}
        if identity.group("fp"):
            detail["fingerprint"] = fingerprint(identity.group("fp"))
        found.append(Observation(Signal.CERT_IDENTITY, detail))
    if _NO_PREVIOUS.search(text):
        found.append(Observation(Signal.CERT_NO_PREVIOUS, {"previous": "none"}))
    found.extend(_at_boot(text))
    invalid = _INVALID.search(text)
    if invalid:
        reason = " ".join(invalid.group("reason").split())
        found.append(Observation(FindingKind.DEVICE_CERT_INVALID, {"reason": reason}))
    return found


def _at_boot(text: str) -> list[Observation]:
    found: list[Observation] = []
    for match in _AT_BOOT.finditer(text):
        factory = match.group("who").lower() == "polycom"
        detail: Detail = {"which": "factory" if factory else "custom"}
        slot = _slot(match.group("slot"))
        if slot is not None:
            detail["slot"] = slot
        if match.group("absent"):
            found.append(Observation(FindingKind.DEVICE_CERT_ABSENT, detail))
            continue
        is_key = match.group("item").lower() == "key"
        if match.group("length"):
            detail["key_length" if is_key else "length"] = int(match.group("length"))
        elif match.group("fp"):
            detail["fingerprint"] = fingerprint(match.group("fp"))
            detail["algorithm"] = match.group("algo").upper().replace("-", "")
        else:
            detail["cn"] = match.group("cn")
        found.append(Observation(FindingKind.DEVICE_CERT_PRESENT, detail))
    return found
