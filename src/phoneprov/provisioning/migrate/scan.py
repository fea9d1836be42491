"""Reading an old boot directory: its files, its master files, the phones they serve.

IIS matches names without regard to case, vsftpd and tftpd with it; phones ask
for lower-case MACs. Lookups here ignore case, so a directory that worked under
IIS with ``0004F2000001-reg.cfg`` imports as it worked. Symbolic links are
followed only to files inside the directory: the import copies what it keeps
into a boot directory phones read, and a link out of the old directory could
carry anything into it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.protocols import configfile
from phoneprov.protocols.polycom import MASTER_FILE
from phoneprov.provisioning.migrate.report import Item, Status

MAC_VARIABLE = "[PHONE_MAC_ADDRESS]"
PART_VARIABLE = "[PHONE_PART_NUMBER]"
MAX_CONFIG_BYTES = 8 * 1024 * 1024  # far above any Polycom config file; refuses a stray image
# Files of the old web or FTP server itself, never meant for phones (web.config can hold
# connection strings): not carried into a directory phones read.
SERVER_FILES = frozenset({"web.config", ".htaccess", ".htpasswd", ".ftpaccess", "thumbs.db"})
_MAC_MASTER = re.compile(r"[0-9a-f]{12}\.cfg")


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``CONFIG_FILES`` entry of a master file, where it stands."""

    name: str
    line: int


@dataclass(frozen=True, slots=True)
class OldMaster:
    """The parts of an old master file an import uses."""

    file: str
    config_files: tuple[Entry, ...]
    app_file_path: str


@dataclass
class SourceDir:
    """The old boot directory: its files by relative POSIX path, and what was left out."""

    root: Path
    files: dict[str, Path] = field(default_factory=dict)
    items: list[Item] = field(default_factory=list)
    _lower: dict[str, str] = field(default_factory=dict)
    _documents: dict[str, configfile.ConfigDocument | Item] = field(default_factory=dict)

    @classmethod
    def open(cls, root: Path) -> SourceDir:
        """Walk ``root``; raise InputError when it is not a readable directory."""
        if not root.is_dir():
            raise InputError(
                f"{root} is not a directory",
                "Give the folder the old server serves (the one holding 000000000000.cfg).",
            )
        source = cls(root.resolve())
        for folder, dirs, names in os.walk(source.root, followlinks=False):
            here = Path(folder)
            for name in sorted(dirs):
                if (here / name).is_symlink():
                    source.skip(here / name, "a symbolic link to a folder; not followed")
                elif name.startswith("."):
                    source.skip(here / name, "a hidden folder (.git, .svn, ...); not carried over")
            # os.walk descends into what is left in ``dirs``: hidden folders are not walked.
            dirs[:] = sorted(name for name in dirs if not name.startswith("."))
            for name in sorted(names):
                source._add(here / name)
        return source

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def skip(self, path: Path, why: str) -> None:
        self.items.append(Item(Status.SKIPPED, self.rel(path), None, why))

    def _add(self, path: Path) -> None:
        if path.name.lower() in SERVER_FILES or path.name.startswith("."):
            self.skip(path, "the old server's own settings or a hidden file, not for phones")
            return
        if path.is_symlink():
            target = Path(os.path.realpath(path))
            if self.root not in target.parents or not target.is_file():
                self.skip(path, "a symbolic link out of the directory; not followed")
                return
        elif not path.is_file():
            return
        if not os.access(path, os.R_OK):
            self.items.append(
                Item(
                    Status.NOT_UNDERSTOOD,
                    self.rel(path),
                    None,
                    "this user cannot read it; run the import as a user who can",
                )
            )
            return
        rel = self.rel(path)
        self.files[rel] = path
        self._lower.setdefault(rel.lower(), rel)

    def find(self, name: str) -> str | None:
        """The file a phone asking for ``name`` got (any case), or None."""
        cleaned = name.strip().lstrip("/")
        while cleaned.startswith("./"):
            cleaned = cleaned[2:]
        if not cleaned or ".." in cleaned.split("/") or "://" in cleaned:
            return None
        return self._lower.get(cleaned.lower())

    def unreadable(self) -> set[str]:
        """Files read so far that could not be parsed (already in the report)."""
        return {rel for rel, found in self._documents.items() if isinstance(found, Item)}

    def document(self, rel: str) -> configfile.ConfigDocument | Item:
        """The parsed file, or a not-understood item saying why it cannot be read."""
        if rel not in self._documents:
            self._documents[rel] = self._read(rel)
        return self._documents[rel]

    def _read(self, rel: str) -> configfile.ConfigDocument | Item:
        path = self.files[rel]
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            return Item(
                Status.NOT_UNDERSTOOD,
                rel,
                None,
                f"{size} bytes is too big for a configuration file (at most {MAX_CONFIG_BYTES})",
            )
        try:
            return configfile.read(path.read_bytes())
        except configfile.ParseError as error:
            line = error.position[0] if getattr(error, "position", None) else None
            return Item(
                Status.NOT_UNDERSTOOD,
                rel,
                line,
                f"not well-formed XML ({error}); the phones that read it ignored it too. "
                "Fix it and import again.",
            )


def read_master(rel: str, document: configfile.ConfigDocument) -> tuple[OldMaster, list[Item]]:
    """The master file's CONFIG_FILES and APP_FILE_PATH; items for what is left out.

    Its upload folders need no reading: files phones uploaded are recognised by
    name wherever they are (migrate/files.py).
    """
    items: list[Item] = []
    entries: list[Entry] = []
    app_file_path = "sip.ld"
    for attribute in document.attributes:
        name, value = attribute.name.upper(), attribute.value.strip()
        if name == "CONFIG_FILES":
            entries.extend(
                Entry(part.strip(), attribute.line) for part in value.split(",") if part.strip()
            )
        elif name == "APP_FILE_PATH":
            app_file_path = value or app_file_path
        elif value and name.startswith(("APP_FILE_PATH_", "CONFIG_FILES_")):
            items.append(
                Item(
                    Status.NOT_UNDERSTOOD,
                    rel,
                    attribute.line,
                    f"{attribute.name}: per-model files are not imported (the old directory "
                    "does not say which phone is which model). Add the model's firmware with "
                    "`phoneprov firmware add FILE --version V --models MODEL` and its settings "
                    "with a group template.",
                )
            )
        elif value and name == "MISC_FILES":
            items.append(
                Item(
                    Status.SKIPPED,
                    rel,
                    attribute.line,
                    "MISC_FILES: phoneprov's master file lists none; the files themselves are "
                    "kept. List them again with a master.cfg.j2 template "
                    "(docs/configuration.md).",
                )
            )
    return OldMaster(rel, tuple(entries), app_file_path), items


def find_masters(source: SourceDir) -> tuple[OldMaster | None, dict[str, OldMaster], list[Item]]:
    """The generic master file, the per-phone ``<MAC>.cfg`` master files, and report items.

    A ``<MAC>.cfg`` whose root element is not ``APPLICATION`` is a configuration
    file, not a master file, and is left to the phones' CONFIG_FILES.
    Raises InputError when the directory has no master file at all.
    """
    items: list[Item] = []
    generic: OldMaster | None = None
    per_phone: dict[str, OldMaster] = {}
    for rel in sorted(source.files):
        lowered = rel.lower()
        if lowered != MASTER_FILE and not _MAC_MASTER.fullmatch(lowered):
            continue
        document = source.document(rel)
        if isinstance(document, Item):
            items.append(document)
            continue
        if document.root.upper() != "APPLICATION":
            continue
        master, notes = read_master(rel, document)
        items.extend(notes)
        if lowered == MASTER_FILE:
            generic = master
        else:
            per_phone[MacAddress.parse(lowered[:12]).value] = master
    if generic is None and not per_phone:
        raise InputError(
            f"{source.root} has no master file ({MASTER_FILE} or <MAC>.cfg with an "
            "APPLICATION element) that phoneprov can read",
            "Give the folder the old server serves to phones; the report of a --dry-run "
            "lists what was found.",
        )
    return generic, per_phone, items


def phones_of(source: SourceDir, generic: OldMaster | None) -> set[str]:
    """MACs the generic master serves: files matching its ``[PHONE_MAC_ADDRESS]`` entries."""
    if generic is None:
        return set()
    found: set[str] = set()
    for entry in generic.config_files:
        if MAC_VARIABLE not in entry.name.upper() or PART_VARIABLE in entry.name.upper():
            continue
        head, _, tail = entry.name.strip().lstrip("/").upper().partition(MAC_VARIABLE)
        pattern = re.compile(re.escape(head.lower()) + "([0-9a-f]{12})" + re.escape(tail.lower()))
        for rel in source.files:
            match = pattern.fullmatch(rel.lower())
            if match is not None and match.group(1) != "000000000000":
                found.add(match.group(1))
    return found
