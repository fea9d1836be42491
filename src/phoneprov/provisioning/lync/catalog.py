"""The Lync/SfB device update catalog: packages by sha256, staged rollout, loop guard.

Layout of ``<site>/ucupdate/``: ``catalog.json`` (packages and assignments,
written atomically) and ``objects/<sha256>`` (each file once, however many
packages name it). A package is one module (``CPE``) of one version for one
``<type>/<vendor>/<model>/<revision>/<locale>``; an assignment says which
version a group runs (group ``""`` = everyone else), as Lync's "approve" did.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from phoneprov.errors import InputError
from phoneprov.pki.files import write_atomic
from phoneprov.protocols.lync import (
    PackageKey,
    compare_versions,
    module_name,
    version_key,
)

CATALOG_DIR = "ucupdate"
CATALOG_FILE = "catalog.json"
OBJECTS = "objects"
ADD_COMMAND = "phoneprov firmware add-ucupdate"  # cli/ucupdate.py, on the firmware group
LOOP_FLAG = "firmware-loop"  # shared with the Polycom firmware loop flag (issue 5)
CHUNK = 1024 * 1024
_SIGNATURE_SUFFIXES = (".sig", ".cat", ".p7s")
_VERSION = re.compile(r"^[0-9][0-9A-Za-z._\-]{0,63}$")


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
    """What ``<site>/ucupdate/catalog.json`` holds; ``root`` is ``<site>/ucupdate``."""

    root: Path
    packages: tuple[Package, ...] = ()
    assignments: tuple[Assignment, ...] = ()
    _by_key: dict[tuple[str, ...], list[Package]] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for package in self.packages:
            self._by_key.setdefault(package.key.folded(), []).append(package)

    @classmethod
    def load(cls, site_dir: Path) -> Catalog:
        """Read the catalog (empty when there is none); InputError names a damaged file."""
        root = site_dir / CATALOG_DIR
        path = root / CATALOG_FILE
        if not path.is_file():
            return cls(root)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
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
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"{path} is damaged: {error.__class__.__name__}: {error}",
                "Restore it from a backup, or remove it and add the packages "
                f"again with `{ADD_COMMAND}`.",
            ) from None
        return cls(root, packages, assignments)

    def save(self) -> None:
        packages = sorted(self.packages, key=lambda p: (p.key, version_key(p.version), p.module))
        assignments = sorted(self.assignments, key=lambda a: (a.key, a.group))
        data = {
            "packages": [p.to_json() for p in packages],
            "assignments": [a.to_json() for a in assignments],
        }
        write_atomic(self.root / CATALOG_FILE, (json.dumps(data, indent=2) + "\n").encode())

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

    # changes (each returns the new catalog; the caller saves)
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
        return Catalog(self.root, (*others, package), self.assignments)

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
        return Catalog(self.root, self.packages, (*others, Assignment(key, group, version)))


def store_object(catalog: Catalog, source: Path) -> PackageFile:
    """Copy ``source`` into ``objects/<sha256>`` (once) streaming; return its record."""
    if not source.is_file():
        raise InputError(f"{source} is not a file", "Pass the path of the image, e.g. CPE.nbt.")
    objects = catalog.root / OBJECTS
    objects.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    tmp = objects / f".incoming.{os.getpid()}.{time.monotonic_ns()}"
    size = 0
    try:
        with source.open("rb") as reader, tmp.open("wb") as writer:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                writer.write(chunk)
                size += len(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        target = objects / digest.hexdigest()
        if target.exists():
            tmp.unlink()
        else:
            os.chmod(tmp, 0o640)  # site files are 0640 (provisioning/file_modes.py)
            os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return PackageFile(source.name, digest.hexdigest(), size)


def add_package(
    site_dir: Path,
    files: Sequence[Path],
    key: PackageKey,
    version: str,
    *,
    module: str = "",
    group: str | None = "",
    now: float | None = None,
) -> Package:
    """Store ``files`` as one module of ``version`` and assign it.

    ``group=""`` makes it the version everyone runs; a group name stages it for
    that group only; ``None`` stores it without assigning. Returns the package.
    Raises InputError for a bad key, version or file.
    """
    key.check()
    if not _VERSION.fullmatch(version) or ".." in version or compare_versions(version, "0") <= 0:
        raise InputError(
            f"--version {version!r} is not a version",
            "Give the dotted version of the image, e.g. 1.0.522.101.",
        )
    if not files:
        raise InputError("no file given", "Pass the image, e.g. CPE.nbt.")
    module = module or module_name(files[0].name)
    catalog = Catalog.load(site_dir)
    stored = tuple(store_object(catalog, path) for path in files)
    package = Package(key, version, module, stored, time.time() if now is None else now)
    catalog = catalog.with_package(package)
    if group is not None:
        catalog = catalog.with_assignment(key, version, group)
    catalog.save()
    return package


def import_layout(site_dir: Path, directory: Path, *, group: str | None = "") -> list[Package]:
    """Import an extracted Microsoft update CAB: ``<type>/<vendor>/<model>/<revision>/<locale>/
    <version>/<module>/<files>`` anywhere under ``directory``.

    The newest version of each device key is assigned to ``group`` ('' = everyone,
    None = store only). Returns the packages; InputError when nothing fits the layout.
    """
    if not directory.is_dir():
        raise InputError(
            f"{directory} is not a folder",
            "Extract the CAB first (e.g. `cabextract -d DIR UCUpdates.cab`).",
        )
    modules: dict[tuple[str, ...], list[Path]] = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        parts = path.relative_to(directory).parts
        if len(parts) < 8:
            continue
        modules.setdefault(parts[-8:-1], []).append(path)
    if not modules:
        raise InputError(
            f"nothing under {directory} has the layout "
            "<type>/<vendor>/<model>/<revision>/<locale>/<version>/<module>/<file>",
            "Point at the folder the CAB was extracted to, e.g. the one holding UCPhone/.",
        )
    packages = [
        add_package(site_dir, files, PackageKey(*parts[:5]), parts[5], module=parts[6], group=None)
        for parts, files in modules.items()
    ]
    if group is not None:
        catalog = Catalog.load(site_dir)
        newest: dict[tuple[str, ...], Package] = {}
        for package in packages:
            best = newest.get(package.key.folded())
            if best is None or compare_versions(package.version, best.version) > 0:
                newest[package.key.folded()] = package
        for package in newest.values():
            catalog = catalog.with_assignment(package.key, package.version, group)
        catalog.save()
    return packages


def assign_version(
    site_dir: Path,
    version: str,
    group: str,
    *,
    model: str,
    device_type: str = "",
    vendor: str = "",
    revision: str = "",
    locale: str = "",
) -> PackageKey:
    """Say that ``group`` ('' = everyone) runs ``version`` of the one package key matching
    the given parts (case-insensitive; '' = any); returns that key.

    Raises InputError when no key or several match, or the key has no such version.
    """
    catalog = Catalog.load(site_dir)
    key = catalog.match_key(
        model=model, device_type=device_type, vendor=vendor, revision=revision, locale=locale
    )
    catalog.with_assignment(key, version, group).save()
    return key


DEMO_KEY = PackageKey("UCPhone", "Polycom", "CX700", "A", "ENU")
DEMO_VERSION = "1.0.522.101"
DEMO_SIZE = 64 * 1024


def add_demo_package(site_dir: Path) -> Path:
    """Write a dummy 64 KiB ``CPE.nbt`` to ``<site>/demo/`` and add it as the CX700 package
    everyone runs; return the image's path. The bytes are a marker, not firmware."""
    image = site_dir / "demo" / "CPE.nbt"
    image.parent.mkdir(parents=True, exist_ok=True)
    header = b"phoneprov demo CX700 update image - not firmware\n"
    block = hashlib.sha256(header).digest()
    image.write_bytes((header + block * (DEMO_SIZE // len(block)))[:DEMO_SIZE])
    add_package(site_dir, [image], DEMO_KEY, DEMO_VERSION)
    return image
