"""What one phone would get, file by file, rendered as it would be served (``phoneprov render``).

``preview_files`` renders the master file and every file its CONFIG_FILES
names (or one file) for a MAC, with SIP passwords masked unless asked. Files
come one at a time, so a template error in a later file still leaves the
earlier ones shown.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.protocols import safexml
from phoneprov.protocols.polycom import MASTER_FILE
from phoneprov.provisioning.render import SiteRenderer
from phoneprov.store import open_store


@dataclass(frozen=True, slots=True)
class PreviewFile:
    """One file as the phone would get it; ``body`` is None for a file phoneprov does not render
    (served from the boot directory if it is there)."""

    name: str
    body: bytes | None = None
    layer: str = ""  # the template file used, as messages name it


def config_files(master: bytes, mac: MacAddress) -> list[str]:
    """The CONFIG_FILES a rendered master file lists, with ``[PHONE_MAC_ADDRESS]`` filled in."""
    root = safexml.parse(master)
    files = root.get("CONFIG_FILES", "")
    return [
        f.strip().replace("[PHONE_MAC_ADDRESS]", mac.value) for f in files.split(",") if f.strip()
    ]


def preview_files(
    settings: Settings,
    mac: MacAddress,
    name: str | None = None,
    *,
    bootstrap: bool = False,
    masked: bool = True,
) -> Generator[PreviewFile, None, None]:
    """Yield file ``name``, or the master file and every file it lists, rendered for ``mac``.

    ``bootstrap``: as served over HTTP/TFTP (phase 1) instead of over mutual TLS.
    Raises InputError when ``name`` is a file phoneprov does not render for
    ``mac``, and RenderError when a template fails. The store stays open until
    the iterator is exhausted or closed.
    """
    with closing(open_store(settings)) as store:
        renderer = SiteRenderer(settings, store)
        names = [name] if name else [MASTER_FILE]
        if not name:
            master, _ = renderer.render(MASTER_FILE, mac, public=bootstrap)
            names += config_files(master, mac)
        for current in names:
            if renderer.template_for(current, renderer.facts(mac)) is None:
                if name:
                    raise InputError(
                        f"phoneprov does not render {current} for {mac}",
                        "A file of that name in the boot directory is served "
                        "as is; per-device files need the phone in the inventory.",
                    )
                yield PreviewFile(current)
                continue
            body, layer = renderer.render(current, mac, public=bootstrap, masked=masked)
            yield PreviewFile(current, body, layer.shown)
