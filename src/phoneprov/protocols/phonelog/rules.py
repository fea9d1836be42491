"""What a Polycom phone's log messages mean: recognisers, and the cause and fix per finding.

Pure: a message in, observations out. The phone writes one event per entry
(``MMDDhhmmss|module|level|marker|message``, SPEC §10); the message wording
comes from the firmware's own modules (``copy`` for transfers, ``cert``/``cfg``
for certificates pushed by configuration, libcurl's error strings for DNS,
connect and TLS failures). Each recogniser keys on the stable words of a
message, not on its exact punctuation, because wording shifts between
SIP 3.x, UCS 4/5 and the Updater.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["info", "warning", "error"]
SEVERITY_RANK: dict[Severity, int] = {"error": 0, "warning": 1, "info": 2}

# Platform slot limits for pushed device certificates (FP 37148; SPEC §7).
PLATFORM_KEY_LIMIT = 4096
PLATFORM_CERT_LIMIT = 8192


class FindingKind(enum.StrEnum):
    TLS_SERVER_VERIFIED = "tls-server-verified"
    MTLS_ESTABLISHED = "mtls-established"
    DOWNLOAD_OK = "download-ok"
    DOWNLOAD_FAILED = "download-failed"
    HTTP_401 = "http-401"
    HTTP_403 = "http-403"
    HTTP_404 = "http-404"
    DEVICE_KEY_TOO_LARGE = "device-key-too-large"
    DEVICE_CERT_TOO_LARGE = "device-cert-too-large"
    PKCS7_WRAPPER_MISSING = "pkcs7-wrapper-missing"
    DEVICE_CERT_INVALID = "device-cert-invalid"
    CUSTOM_CERT_SAVED = "custom-cert-saved"
    DEVICE_CERT_PRESENT = "device-cert-present"
    CLOCK_NOT_SET = "clock-not-set"
    SERVER_CERT_UNTRUSTED = "server-cert-untrusted"
    SERVER_NAME_MISMATCH = "server-name-mismatch"
    TLS_HANDSHAKE_FAILED = "tls-handshake-failed"
    DNS_FAILURE = "dns-failure"
    CONNECT_FAILURE = "connect-failure"
    FIRMWARE_LOOP = "firmware-loop"
    LOG_TRUNCATED = "log-truncated"


class Signal(enum.StrEnum):
    """Observations that are not findings themselves but feed one."""

    HTTP_STATUS = "http-status"  # becomes http-401/403/404 once its file is known
    SNTP_FAILED = "sntp-failed"  # becomes a clock-not-set warning
    FIRMWARE_UPDATE = "firmware-update"  # feeds firmware-loop
    REBOOT = "reboot"  # the next entry starts a new boot


Detail = dict[str, str | int | bool]


@dataclass(frozen=True, slots=True)
class Observation:
    """One recognised fact in one log entry."""

    kind: FindingKind | Signal
    detail: Detail = field(default_factory=dict)


# Cheap gate: an entry without any of these words cannot match a rule, so the
# per-rule regexes run only on the few entries that matter (large logs are
# mostly SIP and UI chatter). Written as a trie on the lower-cased text: the
# regex engine then rejects most positions on their first character, several
# times faster than a case-insensitive alternation of the words.
_GATE = re.compile(
    r"c(?:ert|onnect)|d(?:ownload|ns)|h(?:ttp|andshake)|key|ntp|pkcs|"
    r"r(?:esolv|eboot|estart|enegotiat|oute)|ssl|t(?:ls|imed out)|u(?:pgrad|nreachable)|"
    r"valid|40[134]"
)


_I = re.IGNORECASE
# A file as the phone names it: 'sip.ld', 'overrides/<mac>-phone.cfg', or a URL
# whose path (after scheme and host) is the file.
_QUOTED_FILE = re.compile(r"'(?:[a-z]+://[^/'\s]+/)?([^'\s]+)'", _I)
_URL_FILE = re.compile(r"\b(?:https?|ftps?|tftp)://[^/\s'\"]+/([^\s'\"?#]+)", _I)
_HOST = re.compile(
    r"(?P<host>\[[0-9a-f:]+\]|(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9-]*[a-z0-9])"
    r"(?=[\s'\":,;)]|$)",
    _I,
)
_PORT = re.compile(r"\bport\s+(?P<port>\d{1,5})\b", _I)
_SIZE = re.compile(r"\b(?P<size>\d{2,7})\s*bytes?\b", _I)
_LIMIT = re.compile(
    r"(?:max(?:imum)?|limit(?: is| of)?|at most|larger than|exceeds(?: the)?(?: limit of)?)"
    r"[\s:=(]*(?P<limit>\d{2,7})",
    _I,
)
_SLOT = re.compile(r"(?:customDeviceCert|slot\s*|platform\s*)(?P<slot>[12])\b", _I)
_CN = re.compile(r"(?:\bCN|common name)\s*[:=]?\s*'?(?P<cn>[^\s,;'()]+)", _I)
_FINGERPRINT = re.compile(
    r"(?P<algo>MD5|SHA-?1|SHA-?256)?\s*(?:fingerprint|thumbprint)\s*[:=]?\s*"
    r"(?P<fp>(?:[0-9a-f]{2}:?){16,32})",
    _I,
)
_LENGTH = re.compile(r"\b(?:length|len|size)\s*[:=]?\s*(?P<length>\d{2,6})", _I)

_DOWNLOAD = re.compile(
    r"Download of '(?P<file>[^']+)' (?P<result>succeeded|failed)(?: on attempt (?P<attempt>\d+))?",
    _I,
)
_HTTP_STATUS = re.compile(
    r"(?:HTTP/\d(?:\.\d)?\s+|returned error:?\s*|HTTP (?:status|error|response|code)\s*[:=]?\s*"
    r"|\bstatus\s*[:=]\s*|\berror\s+)(?P<status>40[134])(?:\.(?P<sub>\d+))?\b",
    _I,
)
_NOT_YET_VALID = re.compile(
    r"not yet valid|not valid yet|notBefore|clock (?:is )?not set|time (?:is )?not set", _I
)
_SNTP_FAILED = re.compile(
    r"\bS?NTP\b[^|]*?(?:fail|timed? ?out|no (?:response|reply|server)|unreachable)", _I
)
_PKCS7_MISSING = re.compile(
    r"PKCS\s?#?7[^|]*?(?:wrapper|header|footer|marker|tag|BEGIN)[^|]*?"
    r"(?:missing|not found|absent|expected)"
    r"|(?:missing|no|without)[^|]*?(?:BEGIN PKCS7|PKCS\s?#?7 (?:wrapper|header|markers?))"
    r"|not (?:in )?PKCS\s?#?7 (?:format|form)",
    _I,
)
_TOO_LARGE = re.compile(
    r"too (?:large|long|big)|exceeds|larger than|over the (?:size )?limit|size limit", _I
)
_KEY_WORD = re.compile(r"private\s*key|privateKey|\bkey\b", _I)
_CERT_WORD = re.compile(r"cert", _I)
_CERT_INVALID = re.compile(
    r"cert\w*[^|]*?(?:not proper|invalid|corrupt|could not be (?:parsed|loaded|decoded)|"
    r"does not match|mismatch|rejected|expired)"
    r"|(?:invalid|improper|bad)\s+(?:custom\s+|device\s+|platform\s+)*cert",
    _I,
)
_CERT_SAVED = re.compile(
    r"(?:custom|platform|device)[^|]*?cert\w*[^|]*?(?:saved|stored|written|installed successfully)",
    _I,
)
_CERT_PRESENT = re.compile(
    r"(?P<which>factory|built-?in|custom|platform\s*[12]?)[^|]*?(?:device\s+)?cert\w*[^|]*?"
    r"(?:present|found|loaded|installed)",
    _I,
)
_NAME_MISMATCH = re.compile(
    r"subject name[^|]*does not match|no alternative certificate subject name|"
    r"host ?name (?:mismatch|does not match|verification failed)|common name[^|]*does not match",
    _I,
)
_UNTRUSTED = re.compile(
    r"unable to get local issuer|self.signed certificate|unknown ca|untrusted|"
    r"server certificate[^|]*?(?:verif\w* failed|not trusted|rejected)|"
    r"certificate verify failed|unable to verify",
    _I,
)
_HANDSHAKE_FAILED = re.compile(
    r"(?:SSL|TLS)[^|]*?(?:handshake|connect)[^|]*?(?:fail|error|alert)|"
    r"alert (?:handshake failure|bad certificate|protocol version|certificate required)|"
    r"renegotiation[^|]*?(?:fail|refused|error)|wrong version number|no shared cipher",
    _I,
)
_MTLS_UP = re.compile(
    r"(?:mutual TLS|mTLS)[^|]*?\b(?:established|succeeded|complete[d]?|ok)\b|"
    r"renegotiation[^|]*?\b(?:succeeded|complete[d]?|ok|done)\b|"
    r"(?:client|device) certificate[^|]*?\b(?:sent|presented|accepted)\b",
    _I,
)
_TLS_UP = re.compile(
    r"SSL certificate verify ok|"
    r"server certificate[^|]*?\b(?:verified|verify ok|validated|accepted|trusted)\b|"
    r"(?:TLS|SSL) (?:connection|session|handshake)[^|]*?\b(?:established|complete[d]?|succeeded)\b",
    _I,
)
_DNS_FAILED = re.compile(
    r"could(?:n't| not) resolve|(?:DNS|name) (?:lookup|resolution|query)[^|]*?(?:fail|timed? ?out|"
    r"error)|unknown host|NXDOMAIN|host not found",
    _I,
)
_CONNECT_FAILED = re.compile(
    r"(?:could(?:n't| not)|failed to|unable to) connect|connection (?:refused|timed out|reset)|"
    r"no route to host|network is unreachable|host unreachable",
    _I,
)
_FIRMWARE_UPDATE = re.compile(
    r"(?:upgrad\w*|updat\w*|install\w*)[^|]*?(?:firmware|software|application|image)[^|]*?"
    r"(?:to|version)\s+(?:version\s+)?'?(?P<version>\d+(?:\.\d+){2,3}\w*)",
    _I,
)
_REBOOT = re.compile(
    r"\b(?:rebooting|restarting|reboot(?:ing)? (?:the )?(?:phone|device|system))\b", _I
)


def _file_in(text: str) -> str | None:
    """Return the file a message names: a quoted name or the last part of a URL."""
    match = _QUOTED_FILE.search(text) or _URL_FILE.search(text)
    return match.group(1) if match else None


def _put(detail: Detail, key: str, match: re.Match[str] | None, group: str) -> None:
    if match is not None and match.group(group):
        value = match.group(group)
        detail[key] = int(value) if value.isdigit() else value


def _cert_facts(text: str) -> Detail:
    detail: Detail = {}
    _put(detail, "cn", _CN.search(text), "cn")
    fingerprint = _FINGERPRINT.search(text)
    if fingerprint:
        detail["fingerprint"] = fingerprint.group("fp").rstrip(":").lower()
        if fingerprint.group("algo"):
            detail["algorithm"] = fingerprint.group("algo").upper().replace("-", "")
    _put(detail, "length", _LENGTH.search(text), "length")
    _put(detail, "slot", _SLOT.search(text), "slot")
    return detail


def _too_large(text: str) -> Observation | None:
    size_phrase = _TOO_LARGE.search(text)
    if size_phrase is None or not (_KEY_WORD.search(text) or _CERT_WORD.search(text)):
        return None
    # The item is the one named before the size phrase: "private key ... exceeds"
    # versus "certificate ... too large" (a key message may also mention its certificate).
    head = text[: size_phrase.start()]
    is_key = bool(_KEY_WORD.search(head)) or not _CERT_WORD.search(head)
    detail: Detail = {"item": "private key" if is_key else "certificate"}
    _put(detail, "size", _SIZE.search(text), "size")
    limit = _LIMIT.search(text)
    default = PLATFORM_KEY_LIMIT if is_key else PLATFORM_CERT_LIMIT
    detail["limit"] = int(limit.group("limit")) if limit else default
    _put(detail, "slot", _SLOT.search(text), "slot")
    kind = FindingKind.DEVICE_KEY_TOO_LARGE if is_key else FindingKind.DEVICE_CERT_TOO_LARGE
    return Observation(kind, detail)


def _certificate(text: str) -> Observation | None:
    """Certificate messages, most specific first: at most one per entry."""
    if _NOT_YET_VALID.search(text):
        return Observation(FindingKind.CLOCK_NOT_SET, {"reason": "certificate not yet valid"})
    if _PKCS7_MISSING.search(text):
        detail: Detail = {}
        _put(detail, "slot", _SLOT.search(text), "slot")
        return Observation(FindingKind.PKCS7_WRAPPER_MISSING, detail)
    too_large = _too_large(text)
    if too_large is not None:
        return too_large
    if _NAME_MISMATCH.search(text):
        return Observation(FindingKind.SERVER_NAME_MISMATCH, _host_detail(text))
    if _UNTRUSTED.search(text) and not re.search(r"device|custom|client", text, _I):
        return Observation(FindingKind.SERVER_CERT_UNTRUSTED, {"reason": _reason(text)})
    if _CERT_INVALID.search(text):
        return Observation(FindingKind.DEVICE_CERT_INVALID, {"reason": _reason(text)})
    if _CERT_SAVED.search(text):
        return Observation(FindingKind.CUSTOM_CERT_SAVED, _cert_facts(text))
    present = _CERT_PRESENT.search(text)
    if present and re.search(r"MD5|length|\bCN\b|common name|at boot", text, _I):
        which = present.group("which").lower()
        detail = _cert_facts(text)
        detail["which"] = "factory" if which in ("factory", "builtin", "built-in") else "custom"
        return Observation(FindingKind.DEVICE_CERT_PRESENT, detail)
    return None


def _transport(text: str) -> list[Observation]:
    """TLS, DNS and connection messages (libcurl wording).

    One message may say both that the server certificate was verified and that
    mutual TLS is up; it then yields both observations.
    """
    if _HANDSHAKE_FAILED.search(text):
        return [Observation(FindingKind.TLS_HANDSHAKE_FAILED, {"reason": _reason(text)})]
    found = []
    if _MTLS_UP.search(text):
        found.append(Observation(FindingKind.MTLS_ESTABLISHED, _host_detail(text)))
    if _TLS_UP.search(text):
        found.append(Observation(FindingKind.TLS_SERVER_VERIFIED, _host_detail(text)))
    if found:
        return found
    if _DNS_FAILED.search(text):
        return [Observation(FindingKind.DNS_FAILURE, _host_detail(text))]
    if _CONNECT_FAILED.search(text):
        detail = _host_detail(text)
        _put(detail, "port", _PORT.search(text), "port")
        return [Observation(FindingKind.CONNECT_FAILURE, detail)]
    return []


_FILE_SUFFIXES = (".cfg", ".ld", ".xml", ".log", ".ver", ".nbt", ".csr", ".p7b")


def _host_detail(text: str) -> Detail:
    """Return the server name or address a message names (not a file name)."""
    for match in _HOST.finditer(text):
        host = match.group("host")
        if not host.lower().endswith(_FILE_SUFFIXES):
            return {"host": host}
    return {}


def _reason(text: str) -> str:
    """The message itself, shortened, as the reason shown to the administrator."""
    flat = " ".join(text.split())
    return flat if len(flat) <= 160 else flat[:157] + "..."


def observe(message: str) -> list[Observation]:
    """Return what one (folded) log message says; an empty list for anything else."""
    if not _GATE.search(message.lower()):
        return []
    found: list[Observation] = []
    download = _DOWNLOAD.search(message)
    if download:
        ok = download.group("result").lower() == "succeeded"
        detail: Detail = {"file": download.group("file")}
        _put(detail, "attempt", download, "attempt")
        kind = FindingKind.DOWNLOAD_OK if ok else FindingKind.DOWNLOAD_FAILED
        found.append(Observation(kind, detail))
    status = _HTTP_STATUS.search(message)
    if status:
        detail = {"status": int(status.group("status"))}
        if status.group("sub"):
            detail["substatus"] = f"{status.group('status')}.{status.group('sub')}"
        named = download.group("file") if download else _file_in(message)
        if named:
            detail["file"] = named
        found.append(Observation(Signal.HTTP_STATUS, detail))
    certificate = _certificate(message)
    if certificate is not None:
        found.append(certificate)
    else:
        found.extend(_transport(message))
    if not found and _SNTP_FAILED.search(message):
        found.append(Observation(Signal.SNTP_FAILED))
    update = _FIRMWARE_UPDATE.search(message)
    if update:
        found.append(Observation(Signal.FIRMWARE_UPDATE, {"version": update.group("version")}))
    if _REBOOT.search(message):
        found.append(Observation(Signal.REBOOT))
    return found


_OPTIONAL_FILE = re.compile(
    r"^(?:[0-9a-f]{12}\.cfg|[0-9a-f]{12}-(?:phone|web|license)\.cfg|"
    r"[0-9a-f]{12}-(?:directory|calls)\.xml|[0-9a-f]{12}-(?:app|boot)\.log|"
    r"\d{4}-\d{5}-\d{3}\.sip\.(?:ld|ver)|.*\.(?:jpg|png|bmp|wav))$",
    _I,
)


def is_optional_file(name: str) -> bool:
    """True for files a phone asks for but boots fine without (SPEC §2.3-2.4).

    ``<mac>.cfg`` falls back to ``000000000000.cfg``, ``<part>.sip.ld`` to ``sip.ld``;
    the per-phone override, license, directory and call-list files, language
    dictionaries and the HEAD of a log upload are optional by design. Folders
    in front of the name (``overrides/``, ``contacts/``) do not matter.
    """
    lowered = name.lower()
    base = lowered.rsplit("/", 1)[-1]
    if _OPTIONAL_FILE.match(base):
        return not base.startswith("000000000000.")
    return (
        base in ("000000000000-license.cfg", "000000000000-directory.xml")
        or "languages/" in lowered
        or base.startswith("dictionary")
    )


def is_firmware_check(name: str) -> bool:
    """True for the firmware a phone asks for at every boot: ``sip.ld`` and ``sip.ver``.

    Without them the phone keeps the software it runs (SPEC §2.2), so their
    absence is worth a warning, not an error.
    """
    return name.lower().rsplit("/", 1)[-1] in ("sip.ld", "sip.ver")


def is_firmware_file(name: str) -> bool:
    """True for firmware images: ``sip.ld``, ``<part>.sip.ld``, ``*.ld``, CX700 ``CPE.nbt``."""
    return name.lower().endswith((".ld", ".nbt"))
