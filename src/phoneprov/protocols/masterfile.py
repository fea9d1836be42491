"""The master configuration file (``000000000000.cfg``) as each identity sees it.

Two phases see different master files (SPEC §3): over a public identity
(HTTP bootstrap account, default FTP account, TFTP) ``CONFIG_FILES`` names only
files that identity may read, so a phone in phase 1 never asks for secrets;
over mutual TLS it names the full set.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

from phoneprov.errors import InputError
from phoneprov.protocols import safexml


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def restrict_config_files(master: bytes, keep: Callable[[str], bool]) -> bytes:
    """Return ``master`` with every ``CONFIG_FILES*`` attribute reduced to the entries
    ``keep`` accepts (entries are file names, possibly with ``[PHONE_MAC_ADDRESS]``).

    Raises InputError when the master file is not well-formed XML.
    """
    try:
        root = safexml.parse(master)
    except ET.ParseError as error:
        raise InputError(
            f"the master file is not well-formed XML: {error}",
            "Fix 000000000000.cfg (the line and column are in the message).",
        ) from None
    changed = False
    for element in root.iter():
        if not element.tag.upper().startswith("APPLICATION"):
            continue
        for name, value in list(element.attrib.items()):
            if name.upper().startswith("CONFIG_FILES"):
                kept = [item for item in _split(value) if keep(item)]
                if kept != _split(value):
                    element.set(name, ", ".join(kept))
                    changed = True
    if not changed:
        return master
    return (
        b'<?xml version="1.0" standalone="yes"?>\n' + ET.tostring(root, encoding="unicode").encode()
    )
