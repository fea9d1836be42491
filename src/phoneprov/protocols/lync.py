"""Lync / Skype for Business device update (``ucdevice.upx``): request, answer, versions.

The phone (CX700 / Office Communicator Phone Edition, Polycom phones in SfB
mode) POSTs an XML description of itself and gets back the version to run with
``BaseURL`` / ``ExternalBaseURL`` under ``/DeviceUpdateFiles_{Int|Ext}/<type>/
<vendor>/<model>/<revision>/<locale>/<version>/<module>`` (SPEC §9, research
§8). Microsoft never published the XML: the field *names* come from the Device
Update audit-log schema (device type, MAC, serial, vendor, model, revision,
locale, request modules ``Filename;Version;Timestamp``, user), the answer
fragments from the CX700 deployment guide. So the parser accepts any element
or attribute spelling of those fields, at any depth, in any namespace
(docs/decisions/0007-ucupdate-request-format.md).

Pure: bytes in, values out, bytes back.
"""

from __future__ import annotations

import enum
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from phoneprov.errors import InputError, PhoneprovError
from phoneprov.model import MacAddress
from phoneprov.protocols import safexml

MAX_REQUEST = 64 * 1024  # a real request is a few hundred bytes
_FIELD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._\-]{0,63}$")  # path segments we build URLs from
_VERSION_PART = re.compile(r"\d+|[^\d.]+")


class RequestError(PhoneprovError):
    """The POSTed body is not well-formed XML (answered 400 with the position)."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(
            message,
            "The device sent a body that is not XML; capture it (tcpdump) and compare it with "
            "docs/decisions/0007-ucupdate-request-format.md.",
        )
        self.line = line
        self.column = column


class Side(enum.StrEnum):
    """Which URL the phone used: the internal (HTTP) or external (HTTPS) handler."""

    INTERNAL = "Int"
    EXTERNAL = "Ext"


# Canonical field -> accepted spellings, compared after lower-casing and removing
# everything but letters and digits (so MAC_Address, mac-address, MACAddress match).
_ALIASES: dict[str, tuple[str, ...]] = {
    "device_type": ("devicetype", "deviceclass"),
    "mac": ("mac", "macaddress", "macaddr", "macid", "hardwareaddress"),
    "serial": ("serial", "serialnumber", "serialno", "sn"),
    "vendor": ("vendor", "manufacturer", "oem"),
    "model": ("model", "hardwaremodel", "modelname", "devicemodel"),
    "revision": ("revision", "hardwarerevision", "rev", "hwrevision", "hardwareversion"),
    "locale": ("locale", "language", "lang", "lcid"),
    "user": ("userid", "user", "sipuri", "userpuid", "signinname"),
}
_LOOKUP = {alias: field for field, aliases in _ALIASES.items() for alias in aliases}
_MODULE_TAGS = ("module", "requestmodule", "requestmodules", "file", "component", "image")
_MODULE_KEYS = {
    "name": ("name", "module", "modulename", "id"),
    "filename": ("filename", "file", "path"),
    "version": ("version", "ver", "currentversion", "fileversion"),
    "timestamp": ("timestamp", "time", "date", "filetimestamp"),
}


def _norm(name: str) -> str:
    """``{ns}MAC_Address`` -> ``macaddress``."""
    local = name.rsplit("}", 1)[-1].rsplit(":", 1)[-1]
    return re.sub(r"[^a-z0-9]", "", local.lower())


@dataclass(frozen=True, slots=True, order=True)
class PackageKey:
    """What a package is for, matched case-insensitively (``UCPhone/Polycom/CX700/A/ENU``)."""

    device_type: str
    vendor: str
    model: str
    revision: str
    locale: str

    def folded(self) -> tuple[str, ...]:
        return tuple(part.casefold() for part in self.parts())

    def parts(self) -> tuple[str, str, str, str, str]:
        return (self.device_type, self.vendor, self.model, self.revision, self.locale)

    def label(self) -> str:
        return "/".join(self.parts())

    def check(self) -> PackageKey:
        """Return self; InputError naming the field when a part cannot be a URL segment."""
        for name, value in zip(
            ("type", "vendor", "model", "revision", "locale"), self.parts(), strict=True
        ):
            if not _FIELD.fullmatch(value) or value.strip() != value or ".." in value:
                raise InputError(
                    f"--{name} {value!r} cannot be part of a device update URL",
                    "Use letters, digits, '.', '-' or '_' (1 to 64 characters), "
                    "e.g. --type UCPhone --vendor Polycom --model CX700 --revision A --locale ENU.",
                )
        return self


@dataclass(frozen=True, slots=True)
class ModuleReport:
    """One module the device runs, as it reported it."""

    name: str
    filename: str
    version: str
    timestamp: str = ""


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    """What a device said about itself; empty strings for what it did not say."""

    device_type: str = ""
    mac: MacAddress | None = None
    mac_text: str = ""
    serial: str = ""
    vendor: str = ""
    model: str = ""
    revision: str = ""
    locale: str = ""
    user: str = ""
    modules: tuple[ModuleReport, ...] = ()

    @property
    def key(self) -> PackageKey:
        return PackageKey(self.device_type, self.vendor, self.model, self.revision, self.locale)

    @property
    def complete(self) -> bool:
        """True when every part of the package key was given."""
        return all(self.key.parts())

    def reported(self, module: str) -> str:
        """The version the device reported for ``module`` (by name or file stem), or ''."""
        wanted = module.casefold()
        for report in self.modules:
            if wanted in (report.name.casefold(), module_name(report.filename).casefold()):
                return report.version
        return ""


@dataclass(frozen=True, slots=True)
class Offer:
    """One module in the answer: the version to run and where to fetch it ('' = stay)."""

    module: str
    filename: str
    version: str
    base_url: str = ""
    external_base_url: str = ""


def module_name(filename: str) -> str:
    """``CPE.nbt`` -> ``CPE`` (Lync names the module folder after the image's stem)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return base.split(".", 1)[0] if base else ""


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key for dotted versions: numbers compare as numbers (1.0.522.101 > 1.0.99)."""
    parts = _VERSION_PART.findall(version.strip())
    return tuple((0, int(p)) if p.isdigit() else (1, p.casefold()) for p in parts)


def compare_versions(a: str, b: str) -> int:
    """Return -1, 0 or 1 as ``a`` is older than, equal to or newer than ``b``.

    Missing trailing parts count as zero (``1.0`` == ``1.0.0``); text parts sort after numbers.
    """
    ka, kb = list(version_key(a)), list(version_key(b))
    while ka and ka[-1] == (0, 0):
        ka.pop()
    while kb and kb[-1] == (0, 0):
        kb.pop()
    return (ka > kb) - (ka < kb)


def _position(error: ET.ParseError) -> tuple[int, int]:
    line, column = getattr(error, "position", (0, 0))
    return int(line), int(column) + 1


def _text(element: ET.Element) -> str:
    return (element.text or "").strip()


def _module_from(element: ET.Element) -> ModuleReport | None:
    """A module from attributes, children, or the audit-log text ``Filename;Version;Timestamp``."""
    values: dict[str, str] = {}
    sources = list(element.attrib.items())
    sources += [(child.tag, _text(child)) for child in element]
    for raw_key, value in sources:
        key = _norm(raw_key)
        for canonical, spellings in _MODULE_KEYS.items():
            if key in spellings and value.strip() and canonical not in values:
                values[canonical] = value.strip()
    text = _text(element)
    if not values and ";" in text:
        parts = [p.strip() for p in text.split(";")]
        values = {"filename": parts[0], "version": parts[1] if len(parts) > 1 else ""}
        if len(parts) > 2:
            values["timestamp"] = parts[2]
    if not values.get("version"):
        return None
    filename = values.get("filename", "")
    name = values.get("name") or module_name(filename)
    if not name:
        return None
    return ModuleReport(name, filename, values["version"], values.get("timestamp", ""))


def parse_request(body: bytes) -> DeviceRequest:
    """Parse a ``ucdevice.upx`` POST body tolerantly.

    Field names match in any case, with or without ``_``/``-``, as elements or
    attributes, in any namespace and at any depth; the first value found wins.
    Unknown elements are ignored. Returns a DeviceRequest (fields the device did
    not send are empty). Raises RequestError (with line and column) when the body
    is not well-formed XML, is empty, or declares a DTD anywhere (no phone needs
    one, and refusing it closes entity-expansion attacks; see ``safexml``).
    """
    if not body.strip():
        raise RequestError("the request body is empty; expected XML", 1, 1)
    try:
        root = safexml.parse(body)
    except safexml.ForbiddenXml as error:
        line, column = _position(error)
        reason = str(error).split(":", 1)[0]
        raise RequestError(f"{reason} (line {line}, column {column})", line, column) from None
    except safexml.ParseError as error:
        line, column = _position(error)
        reason = str(error).split(":", 1)[0]
        raise RequestError(
            f"the body is not well-formed XML: {reason} at line {line}, column {column}",
            line,
            column,
        ) from None
    found: dict[str, str] = {}
    modules: list[ModuleReport] = []
    for element in root.iter():
        tag = _norm(element.tag)
        if tag in _MODULE_TAGS:
            module = _module_from(element)
            if module is not None:
                modules.append(module)
                continue
        for raw_key, value in element.attrib.items():
            field = _LOOKUP.get(_norm(raw_key))
            if field and value.strip():
                found.setdefault(field, value.strip())
        field = _LOOKUP.get(tag)
        if field and len(element) == 0 and _text(element):
            found.setdefault(field, _text(element))
    mac_text = found.get("mac", "")
    try:
        mac = MacAddress.parse(mac_text) if mac_text else None
    except InputError:
        mac = None
    return DeviceRequest(
        device_type=found.get("device_type", ""),
        mac=mac,
        mac_text=mac_text,
        serial=found.get("serial", ""),
        vendor=found.get("vendor", ""),
        model=found.get("model", ""),
        revision=found.get("revision", ""),
        locale=found.get("locale", ""),
        user=found.get("user", ""),
        modules=tuple(modules),
    )


def files_path(side: Side, key: PackageKey, version: str, module: str) -> str:
    """``/DeviceUpdateFiles_Int/UCPhone/Polycom/CX700/A/ENU/1.0.522.101/CPE`` (no trailing /)."""
    return "/".join((f"/DeviceUpdateFiles_{side.value}", *key.parts(), version, module))


def build_response(request: DeviceRequest, offers: Iterable[Offer]) -> bytes:
    """The answer document: the device's identity echoed, then one ``Module`` per offer.

    An offer with empty URLs means "stay on this version" (up to date); no offers
    at all is the empty answer Lync gives for a device it has no package for
    ("these values are blank if WMI settings were not populated", CX700 guide).
    ``Status`` is ``UpdateAvailable`` when any offer carries a URL, else ``UpToDate``.
    """
    offers = list(offers)
    status = "UpdateAvailable" if any(o.base_url for o in offers) else "UpToDate"
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<Response>"]
    for tag, value in (
        ("DeviceType", request.device_type),
        ("Vendor", request.vendor),
        ("Model", request.model),
        ("Revision", request.revision),
        ("Locale", request.locale),
    ):
        lines.append(f"  <{tag}>{escape(value)}</{tag}>")
    if request.mac is not None:
        lines.append(f"  <MACAddress>{request.mac.value}</MACAddress>")
    lines.append(f"  <Status>{status}</Status>")
    lines.append("  <Modules>")
    for offer in offers:
        lines.append(
            f"    <Module Name={quoteattr(offer.module)} "
            f"Filename={quoteattr(offer.filename)} Version={quoteattr(offer.version)}>"
        )
        lines.append(f"      <Version>{escape(offer.version)}</Version>")
        lines.append(f"      <BaseURL>{escape(offer.base_url)}</BaseURL>")
        lines.append(f"      <ExternalBaseURL>{escape(offer.external_base_url)}</ExternalBaseURL>")
        lines.append("    </Module>")
    lines.append("  </Modules>")
    lines.append("</Response>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def example_request(
    key: PackageKey, mac: MacAddress, version: str, *, filename: str = "CPE.nbt", serial: str = ""
) -> bytes:
    """A request in the shape docs/decisions/0008 assumes (for the simulator, tests and docs)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<Request>\n'
        f"  <DeviceType>{escape(key.device_type)}</DeviceType>\n"
        f"  <MACAddress>{mac.value}</MACAddress>\n"
        f"  <SerialNumber>{escape(serial or mac.value.upper())}</SerialNumber>\n"
        f"  <Vendor>{escape(key.vendor)}</Vendor>\n  <Model>{escape(key.model)}</Model>\n"
        f"  <Revision>{escape(key.revision)}</Revision>\n"
        f"  <Locale>{escape(key.locale)}</Locale>\n"
        f"  <Modules>\n    <Module Filename={quoteattr(filename)} Version={quoteattr(version)}"
        ' Timestamp="2010-01-01T00:00:00"/>\n  </Modules>\n</Request>\n'
    ).encode()


# Devices that cannot parse SHA-2 or RSA keys over 2048 bits (SPEC §7): the CX700 runs
# Office Communicator Phone Edition on Windows CE; its HTTP agent names the OS or the product.
LEGACY_CHAIN_MODELS = ("CX700",)
_LEGACY_AGENT = re.compile(
    r"CX700|Communicator\s*Phone\s*Edition|OCPhone|Windows\s*CE", re.IGNORECASE
)


def needs_legacy_chain(model: str = "", user_agent: str = "") -> bool:
    """True for a CX700 by model name (``CX700``, ``cx-700``) or by its User-Agent."""
    token = re.sub(r"[^A-Z0-9]", "", model.upper())
    if any(token.startswith(legacy) for legacy in LEGACY_CHAIN_MODELS):
        return True
    return bool(user_agent) and _LEGACY_AGENT.search(user_agent) is not None
