"""What a Polycom phone's log messages mean: recognisers for transfers, TLS and uploads.

Pure: a message in, observations out. Sources, per recogniser:

- Transfers and the TLS trace: Technical Bulletin 52609 ("Mutual Transport Layer
  Security Provisioning Using Microsoft IIS 6.0", Troubleshooting) quotes a
  phone's log of a mutual-TLS download: the ``copy`` module's ``Download of
  '0004f22434da.cfg' succeeded on attempt 1 (addr 1 of 1)`` and the ``curl``
  module's libcurl verbose trace (``Connected to <host> (<ip>) port 443 (#0)``,
  ``SSLv3, TLS handshake, Hello request (0):``, ``... Request CERT (13):``,
  ``... CERT verify (15):``, ``SSL certificate verify ok.``). The failure forms
  (``Download of 'x' failed on attempt N``) are inferred from the success form.
- Errors: libcurl's own error strings, which the ``curl`` module logs as they
  are (``The requested URL returned error: 404``, ``Couldn't resolve host``,
  ``Failed to connect to``, ``SSL certificate problem: ...``). That the phone
  logs them verbatim is inferred from the trace above.
- Device certificates: Feature Profile 37148, see ``certs``.
- Log uploads: the phone appends its log (HEAD for the server copy's size, then
  a PUT with ``Content-Range``). Only paraphrases of its failure messages are
  known (an upload FIFO error with a result code; a HEAD answer without
  Content-Length, so the phone cannot set Content-Range): those recognisers key
  on the words the paraphrases name, see ``_upload``.
- ``Mutual TLS established with <host>`` / ``TLS connection established with
  <host>`` / ``Upload of 'x' failed``: the wording of phoneprov's own simulator
  (sim/trace.py), not a phone's.
- SNTP failures, firmware updates and reboots: inferred wording, keyed on
  stable words only.
"""

from __future__ import annotations

import re

from phoneprov.protocols.phonelog.certs import certificate
from phoneprov.protocols.phonelog.kinds import (
    SEVERITY_RANK,
    Detail,
    FindingKind,
    Observation,
    Severity,
    Signal,
)

__all__ = [
    "SEVERITY_RANK",
    "Detail",
    "FindingKind",
    "Observation",
    "Severity",
    "Signal",
    "is_firmware_check",
    "is_firmware_file",
    "is_optional_file",
    "observe",
]

# Cheap gate: an entry without any of these words cannot match a rule, so the
# per-rule regexes run only on the few entries that matter (large logs are
# mostly SIP and UI chatter). Written as a trie on the lower-cased text: the
# regex engine then rejects most positions on their first character.
_GATE = re.compile(
    r"c(?:ert|on(?:nect|tent-length)|redential)|d(?:ownload|ns)|fifo|h(?:ttp|andshake)|key|"
    r"ntp|pkcs|r(?:esolv|eboot|estart|enegotiat|oute)|ssl|t(?:ls|imed out)|"
    r"u(?:pgrad|pload|nreachable)|valid|40[134]"
)

_I = re.IGNORECASE
_QUOTED_FILE = re.compile(r"'(?:[a-z]+://[^/']+/)?([^'\s]+)'", _I)
_URL_FILE = re.compile(r"\b(?:https?|ftps?|tftp)://[^/\s'\"]+/([^\s'\"?#]+)", _I)
_HOST = re.compile(
    r"(?P<host>\[[0-9a-f:]+\]|(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9-]*[a-z0-9])"
    r"(?=[\s'\":,;)]|$)",
    _I,
)
_PORT = re.compile(r"\bport\s+(?P<port>\d{1,5})\b", _I)

# TB 52609: "Download of '0004f22434da.cfg' succeeded on attempt 1 (addr 1 of 1)".
_TRANSFER = re.compile(
    r"(?P<verb>Download|Upload) of '(?P<file>[^']+)' (?P<result>succeeded|failed)"
    r"(?: on attempt (?P<attempt>\d+))?(?: \(addr (?P<addr>\d+ of \d+)\))?",
    _I,
)
_HTTP_STATUS = re.compile(
    r"(?:HTTP/\d(?:\.\d)?\s+|returned error:?\s*|HTTP (?:status|error|response|code)\s*[:=]?\s*"
    r"|\bstatus\s*[:=]\s*|\berror\s+)(?P<status>40[134])(?:\.(?P<sub>\d+))?\b",
    _I,
)
# TB 52609's trace: libcurl's verbose lines.
_CONNECTED = re.compile(
    r"^\s*Connected to (?P<host>.+?) \((?P<ip>[^)]*)\) port (?P<port>\d+)", _I | re.MULTILINE
)
_STEP = re.compile(
    r"(?:SSLv[23]|TLSv1(?:\.\d)?)(?: \((?:IN|OUT)\))?, TLS handshake, "
    r"(?P<step>[A-Za-z ]+?) \(\d+\):",
    _I,
)
_CIPHER = re.compile(r"SSL connection using (?P<cipher>\S+(?: / \S+)?)", _I)
_VERIFY_OK = re.compile(r"SSL certificate verify ok", _I)
# phoneprov's simulator (sim/trace.py).
_SIM_MTLS = re.compile(r"Mutual TLS established with (?P<host>[^\s:]+)", _I)
_SIM_TLS = re.compile(r"TLS connection established with (?P<host>[^\s:]+)", _I)

_NOT_YET_VALID = re.compile(r"certificate is not yet valid|not yet valid", _I)
_SNTP_FAILED = re.compile(
    r"\bS?NTP\b[^|]*?(?:fail|timed? ?out|no (?:response|reply|server)|unreachable)", _I
)
_NAME_MISMATCH = re.compile(
    r"subject name[^|]*does not match|no alternative certificate subject name|"
    r"common name[^|]*does not match",
    _I,
)
_UNTRUSTED = re.compile(
    r"SSL certificate problem|unable to get local issuer|self.signed certificate|unknown ca|"
    r"certificate verify failed",
    _I,
)
_HANDSHAKE_FAILED = re.compile(
    r"(?:SSL|TLS)[^|]*?(?:handshake|connect)[^|]*?(?:fail|error|alert)|"
    r"alert (?:handshake failure|bad certificate|protocol version|certificate required)|"
    r"wrong version number|no shared cipher",
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
# Log uploads: paraphrases only (see the module docstring).
_FIFO_ERROR = re.compile(
    r"upload\w*[^\n]*?FIFO[^\n]*?(?:error|fail\w*)|FIFO[^\n]*?upload\w*[^\n]*?(?:error|fail\w*)",
    _I,
)
_RESULT_CODE = re.compile(r"(?:result|code|rc|error)\s*(?:code)?\s*[:=]?\s*(?P<code>-?\d+)", _I)
_NO_LENGTH = re.compile(
    r"(?:no|without|missing|not (?:get|find|receive)|did not return)[^\n]*?Content-Length"
    r"|Content-Length[^\n]*?(?:missing|not (?:found|present|returned|set)|absent)"
    r"|(?:cannot|can't|could not|unable to) (?:set|build|add)[^\n]*?Content-Range",
    _I,
)


def _file_in(text: str) -> str | None:
    """Return the file a message names: a quoted name or the last part of a URL."""
    match = _QUOTED_FILE.search(text) or _URL_FILE.search(text)
    return match.group(1) if match else None


def _host_detail(text: str) -> Detail:
    """Return the server name or address a message names (not a file name)."""
    for match in _HOST.finditer(text):
        host = match.group("host")
        if not host.lower().endswith(_FILE_SUFFIXES):
            return {"host": host}
    return {}


_FILE_SUFFIXES = (".cfg", ".ld", ".xml", ".log", ".ver", ".nbt", ".csr", ".p7b")


def _reason(text: str) -> str:
    """The message itself, shortened, as the reason shown to the administrator."""
    flat = " ".join(text.split())
    return flat if len(flat) <= 160 else flat[:157] + "..."


def _transfer(text: str) -> list[Observation]:
    found: list[Observation] = []
    transfer = _TRANSFER.search(text)
    if transfer:
        detail: Detail = {"file": transfer.group("file")}
        if transfer.group("attempt"):
            detail["attempt"] = int(transfer.group("attempt"))
        if transfer.group("addr"):
            detail["address"] = transfer.group("addr")
        ok = transfer.group("result").lower() == "succeeded"
        if transfer.group("verb").lower() == "download":
            kind = FindingKind.DOWNLOAD_OK if ok else FindingKind.DOWNLOAD_FAILED
            found.append(Observation(kind, detail))
        elif not ok:
            status = _HTTP_STATUS.search(text)
            if status:
                detail["status"] = int(status.group("status"))
            found.append(Observation(FindingKind.UPLOAD_FAILED, detail))
            return found
    status = _HTTP_STATUS.search(text)
    if status:
        detail = {"status": int(status.group("status"))}
        if status.group("sub"):
            detail["substatus"] = f"{status.group('status')}.{status.group('sub')}"
        named = transfer.group("file") if transfer else _file_in(text)
        if named:
            detail["file"] = named
        found.append(Observation(Signal.HTTP_STATUS, detail))
    return found


def _trace(text: str) -> list[Observation]:
    """One line of libcurl's verbose trace (TB 52609), or the simulator's summary line."""
    connected = _CONNECTED.search(text)
    if connected:
        detail: Detail = {"host": connected.group("host"), "port": int(connected.group("port"))}
        return [Observation(Signal.CONNECTION, detail)]
    step = _STEP.search(text)
    if step:
        return [Observation(Signal.HANDSHAKE, {"step": step.group("step").lower()})]
    cipher = _CIPHER.search(text)
    if cipher:
        return [Observation(Signal.CIPHER, {"cipher": cipher.group("cipher")})]
    if _VERIFY_OK.search(text):
        return [Observation(FindingKind.TLS_SERVER_VERIFIED)]
    mutual = _SIM_MTLS.search(text)
    if mutual:
        host: Detail = {"host": mutual.group("host")}
        return [
            Observation(FindingKind.MTLS_ESTABLISHED, host),
            Observation(FindingKind.TLS_SERVER_VERIFIED, host),
        ]
    one_way = _SIM_TLS.search(text)
    if one_way:
        return [Observation(FindingKind.TLS_SERVER_VERIFIED, {"host": one_way.group("host")})]
    return []


def _failure(text: str) -> list[Observation]:
    """libcurl's error strings: clock, trust, name, handshake, DNS, connect; at most one."""
    if _NOT_YET_VALID.search(text):
        return [Observation(FindingKind.CLOCK_NOT_SET, {"reason": "certificate not yet valid"})]
    if _NAME_MISMATCH.search(text):
        return [Observation(FindingKind.SERVER_NAME_MISMATCH, _host_detail(text))]
    if _UNTRUSTED.search(text):
        return [Observation(FindingKind.SERVER_CERT_UNTRUSTED, {"reason": _reason(text)})]
    if _HANDSHAKE_FAILED.search(text):
        return [Observation(FindingKind.TLS_HANDSHAKE_FAILED, {"reason": _reason(text)})]
    if _DNS_FAILED.search(text):
        return [Observation(FindingKind.DNS_FAILURE, _host_detail(text))]
    if _CONNECT_FAILED.search(text):
        detail = _host_detail(text)
        port = _PORT.search(text)
        if port:
            detail["port"] = int(port.group("port"))
        return [Observation(FindingKind.CONNECT_FAILURE, detail)]
    return []


def _upload(text: str) -> list[Observation]:
    """Log-upload failures (paraphrased wording, see the module docstring)."""
    if _FIFO_ERROR.search(text):
        detail: Detail = {"reason": _reason(text)}
        code = _RESULT_CODE.search(text)
        if code:
            detail["code"] = int(code.group("code"))
        named = _file_in(text)
        if named:
            detail["file"] = named
        return [Observation(FindingKind.UPLOAD_FAILED, detail)]
    if _NO_LENGTH.search(text):
        detail = {"reason": _reason(text)}
        named = _file_in(text)
        if named:
            detail["file"] = named
        return [Observation(FindingKind.LOG_APPEND_UNSUPPORTED, detail)]
    return []


def observe(message: str) -> list[Observation]:
    """Return what one (folded) log message says; an empty list for anything else."""
    if not _GATE.search(message.lower()):
        return []
    found = _transfer(message)
    found.extend(certificate(message))
    found.extend(_trace(message))
    if not found:
        found.extend(_upload(message) or _failure(message))
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
    dictionaries, background images and ringtones, and the HEAD of a log
    upload are optional by design. Folders in front of the name do not matter.
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
