"""The Lync/SfB device update catalog: packages by sha256, staged rollout, loop guard.

A package is one module (``CPE``) of one version for one
``<type>/<vendor>/<model>/<revision>/<locale>``; an assignment says which
version a group runs (group ``""`` = everyone else), as Lync's "approve" did.
Packages and assignments are one JSON document in the site database
(``Store.lync_catalog``), so every node serving the database offers the same
ones; each change reads the document, edits it and writes it back naming the
revision it read, and starts again when another node wrote in between. The
files are ``<site>/ucupdate/objects/<sha256>`` (each file once, however many
packages name it): with several nodes that folder is on shared storage, like
the boot directory (docs/scale-out.md). Adding and assigning packages on a
site: ``provisioning/lync/packages.py``.

An older phoneprov kept the document in ``<site>/ucupdate/catalog.json``. The
first time a database without a catalog meets a site with that file, the file
is adopted into it (one write) and renamed ``catalog.json.adopted``, as the
CA's ``index.json`` is (``provisioning/authority.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from phoneprov.errors import InputError, StoreError
from phoneprov.protocols.lync import PackageKey, version_key
from phoneprov.provisioning.authority import ADOPTED_SUFFIX
from phoneprov.store.base import LyncCatalogRepo

CATALOG_DIR = "ucupdate"
CATALOG_FILE = "catalog.json"
OBJECTS = "objects"
ADD_COMMAND = "phoneprov firmware add-ucupdate"  # cli/ucupdate.py, on the firmware group
LOOP_FLAG = "firmware-loop"  # shared with the Polycom firmware loop flag (issue 5)
_SIGNATURE_SUFFIXES = (".sig", ".cat", ".p7s")
ATTEMPTS = 20  # reads and writes of one change before giving up on a catalog others keep changing
log = logging.getLogger("phoneprov.lync")


@dataclass(frozen=True, slots=True)
class PackageFile:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Package:
    """One module of one version for one device key."""

    key: PackageKey
    version: str
    module: str
    files: tuple[PackageFile, ...]
    added: float = 0.0

    @property
    def primary(self) -> PackageFile:
        """The image the phone fetches at ``BaseURL`` alone: the largest non-signature file."""
        images = [f for f in self.files if not f.name.lower().endswith(_SIGNATURE_SUFFIXES)]
        return max(images or list(self.files), key=lambda f: f.size)

    def file(self, name: str) -> PackageFile | None:
        return next((f for f in self.files if f.name.casefold() == name.casefold()), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.key.device_type,
            "vendor": self.key.vendor,
            "model": self.key.model,
            "revision": self.key.revision,
            "locale": self.key.locale,
            "version": self.version,
            "module": self.module,
            "added": self.added,
            "files": [asdict(f) for f in self.files],
        }


@dataclass(frozen=True, slots=True)
class Assignment:
    key: PackageKey
    group: str
    version: str

    def to_json(self) -> dict[str, str]:
        return {
            "type": self.key.device_type,
            "vendor": self.key.vendor,
            "model": self.key.model,
            "revision": self.key.revision,
            "locale": self.key.locale,
            "group": self.group,
            "version": self.version,
        }


def _key_from(data: dict[str, Any]) -> PackageKey:
    return PackageKey(
        str(data["type"]),
        str(data["vendor"]),
        str(data["model"]),
        str(data["revision"]),
        str(data["locale"]),
    )


@dataclass(frozen=True)
class Catalog:
    """Packages and assignments as read at ``revision``; ``root`` is ``<site>/ucupdate``."""

    root: Path
    packages: tuple[Package, ...] = ()
    assignments: tuple[Assignment, ...] = ()
    revision: int = 0  # of the document in the database when read (0: none there yet)
    _by_key: dict[tuple[str, ...], list[Package]] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for package in self.packages:
            self._by_key.setdefault(package.key.folded(), []).append(package)

    @classmethod
    def load(cls, repo: LyncCatalogRepo, site_dir: Path) -> Catalog:
        """The site's catalog in the database (empty when there is none), after adopting
        ``<site>/ucupdate/catalog.json``; InputError names a damaged document or file."""
        root = site_dir / CATALOG_DIR
        _adopt_file(repo, root)
        found = repo.read()
        if found is None:
            return cls(root)
        document, revision = found
        return cls.parse(
            root,
            document,
            revision,
            "the Lync/SfB device update catalog in the database",
            "Restore the site from the last backup (docs/backup.md).",
        )

    @classmethod
    def parse(
        cls, root: Path, document: str | bytes, revision: int, where: str, fix: str
    ) -> Catalog:
        """The catalog a JSON ``document`` (bytes: UTF-8) describes; InputError naming
        ``where`` with ``fix`` when it is not one."""
        try:
            data = json.loads(document)
            packages = tuple(
                Package(
                    _key_from(p),
                    str(p["version"]),
                    str(p["module"]),
                    tuple(
                        PackageFile(str(f["name"]), str(f["sha256"]), int(f["size"]))
                        for f in p["files"]
                    ),
                    float(p.get("added", 0.0)),
                )
                for p in data.get("packages", [])
            )
            assignments = tuple(
                Assignment(_key_from(a), str(a["group"]), str(a["version"]))
                for a in data.get("assignments", [])
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise InputError(
                f"{where} is damaged: {error.__class__.__name__}: {error}", fix
            ) from None
        return cls(root, packages, assignments, revision)

    def document(self) -> str:
        """The JSON document the database keeps: packages and assignments, sorted."""
        packages = sorted(self.packages, key=lambda p: (p.key, version_key(p.version), p.module))
        assignments = sorted(self.assignments, key=lambda a: (a.key, a.group))
        data = {
            "packages": [p.to_json() for p in packages],
            "assignments": [a.to_json() for a in assignments],
        }
        return json.dumps(data, indent=2) + "\n"

    def save(self, repo: LyncCatalogRepo) -> Catalog | None:
        """Write this catalog over the revision it was read at; return it at its new revision,
        or None when another node or command wrote the catalog since (nothing written)."""
        revision = repo.write(self.document(), self.revision)
        if revision is None:
            return None
        return Catalog(self.root, self.packages, self.assignments, revision)

    def object_path(self, sha256: str) -> Path:
        return self.root / OBJECTS / sha256

    # queries
    def packages_for(self, key: PackageKey) -> list[Package]:
        return list(self._by_key.get(key.folded(), []))

    def device_keys(self) -> list[PackageKey]:
        """Distinct device keys (first spelling added wins), sorted."""
        seen: dict[tuple[str, ...], PackageKey] = {}
        for package in self.packages:
            seen.setdefault(package.key.folded(), package.key)
        return sorted(seen.values())

    def assigned_version(self, key: PackageKey, group: str) -> str:
        """The version ``group`` runs for ``key`` (its own assignment, else everyone's), or ''."""
        folded = key.folded()
        mine = [a for a in self.assignments if a.key.folded() == folded]
        for wanted in ((group,) if group else ()) + ("",):
            hit = next((a for a in mine if a.group.casefold() == wanted.casefold()), None)
            if hit is not None:
                return hit.version
        return ""

    def find(self, key: PackageKey, version: str, module: str) -> Package | None:
        return next(
            (
                p
                for p in self.packages_for(key)
                if p.version == version and p.module.casefold() == module.casefold()
            ),
            None,
        )

    def resolve(self, key: PackageKey, group: str) -> list[Package]:
        """The packages (one per module) the device of ``key`` in ``group`` should run."""
        version = self.assigned_version(key, group)
        if not version:
            return []
        return [p for p in self.packages_for(key) if p.version == version]

    def match_key(
        self,
        *,
        model: str,
        device_type: str = "",
        vendor: str = "",
        revision: str = "",
        locale: str = "",
    ) -> PackageKey:
        """The one catalog key matching the given parts (case-insensitive; '' = any).

        Raises InputError when none or several match, listing the candidates.
        """
        wanted = (device_type, vendor, model, revision, locale)
        hits = [
            k
            for k in self.device_keys()
            if all(
                not w or w.casefold() == part.casefold()
                for w, part in zip(wanted, k.parts(), strict=True)
            )
        ]
        if len(hits) == 1:
            return hits[0]
        known = ", ".join(k.label() for k in self.device_keys()) or "none"
        if not hits:
            raise InputError(
                f"no device update package for model {model!r} in the catalog (known: {known})",
                f"Add one first with `{ADD_COMMAND} FILE ...`.",
            )
        raise InputError(
            f"model {model!r} matches several packages: {', '.join(k.label() for k in hits)}",
            "Narrow it with --type, --vendor, --revision or --locale.",
        )

    # changes (each returns the new catalog; ``change_catalog`` saves it)
    def with_package(self, package: Package) -> Catalog:
        others = [
            p
            for p in self.packages
            if not (
                p.key.folded() == package.key.folded()
                and p.version == package.version
                and p.module.casefold() == package.module.casefold()
            )
        ]
        return Catalog(self.root, (*others, package), self.assignments, self.revision)

    def with_assignment(self, key: PackageKey, version: str, group: str) -> Catalog:
        """Assign ``version`` to ``group`` ('' = everyone); InputError if no such package."""
        if not any(p.version == version for p in self.packages_for(key)):
            have = sorted({p.version for p in self.packages_for(key)}, key=version_key)
            raise InputError(
                f"{key.label()} has no version {version!r} (have: {', '.join(have) or 'none'})",
                f"Add it first with `{ADD_COMMAND}`.",
            )
        folded = key.folded()
        others = [
            a
            for a in self.assignments
            if not (a.key.folded() == folded and a.group.casefold() == group.casefold())
        ]
        return Catalog(
            self.root, self.packages, (*others, Assignment(key, group, version)), self.revision
        )


def _adopt_file(repo: LyncCatalogRepo, root: Path) -> None:
    """Move ``<root>/catalog.json``, the catalog an older phoneprov kept on each node, into
    a database that has none yet, then rename it ``catalog.json.adopted``.

    A database with a catalog (another node adopted its copy first) keeps it, and
    the file is renamed all the same, so nobody edits a copy that is no longer read.
    InputError names a damaged file, which is then left as it is.
    """
    legacy = root / CATALOG_FILE
    if not legacy.is_file():
        return
    fix = f"Restore it from a backup, or remove it and add the packages again with `{ADD_COMMAND}`."
    try:
        text = legacy.read_bytes()
    except FileNotFoundError:  # another worker or node sharing the folder adopted it just now
        return
    catalog = Catalog.parse(root, text, 0, str(legacy), fix)
    adopted = repo.write(catalog.document(), 0) is not None
    renamed = legacy.with_name(CATALOG_FILE + ADOPTED_SUFFIX)
    with suppress(FileNotFoundError):  # another node sharing the folder renamed it first
        legacy.rename(renamed)
    if adopted:
        log.info(
            "moved %d package(s) and %d assignment(s) of %s into the database",
            len(catalog.packages),
            len(catalog.assignments),
            legacy,
        )
    else:
        log.warning(
            "%s was not moved into the database, which has a catalog already; "
            "it is kept as %s (`phoneprov firmware list-ucupdate` shows the catalog in use)",
            legacy,
            renamed,
        )


def change_catalog(
    repo: LyncCatalogRepo, site_dir: Path, edit: Callable[[Catalog], Catalog]
) -> Catalog:
    """Read the catalog, ``edit`` it and write it back; return it as written.

    When another node or command wrote the catalog in between, it is read again and
    ``edit`` applied again, so of two changes at once neither is lost. Raises what
    ``edit`` raises, and StoreError after ATTEMPTS tries.
    """
    for _ in range(ATTEMPTS):
        saved = edit(Catalog.load(repo, site_dir)).save(repo)
        if saved is not None:
            return saved
    raise StoreError(
        f"the Lync/SfB device update catalog changed {ATTEMPTS} times while this change "
        "was being made, and the change was not written",
        "Another node or command is changing it at the same time: run the command again.",
    )
