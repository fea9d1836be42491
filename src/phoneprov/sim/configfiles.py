"""What a phone reads out of the files it downloads: the master file and config files.

Pure: bytes in, values out. A phone only looks at attribute names (element
names are ignored, research/polycom_protocol.md §1.2/§1.4), processes
``CONFIG_FILES`` left to right and keeps the first value of each parameter.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from phoneprov.model import MacAddress
from phoneprov.protocols import safexml

MAC_VARIABLE = "[PHONE_MAC_ADDRESS]"
PART_VARIABLE = "[PHONE_PART_NUMBER]"

# device.prov.serverType values: names, or the numbers older firmware uses.
_SERVER_TYPES = {
    "0": "ftp",
    "1": "tftp",
    "2": "http",
    "3": "https",
    "4": "ftps",
    "ftp": "ftp",
    "tftp": "tftp",
    "http": "http",
    "https": "https",
    "ftps": "ftps",
}


class NotXml(ValueError):
    """The file is not well-formed XML (the phone logs it and carries on)."""


@dataclass(frozen=True, slots=True)
class MasterFile:
    """The parts of ``000000000000.cfg`` that drive a boot, already resolved for one model."""

    app_file_path: str = "sip.ld"
    config_files: tuple[str, ...] = ()
    directories: dict[str, str] = field(default_factory=dict)  # LOG_FILE_DIRECTORY -> "logs"

    def folder(self, attribute: str) -> str:
        """Return the folder a directory attribute names, as a path prefix ("" or "logs/")."""
        value = self.directories.get(attribute, "").strip().strip("/")
        return f"{value}/" if value else ""


def _root(data: bytes) -> ET.Element:
    try:
        return safexml.parse(data)
    except ET.ParseError as error:
        raise NotXml(str(error)) from None


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def substitute(name: str, mac: MacAddress, part_number: str) -> str:
    """Replace the phone's variables in a file name (lower-case MAC, as phones do)."""
    return name.replace(MAC_VARIABLE, mac.value).replace(PART_VARIABLE, part_number)


def parse_master(data: bytes, model: str) -> MasterFile:
    """Return the master file as ``model`` sees it: per-model attributes override the
    generic ones (``APP_FILE_PATH_VVX410``, ``CONFIG_FILES_VVX410``).

    Raises NotXml when the file is not well-formed XML.
    """
    root = _root(data)
    generic: dict[str, str] = {}
    specific: dict[str, str] = {}
    suffix = f"_{model}".upper()
    for element in root.iter():
        for name, value in element.attrib.items():
            upper = name.upper()
            if upper.endswith(suffix):
                specific.setdefault(upper[: -len(suffix)], value)
            elif not any(
                upper.startswith(f"{base}_") for base in ("APP_FILE_PATH", "CONFIG_FILES")
            ):
                generic.setdefault(upper, value)
    merged = {**generic, **{key: value for key, value in specific.items() if value}}
    directories = {key: value for key, value in merged.items() if key.endswith("_DIRECTORY")}
    return MasterFile(
        app_file_path=merged.get("APP_FILE_PATH", "").strip() or "sip.ld",
        config_files=_split(merged.get("CONFIG_FILES", "")),
        directories=directories,
    )


def parse_parameters(data: bytes) -> dict[str, str]:
    """Return every ``name="value"`` attribute of a config file, in document order.

    Raises NotXml when the file is not well-formed XML.
    """
    params: dict[str, str] = {}
    for element in _root(data).iter():
        for name, value in element.attrib.items():
            params.setdefault(name, value)
    return params


def merge_first_wins(into: dict[str, str], params: dict[str, str]) -> None:
    """Add ``params`` to ``into``; a parameter already set keeps its value (SIP2 A-2)."""
    for name, value in params.items():
        into.setdefault(name, value)


def provisioning_url(params: dict[str, str]) -> str | None:
    """Return the boot server URL the ``device.prov.*`` settings select, or None.

    ``device.*`` parameters apply only with ``device.set="1"`` and their own
    ``.set="1"`` twin (research/polycom_protocol.md §1.4). ``serverName`` may be
    a full URL or a host with an optional path; ``serverType`` then gives the scheme.
    """
    if params.get("device.set") != "1":
        return None

    def setting(name: str) -> str | None:
        key = f"device.prov.{name}"
        if params.get(f"{key}.set") != "1":
            return None
        value = params.get(key, "").strip()
        return value or None

    name = setting("serverName")
    if name is None:
        return None
    if "://" in name:
        url = name
    else:
        scheme = _SERVER_TYPES.get((setting("serverType") or "ftp").lower(), "ftp")
        url = f"{scheme}://{name}"
    parts = urlsplit(url)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return parts._replace(path=path, query="", fragment="").geturl()
