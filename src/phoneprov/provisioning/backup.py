"""``phoneprov backup`` and ``restore``: a whole site in one archive, and back.

The archive is a POSIX tar compressed with gzip, optionally encrypted with a
passphrase (``backup_cipher``: scrypt, then AES-256-GCM in chunks). Its members:

- ``database/phoneprov.sqlite3`` or ``database/phoneprov.pgdump``: a consistent
  snapshot (SQLite's online backup API, ``pg_dump``; ``store.dump_database``),
  taken first, while servers may keep running;
- ``site/...``: the site folder: ``phoneprov.toml``, ``pki/`` (keys stay 0600),
  ``trust/``, ``templates/``, ``firmware/``, the boot directory with the phones'
  uploads, ``versions/``, ``held/``, ``ucupdate/``, ``demo/``;
- ``MANIFEST.json``, last: the phoneprov version, the schema version, and the
  size and SHA-256 of every file.

Left out: ``log/`` (the access and security logs are records, not state, and
logrotate keeps them), the live SQLite files (the snapshot stands for them),
the temporary files of uploads in progress, and symbolic links and other files
that are not regular files (listed in the report).

The archive is written to a hidden ``.<FILE>.*.partial`` beside FILE (0600)
and renamed to FILE only after the manifest is in it: a backup killed part way
leaves no FILE, and its partial file has no manifest, which ``restore`` refuses.

``restore`` (``provisioning/restore.py``) checks every member against the
manifest before it writes anything.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO

from phoneprov import __version__
from phoneprov.config import SETTINGS_FILE, Settings
from phoneprov.errors import InputError, PhoneprovError
from phoneprov.provisioning.backup_cipher import MAGIC, DecryptingReader, EncryptingWriter
from phoneprov.store import (
    DUMP_NAMES,
    SCHEMA_VERSION,
    DumpKind,
    dump_database,
    open_store,
    sqlite_file,
)

FORMAT = 1
MANIFEST = "MANIFEST.json"
SITE = "site"
COMPRESSLEVEL = 6  # gzip's own default: level 9 is twice as slow for a few per cent
COPY = 1 << 20
_MANIFEST_MAX = 64 * 1024**2
_LEFT_OUT_DIRS = {"log"}
# Temporary files of uploads and firmware imports in progress (provisioning/uploads.py,
# firmware.py): half-written, and swept away by the next `serve`.
_TEMPORARY = re.compile(r"^\..+\.part$|^\.incoming-")
DAMAGED = "Use the whole file `phoneprov backup` wrote; a `.partial` file is an unfinished one."


@dataclass(frozen=True, slots=True)
class BackupReport:
    """What ``backup_site`` wrote."""

    path: Path
    files: int
    size: int  # bytes of the archive
    database: DumpKind
    schema_version: int
    encrypted: bool
    skipped: tuple[str, ...]  # site paths left out: symbolic links, sockets, FIFOs


class Hashing:
    """A read-only file object that hashes what passes through it."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle, self.sha256, self.size = handle, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data


def check_passphrase(passphrase: str | None) -> None:
    if passphrase is not None and not passphrase:
        raise InputError("the passphrase is empty", "Give a passphrase on standard input.")


def backup_site(
    settings: Settings, dest: Path, *, passphrase: str | None = None, force: bool = False
) -> BackupReport:
    """Write the site and a snapshot of its database to the archive ``dest``.

    Raises InputError when ``dest`` exists (without ``force``) or lies inside the
    site, StoreError when the database cannot be copied; nothing is left at
    ``dest`` on any failure.
    """
    check_passphrase(passphrase)
    dest = dest.absolute()
    site_dir = settings.site_dir.absolute()
    if dest.is_relative_to(site_dir):
        raise InputError(
            f"{dest} is inside the site folder {site_dir}",
            "Write the backup outside the site: it would otherwise hold itself.",
        )
    if dest.exists() and not force:
        raise InputError(f"{dest} already exists", "Pick another name, or pass --force.")
    if not dest.parent.is_dir():
        raise InputError(f"there is no folder {dest.parent}", "Create it, or pick another path.")
    store = open_store(settings, migrate=False)
    try:
        schema_version = store.schema_version()
    finally:
        store.close()
    partial: Path | None = None
    try:
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.db-") as scratch:
            snapshot = Path(scratch) / "snapshot"
            kind = dump_database(settings.database_url, snapshot)
            with tempfile.NamedTemporaryFile(  # 0600, like the archive it becomes
                dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial", delete=False
            ) as raw:
                partial = Path(raw.name)
                sink: Any = EncryptingWriter(raw, passphrase) if passphrase is not None else raw
                manifest, skipped = _write_archive(sink, settings, kind, snapshot, schema_version)
                if isinstance(sink, EncryptingWriter):
                    sink.finish()
                raw.flush()
                os.fsync(raw.fileno())
        _publish(partial, dest, force=force)
    except OSError as error:
        if partial is not None:
            partial.unlink(missing_ok=True)
        raise PhoneprovError(
            f"backup not written: {error.strerror or error}: {error.filename or dest}",
            "Check that this user may read the whole site and write to the backup's "
            "folder, and that the disk has room.",
        ) from None
    except BaseException:
        if partial is not None:
            partial.unlink(missing_ok=True)
        raise
    return BackupReport(
        path=dest,
        files=len(manifest["files"]) - 1,  # the database snapshot is counted apart
        size=dest.stat().st_size,
        database=kind,
        schema_version=schema_version,
        encrypted=passphrase is not None,
        skipped=tuple(skipped),
    )


def _publish(partial: Path, dest: Path, *, force: bool) -> None:
    """Give the finished archive its name; without ``force``, never over another file."""
    if force:
        os.replace(partial, dest)
        return
    try:
        os.link(partial, dest)  # fails if another process made dest meanwhile
    except FileExistsError:
        raise InputError(f"{dest} already exists", "Pick another name, or pass --force.") from None
    except OSError:
        os.rename(partial, dest)  # no hard links on this file system (FAT, some shares)
        return
    partial.unlink()


def _write_archive(
    sink: BinaryIO, settings: Settings, kind: DumpKind, snapshot: Path, schema_version: int
) -> tuple[dict[str, Any], list[str]]:
    """The tar stream: the snapshot, the site's folders and files, the manifest last."""
    files: dict[str, dict[str, Any]] = {}
    folders: list[str] = []
    skipped: list[str] = []
    db_member = f"database/{DUMP_NAMES[kind]}"
    with (
        gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=COMPRESSLEVEL, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        files[db_member] = _add_file(tar, db_member, snapshot)
        for name, path in _site_entries(settings, skipped):
            if path.is_dir():
                folders.append(name)
                tar.addfile(_info(name, path.lstat(), tarfile.DIRTYPE))
            else:
                files[name] = _add_file(tar, name, path)
        manifest = {
            "format": FORMAT,
            "phoneprov": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "site": settings.name,
            "database": {"kind": kind, "member": db_member, "schema_version": schema_version},
            "folders": folders,
            "files": files,
        }
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode, info.mtime = len(body), 0o600, int(time.time())
        tar.addfile(info, io.BytesIO(body))
    return manifest, skipped


def _info(name: str, stat: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    """A tar header without the owner's names and ids: a restore owns what it writes."""
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, stat.st_mode & 0o777, int(stat.st_mtime)
    return info


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> dict[str, Any]:
    """Add ``path`` as ``name``; return its manifest entry (size, sha256)."""
    with path.open("rb") as handle:
        stat = os.fstat(handle.fileno())
        info = _info(name, stat, tarfile.REGTYPE)
        info.size = stat.st_size  # a file that grows meanwhile is archived as it was here
        reader = Hashing(handle)
        tar.addfile(info, reader)
    return {"size": reader.size, "sha256": reader.sha256.hexdigest()}


def _site_entries(settings: Settings, skipped: list[str]) -> Iterator[tuple[str, Path]]:
    """(member name, path) for the site folder and what it holds, folders first."""
    site_dir = settings.site_dir
    db = sqlite_file(settings.database_url)
    live = {db.with_name(db.name + s) for s in ("", "-wal", "-shm", "-journal")} if db else set()
    yield SITE, site_dir
    for root, dirs, names in os.walk(site_dir):
        here = Path(root)
        rel = here.relative_to(site_dir)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in _LEFT_OUT_DIRS]
        for entry in sorted(dirs):
            if (here / entry).is_symlink():
                skipped.append(str(rel / entry))
        dirs[:] = sorted(d for d in dirs if not (here / d).is_symlink())
        for entry in dirs:
            yield f"{SITE}/{(rel / entry).as_posix()}", here / entry
        for entry in sorted(names):
            path = here / entry
            if _TEMPORARY.match(entry) or path.resolve() in live:
                continue
            if path.is_symlink() or not path.is_file():
                skipped.append(str(rel / entry))
                continue
            yield f"{SITE}/{(rel / entry).as_posix()}", path


@contextmanager
def open_archive(archive: Path, passphrase: str | None) -> Iterator[tarfile.TarFile]:
    """The archive's tar stream, decrypted when it is encrypted."""
    try:
        raw = archive.open("rb")
    except OSError as error:
        raise InputError(f"cannot read {archive}: {error.strerror}", "Check the path.") from None
    with raw:
        encrypted = raw.read(len(MAGIC)) == MAGIC
        raw.seek(0)
        if encrypted and passphrase is None:
            raise InputError(
                f"{archive} is encrypted",
                "Give its passphrase on standard input (--passphrase-stdin).",
            )
        source: Any = DecryptingReader(raw, passphrase) if encrypted and passphrase else raw
        try:
            with (
                gzip.GzipFile(fileobj=source, mode="rb") as unzipped,
                tarfile.open(fileobj=unzipped, mode="r|") as tar,
            ):
                yield tar
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise InputError(
                f"{archive} is not a whole phoneprov backup: {error}", DAMAGED
            ) from None


def member_name(member: tarfile.TarInfo) -> str | None:
    """The member's name when it belongs in a backup; None for the ``database`` folder
    entry that ``tar`` adds to an archive it makes (nothing to restore); InputError for
    anything else (absolute paths, ``..``, links, devices)."""
    name = member.name
    if name == "database" and member.isdir():
        return None
    parts = PurePosixPath(name).parts
    allowed = (
        name == MANIFEST
        or (name.startswith("database/") and name[9:] in DUMP_NAMES.values())
        or (parts[:1] == (SITE,) and ".." not in parts and name == PurePosixPath(*parts).as_posix())
    )
    if not allowed or not (member.isfile() or member.isdir()):
        raise InputError(f"the archive holds {name!r}, which no phoneprov backup holds", DAMAGED)
    return name


def verify_archive(archive: Path, passphrase: str | None) -> tuple[dict[str, Any], bytes]:
    """Pass one: every member checked against the manifest; returns it and phoneprov.toml."""
    seen: dict[str, dict[str, Any]] = {}
    folders: list[str] = []
    manifest: dict[str, Any] | None = None
    settings_text = b""
    with open_archive(archive, passphrase) as tar:
        for member in tar:
            name = member_name(member)
            if name is None:
                continue
            if manifest is not None:
                raise InputError(f"the archive holds {name!r} after its manifest", DAMAGED)
            if member.isdir():
                folders.append(name)
                continue
            handle = tar.extractfile(member)
            assert handle is not None  # a regular file, checked above
            if name == MANIFEST:
                if member.size > _MANIFEST_MAX:
                    raise InputError("the archive's manifest is too large", DAMAGED)
                manifest = _parse_manifest(handle.read())
                continue
            reader = Hashing(handle)
            keep = name == f"{SITE}/{SETTINGS_FILE}"
            while chunk := reader.read(COPY):
                if keep:
                    settings_text += chunk
            seen[name] = {"size": reader.size, "sha256": reader.sha256.hexdigest()}
    if manifest is None:
        raise InputError(f"{archive} has no manifest: the backup was not finished", DAMAGED)
    wrong = sorted(
        n for n in set(seen) | set(manifest["files"]) if seen.get(n) != manifest["files"].get(n)
    )
    if wrong or sorted(folders) != sorted(manifest["folders"]):
        named = ", ".join(wrong[:5]) or "the list of folders"
        raise InputError(
            f"{archive} does not match its manifest ({len(wrong)} file(s)): {named}", DAMAGED
        )
    if f"{SITE}/{SETTINGS_FILE}" not in seen or manifest["database"]["member"] not in seen:
        raise InputError(f"{archive} lacks phoneprov.toml or the database snapshot", DAMAGED)
    return manifest, settings_text


def _parse_manifest(body: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(body)
        kind = manifest["database"]["kind"]
        valid = (
            manifest["format"] == FORMAT
            and kind in DUMP_NAMES
            and manifest["database"]["member"] == f"database/{DUMP_NAMES[kind]}"
            and isinstance(manifest["files"], dict)
            and isinstance(manifest["folders"], list)
            and isinstance(manifest["database"]["schema_version"], int)
        )
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise InputError("the archive's manifest is not one this phoneprov reads", DAMAGED)
    if manifest["database"]["schema_version"] > SCHEMA_VERSION:
        raise InputError(
            f"the backup was made by phoneprov {manifest.get('phoneprov')}, whose database "
            f"schema ({manifest['database']['schema_version']}) is newer than this "
            f"phoneprov's ({SCHEMA_VERSION})",
            "Restore with that phoneprov release or a newer one.",
        )
    return dict(manifest)
