"""``phoneprov restore``: a site and its database back from a ``phoneprov backup`` archive.

The archive is read twice (its format is in ``provisioning/backup.py``). The
first pass checks every member against the manifest and writes nothing; the
second extracts into a new folder beside the target, checking each file again,
loads the database snapshot, and only then renames the folder into place. A
target that holds anything is refused unless ``force`` is given; the site it
then replaces is renamed ``<DIR>.before-restore-<time>``, not deleted. Run as
root into an existing folder, the restored files take that folder's owner and
group, so the service's user can read them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from phoneprov.config import SETTINGS_FILE, Settings, load_settings, settings_from_mapping
from phoneprov.errors import InputError, PhoneprovError, SiteExistsError
from phoneprov.provisioning.backup import (
    COPY,
    DAMAGED,
    MANIFEST,
    Hashing,
    check_passphrase,
    member_name,
    open_archive,
    verify_archive,
)
from phoneprov.provisioning.file_modes import SITE_UMASK
from phoneprov.store import (
    SCHEMA_VERSION,
    DumpKind,
    database_kind,
    load_database,
    open_store,
    sqlite_file,
)


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What ``restore_site`` restored, and where the site it replaced went."""

    site_dir: Path
    files: int
    database: DumpKind
    schema_version: int  # of the restored database
    code_schema_version: int  # this phoneprov's: a restored database may be older
    made_by: str  # the phoneprov version that wrote the backup
    created: str
    replaced: Path | None


def restore_site(
    archive: Path, site_dir: Path, *, passphrase: str | None = None, force: bool = False
) -> RestoreReport:
    """Restore the backup ``archive`` as the site ``site_dir``, with its database.

    Raises SiteExistsError when ``site_dir`` holds anything, or the database the
    backup names already holds a phoneprov schema, and ``force`` is not given;
    InputError when the archive is damaged, incomplete or fails a checksum
    (before anything is written); StoreError when the database cannot be loaded;
    PhoneprovError when a file cannot be read or written (the site is left as it was).
    """
    check_passphrase(passphrase)
    site_dir = site_dir.absolute()
    try:
        return _restore(archive, site_dir, passphrase, force)
    except OSError as error:
        raise PhoneprovError(
            f"restore not done: {error.strerror or error}: {error.filename or site_dir}",
            f"Check that this user may write in {site_dir.parent} and that the disk has "
            "room; the site and its database were left as they were.",
        ) from None


def _restore(archive: Path, site_dir: Path, passphrase: str | None, force: bool) -> RestoreReport:
    occupied = site_dir.is_dir() and any(site_dir.iterdir())
    if site_dir.exists() and not site_dir.is_dir():
        raise InputError(f"{site_dir} is a file, not a folder", "Pick a folder for the site.")
    if occupied and not force:
        raise SiteExistsError(
            f"{site_dir} is not empty: restoring would replace the site in it",
            "Restore into a new folder, or pass --force to replace it (the site it holds "
            f"is kept as {site_dir.name}.before-restore-<time>).",
        )
    manifest, settings_text = verify_archive(archive, passphrase)
    target = _target_settings(site_dir, settings_text)
    kind: DumpKind = manifest["database"]["kind"]
    url = target.database_url
    if database_kind(url) != kind:
        raise InputError(
            f"the backup's snapshot is {kind}, its phoneprov.toml names a {database_kind(url)} "
            "database",
            DAMAGED,
        )
    db_file = sqlite_file(url)
    in_site = db_file is not None and db_file.is_relative_to(site_dir.resolve())
    _check_database(target, db_file, in_site=in_site, force=force)
    site_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=site_dir.parent, prefix=f".{site_dir.name}.restoring-"))
    replaced: Path | None = None
    try:
        snapshot = staging / ".database-snapshot"
        count = _extract(archive, passphrase, manifest, staging, snapshot)
        staged = load_settings(staging)
        if kind == "sqlite" and not in_site and db_file is not None:
            _move_aside(db_file)
        load_database(staged.database_url, snapshot, kind)
        snapshot.unlink()
        if site_dir.is_dir():
            _take_owner(staging, site_dir.stat())
            if occupied:
                replaced = site_dir.with_name(
                    f"{site_dir.name}.before-restore-{time.strftime('%Y%m%dT%H%M%S')}"
                )
                site_dir.rename(replaced)
            else:
                site_dir.rmdir()
        try:
            staging.rename(site_dir)
        except BaseException:
            if replaced is not None:
                replaced.rename(site_dir)  # the site goes back where it was
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RestoreReport(
        site_dir=site_dir,
        files=count,
        database=kind,
        schema_version=int(manifest["database"]["schema_version"]),
        code_schema_version=SCHEMA_VERSION,
        made_by=str(manifest.get("phoneprov", "")),
        created=str(manifest.get("created", "")),
        replaced=replaced,
    )


def _target_settings(site_dir: Path, settings_text: bytes) -> Settings:
    """The restored site's settings, read from the archive before anything is written."""
    path = site_dir / SETTINGS_FILE
    try:
        raw = tomllib.loads(settings_text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InputError(f"the backup's phoneprov.toml cannot be read: {error}", DAMAGED) from None
    return settings_from_mapping(site_dir, raw, path)


def _check_database(
    settings: Settings, db_file: Path | None, *, in_site: bool, force: bool
) -> None:
    """SiteExistsError when the database the backup names exists, unless ``force``."""
    if force or in_site:
        return  # a database in the site folder goes with the folder it replaces
    if db_file is not None:
        if db_file.exists():
            raise SiteExistsError(
                f"the SQLite database {db_file} named in the backup's phoneprov.toml exists",
                "Pass --force to replace it (it is kept as <name>.before-restore-<time>).",
            )
        return
    store = open_store(settings, migrate=False)
    try:
        version = store.schema_version()
    finally:
        store.close()
    if version:
        raise SiteExistsError(
            f"the database named in the backup's phoneprov.toml already holds a phoneprov "
            f"schema (version {version})",
            "Pass --force to replace what it holds with the backup's, or restore into an "
            "empty database.",
        )


def _move_aside(path: Path) -> None:
    """Rename a SQLite database and its journal files ``<name>.before-restore-<time>``."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for suffix in ("", "-wal", "-shm", "-journal"):
        old = path.with_name(path.name + suffix)
        if old.exists():
            old.rename(old.with_name(f"{old.name}.before-restore-{stamp}"))


def _extract(
    archive: Path, passphrase: str | None, manifest: dict[str, Any], staging: Path, snapshot: Path
) -> int:
    """Pass two: write the members into ``staging`` (the snapshot to ``snapshot``), each
    checked again against the manifest; return the number of site files."""
    count = 0
    with open_archive(archive, passphrase) as tar:
        for member in tar:
            name = member_name(member)
            if name is None:
                continue
            if name == MANIFEST:
                break
            if name == manifest["database"]["member"]:
                path = snapshot
            else:
                path = staging.joinpath(*PurePosixPath(name).parts[1:])
                count += 0 if member.isdir() else 1
            mode = member.mode & 0o777 & ~SITE_UMASK
            if member.isdir():
                path.mkdir(mode=0o750, parents=True, exist_ok=True)
                path.chmod(mode | 0o700)
                continue
            path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            handle = tar.extractfile(member)
            assert handle is not None  # a regular file, checked by member_name
            reader = Hashing(handle)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode | 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := reader.read(COPY):
                    out.write(chunk)
            os.utime(path, (member.mtime, member.mtime))
            entry = {"size": reader.size, "sha256": reader.sha256.hexdigest()}
            if entry != manifest["files"].get(name):
                raise InputError(f"{archive} changed while it was restored ({name})", DAMAGED)
    return count


def _take_owner(tree: Path, owner: os.stat_result) -> None:
    """Give ``tree`` the owner and group of the folder it replaces, when run as root:
    the service's user must read what root restored for it."""
    if os.geteuid() != 0:
        return
    for root, dirs, names in os.walk(tree):
        for name in (".", *dirs, *names):
            os.chown(Path(root) / name, owner.st_uid, owner.st_gid, follow_symlinks=False)
