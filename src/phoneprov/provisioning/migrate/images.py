"""Firmware in an old boot directory: images and the version ``sip.ver`` gives them.

Phones ask for ``<part>.sip.ld``, then ``sip.ld``, in the folder of the master
file's ``APP_FILE_PATH``, and read ``sip.ver`` beside them (SPEC §2,
research §2.3). Each folder holding such images is one version: its
``sip.ver`` names it. Every image goes to the catalog; the version in the
folder a group's phones were sent to is assigned to that group, so they are
offered what they ran. Other ``.ld`` files (a SoundPoint ``bootrom.ld``) are
not application images and are kept as plain files.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from phoneprov.errors import InputError
from phoneprov.provisioning.firmware import check_version
from phoneprov.provisioning.migrate.report import Item, Status
from phoneprov.provisioning.migrate.scan import SourceDir

_IMAGE = re.compile(r"(?:(\d{4}-\d{5}-\d{3})\.)?sip\.ld", re.I)
VERSION_FILE = "sip.ver"


@dataclass(frozen=True, slots=True)
class Image:
    file: str  # relative to the old directory
    version: str
    part: str


@dataclass(frozen=True, slots=True)
class FirmwarePlan:
    images: tuple[Image, ...]
    assign: dict[str, str]  # group -> version
    consumed: frozenset[str]  # files the catalog takes (images, sip.ver)
    items: tuple[Item, ...]


def _version(source: SourceDir, rel: str) -> str | Item:
    with source.files[rel].open("rb") as version_file:
        text = version_file.read(256).decode("ascii", "replace")  # one version line
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    try:
        return check_version(first)
    except InputError as error:
        return Item(Status.NOT_UNDERSTOOD, rel, 1, f"{error}. {error.hint}")


def plan_firmware(source: SourceDir, app_paths: Mapping[str, set[str]]) -> FirmwarePlan:
    """Images by folder, and the version each group gets.

    ``app_paths`` maps a group to the ``APP_FILE_PATH`` values its phones'
    master files gave.
    """
    items: list[Item] = []
    by_folder: dict[str, list[tuple[str, str]]] = defaultdict(list)
    versions: dict[str, str] = {}
    version_files: dict[str, str] = {}
    for rel in sorted(source.files):
        folder, name = posixpath.split(rel)
        match = _IMAGE.fullmatch(name)
        if match is not None:
            by_folder[folder.lower()].append((rel, match.group(1) or ""))
        elif name.lower() == VERSION_FILE:
            read = _version(source, rel)
            if isinstance(read, Item):
                items.append(read)
            else:
                versions[folder.lower()] = read
                version_files[folder.lower()] = rel
    images: list[Image] = []
    consumed: set[str] = set()
    for folder, found in by_folder.items():
        version = versions.get(folder)
        if version is None:
            items.extend(
                Item(
                    Status.NOT_UNDERSTOOD,
                    rel,
                    None,
                    "no readable sip.ver beside it says its version; add it with "
                    f"`phoneprov firmware add {posixpath.basename(rel)} --version V`",
                )
                for rel, _ in found
            )
            continue
        images += [Image(rel, version, part) for rel, part in found]
        consumed.update(rel for rel, _ in found)
        consumed.add(version_files[folder])
    assign: dict[str, str] = {}
    for group, paths in sorted(app_paths.items()):
        folders = {posixpath.dirname(path.strip().lstrip("/")).lower() for path in paths}
        offered = {versions[f] for f in folders if f in versions and f in by_folder}
        if len(offered) == 1:
            assign[group] = offered.pop()
        elif offered:
            items.append(
                Item(
                    Status.NOT_UNDERSTOOD,
                    sorted(paths)[0],
                    None,
                    f"the phones of group {group} were sent to different firmware "
                    f"({', '.join(sorted(offered))}); assign one with "
                    f"`phoneprov firmware assign --version V --group {group}`",
                )
            )
    return FirmwarePlan(tuple(images), assign, frozenset(consumed), tuple(items))
