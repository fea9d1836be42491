"""What a phone account may list (FTP LIST, NLST, MLSD): folders filtered by the policy.

A listing shows the files the principal may read, never another phone's
uploads to a public account (a shared account must not learn which phones
exist), and at the root the files phoneprov renders for it (master, site and
its own config) although they have no copy on disk.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

from phoneprov.model import Principal
from phoneprov.policy import Action
from phoneprov.protocols.paths import safe_relative
from phoneprov.protocols.polycom import BOOTSTRAP_FILE, MASTER_FILE, ResourceKind
from phoneprov.provisioning.gate import Gate, NotFound, Refused, is_public
from phoneprov.provisioning.reads import Reads
from phoneprov.provisioning.render import DEVICE_SUFFIX, SITE_FILE, RenderError


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a listing."""

    name: str
    is_dir: bool
    size: int
    mtime: float


class Listings:
    """Folder listings for the FTP listener."""

    def __init__(self, gate: Gate, reads: Reads) -> None:
        self.gate = gate
        self.reads = reads

    def listing(
        self, principal: Principal, raw: str, *, ip: str, decoded: bool = True
    ) -> list[Entry]:
        """Entries of folder ``raw`` this principal may read, by name. Raises NotFound."""
        relative = safe_relative(raw, already_decoded=decoded)
        directory = self.gate.boot.locate(relative)
        if not directory.is_dir():
            raise NotFound(f"{relative or '/'} is not a folder")
        entries: list[Entry] = []
        for child in sorted(directory.iterdir()):
            if child.name.startswith("."):
                continue
            try:
                st = child.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            if stat.S_ISDIR(st.st_mode):
                entries.append(Entry(child.name, True, 0, st.st_mtime))
                continue
            resource = self.gate.classify(f"{relative}/{child.name}".lstrip("/"))
            if resource.kind is ResourceKind.UPLOAD and is_public(principal):
                continue  # a shared public account must not see which phones exist
            if self.gate.allows(principal, Action.READ, resource):
                entries.append(Entry(child.name, False, st.st_size, st.st_mtime))
        if not relative:
            entries.extend(self._rendered_entries(principal, {e.name for e in entries}, ip=ip))
        return sorted(entries, key=lambda entry: entry.name)

    def _rendered_entries(self, principal: Principal, on_disk: set[str], *, ip: str) -> list[Entry]:
        """The files phoneprov renders that this principal may read, for a root listing."""
        names = [MASTER_FILE, BOOTSTRAP_FILE, SITE_FILE]
        if principal.mac is not None:
            names.append(f"{principal.mac}{DEVICE_SUFFIX}")
        found: list[Entry] = []
        for name in names:
            resource = self.gate.classify(name)
            if name in on_disk or not self.gate.allows(principal, Action.READ, resource):
                continue
            try:
                grant = self.reads.read(principal, name, ip=ip, decoded=True)
            except (NotFound, Refused, RenderError):
                continue
            found.append(Entry(name, False, grant.size, grant.mtime))
        return found
