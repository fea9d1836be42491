"""Device update packages on a site: add, import a CAB layout, assign, the demo package.

Each operation copies the files into ``<site>/ucupdate/objects/<sha256>`` first
(content-addressed: a file is stored once, and written before any catalog names
it), then makes one change of the catalog in the site database
(``catalog.change_catalog``), so a node never offers a file that is not there.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.protocols.lync import PackageKey, compare_versions, module_name
from phoneprov.provisioning.lync.catalog import (
    CATALOG_DIR,
    OBJECTS,
    Catalog,
    Package,
    PackageFile,
    change_catalog,
)
from phoneprov.store import open_store
from phoneprov.store.base import LyncCatalogRepo

CHUNK = 1024 * 1024
_VERSION = re.compile(r"^[0-9][0-9A-Za-z._\-]{0,63}$")


@contextmanager
def _site_repo(settings: Settings) -> Iterator[LyncCatalogRepo]:
    """The site database's catalog, on a store that is closed when the block ends."""
    with closing(open_store(settings)) as store:
        yield store.lync_catalog


def site_catalog(settings: Settings) -> Catalog:
    """The site's catalog as the database has it now."""
    with _site_repo(settings) as repo:
        return Catalog.load(repo, settings.site_dir)


def store_object(root: Path, source: Path) -> PackageFile:
    """Copy ``source`` into ``<root>/objects/<sha256>`` (once) streaming; return its record."""
    if not source.is_file():
        raise InputError(f"{source} is not a file", "Pass the path of the image, e.g. CPE.nbt.")
    objects = root / OBJECTS
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


def _stored_package(
    root: Path, files: Sequence[Path], key: PackageKey, version: str, module: str, now: float
) -> Package:
    """Check the key and version, store ``files`` as objects; the package naming them."""
    key.check()
    if not _VERSION.fullmatch(version) or ".." in version or compare_versions(version, "0") <= 0:
        raise InputError(
            f"--version {version!r} is not a version",
            "Give the dotted version of the image, e.g. 1.0.522.101.",
        )
    if not files:
        raise InputError("no file given", "Pass the image, e.g. CPE.nbt.")
    stored = tuple(store_object(root, path) for path in files)
    return Package(key, version, module or module_name(files[0].name), stored, now)


def add_package(
    settings: Settings,
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
    root = settings.site_dir / CATALOG_DIR
    package = _stored_package(
        root, files, key, version, module, time.time() if now is None else now
    )

    def edit(catalog: Catalog) -> Catalog:
        catalog = catalog.with_package(package)
        return catalog if group is None else catalog.with_assignment(key, version, group)

    with _site_repo(settings) as repo:
        change_catalog(repo, settings.site_dir, edit)
    return package


def import_layout(settings: Settings, directory: Path, *, group: str | None = "") -> list[Package]:
    """Import an extracted Microsoft update CAB: ``<type>/<vendor>/<model>/<revision>/<locale>/
    <version>/<module>/<files>`` anywhere under ``directory``, in one change of the catalog.

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
    root = settings.site_dir / CATALOG_DIR
    now = time.time()
    packages = [
        _stored_package(root, files, PackageKey(*parts[:5]), parts[5], parts[6], now)
        for parts, files in modules.items()
    ]
    newest: dict[tuple[str, ...], Package] = {}
    for package in packages:
        best = newest.get(package.key.folded())
        if best is None or compare_versions(package.version, best.version) > 0:
            newest[package.key.folded()] = package

    def edit(catalog: Catalog) -> Catalog:
        for package in packages:
            catalog = catalog.with_package(package)
        if group is not None:
            for package in newest.values():
                catalog = catalog.with_assignment(package.key, package.version, group)
        return catalog

    with _site_repo(settings) as repo:
        change_catalog(repo, settings.site_dir, edit)
    return packages


def assign_version(
    settings: Settings,
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

    def match(catalog: Catalog) -> PackageKey:
        return catalog.match_key(
            model=model, device_type=device_type, vendor=vendor, revision=revision, locale=locale
        )

    with _site_repo(settings) as repo:
        saved = change_catalog(
            repo, settings.site_dir, lambda c: c.with_assignment(match(c), version, group)
        )
    return match(saved)


DEMO_KEY = PackageKey("UCPhone", "Polycom", "CX700", "A", "ENU")
DEMO_VERSION = "1.0.522.101"
DEMO_SIZE = 64 * 1024


def add_demo_package(settings: Settings) -> Path:
    """Write a dummy 64 KiB ``CPE.nbt`` to ``<site>/demo/`` and add it as the CX700 package
    everyone runs; return the image's path. The bytes are a marker, not firmware."""
    image = settings.site_dir / "demo" / "CPE.nbt"
    image.parent.mkdir(parents=True, exist_ok=True)
    header = b"phoneprov demo CX700 update image - not firmware\n"
    block = hashlib.sha256(header).digest()
    image.write_bytes((header + block * (DEMO_SIZE // len(block)))[:DEMO_SIZE])
    add_package(settings, [image], DEMO_KEY, DEMO_VERSION)
    return image
