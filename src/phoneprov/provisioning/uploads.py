"""Phone uploads: atomic, size-limited, versioned (SPEC §6).

A write goes to a hidden temporary file in the target folder, is fsynced, and
is renamed over the target only when complete: an interrupted upload leaves the
previous version intact. Overrides and contacts keep their previous versions
in ``<site>/versions/<folder>/`` (outside the boot directory, never served).

HTTP PUT replaces the whole file and FTP APPE appends (docs/decisions/0002).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from phoneprov.config import UploadSettings
from phoneprov.errors import UploadError
from phoneprov.protocols.polycom import Resource, UploadKind
from phoneprov.provisioning.bootdir import BootDir

_COPY_CHUNK = 1 << 20


def _human(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


class UploadWriter:
    """One upload in progress. Use ``write`` then ``commit``; ``abort`` on any failure."""

    def __init__(
        self,
        target: Path,
        kind: UploadKind,
        limit: int,
        append: bool,
        versions: Path | None,
        keep: int,
    ) -> None:
        self.target = target
        self.kind = kind
        self.limit = limit
        self.versions = versions
        self.keep = keep
        self.size = 0
        self._temp = target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}.part")
        self._file = open(self._temp, "xb")  # noqa: SIM115 - closed in commit/abort
        self._closed = False
        if append and target.is_file():
            with open(target, "rb") as old:
                while chunk := old.read(_COPY_CHUNK):
                    self.write(chunk)

    def write(self, chunk: bytes) -> None:
        """Append bytes; raises UploadError (413) past the kind's limit."""
        self.size += len(chunk)
        if self.size > self.limit:
            self.abort()
            raise UploadError(
                f"upload {self.target.name} is over the {self.kind.limit_class} limit of "
                f"{_human(self.limit)}",
                f"Raise [uploads] {self.kind.limit_class}_max in phoneprov.toml, or lower the "
                "phone's log size (log.render.file.upload.append.sizeLimit).",
                http_status=413,
            )
        self._file.write(chunk)

    def commit(self) -> int:
        """Make the upload visible atomically; return its size."""
        self._file.flush()
        if self.kind is UploadKind.KEY:
            os.fchmod(self._file.fileno(), 0o600)  # a phone's private key: owner only
        os.fsync(self._file.fileno())
        self._file.close()
        self._closed = True
        if self.versions is not None and self.target.is_file():
            self._keep_version()
        os.replace(self._temp, self.target)
        directory = os.open(self.target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return self.size

    def abort(self) -> None:
        if not self._closed:
            self._file.close()
            self._closed = True
        self._temp.unlink(missing_ok=True)

    def _keep_version(self) -> None:
        assert self.versions is not None
        self.versions.mkdir(parents=True, exist_ok=True)
        now = time.time_ns()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now / 1e9)) + f".{now % 10**9:09d}"
        shutil.copy2(self.target, self.versions / f"{self.target.name}.{stamp}")
        old = sorted(self.versions.glob(f"{self.target.name}.*"))
        for path in old[: max(0, len(old) - self.keep)]:
            path.unlink(missing_ok=True)


class UploadService:
    def __init__(
        self,
        boot: BootDir,
        versions_root: Path,
        settings: UploadSettings,
        folders: dict[UploadKind, str],
    ) -> None:
        self.boot = boot
        self.versions_root = versions_root
        self.settings = settings
        self.folders = folders

    def target(self, resource: Resource) -> Path:
        """Where an upload lands: its kind's folder, MAC in lower case (policy checked it)."""
        assert resource.upload_kind is not None
        folder = self.folders[resource.upload_kind]
        return self.boot.folder(folder) / resource.name.lower()

    def open(self, resource: Resource, *, append: bool = False) -> UploadWriter:
        kind = resource.upload_kind
        assert kind is not None
        target = self.target(resource)
        versions = None
        if kind.versioned and self.settings.keep_versions > 0:
            versions = self.versions_root / self.folders[kind]
        return UploadWriter(
            target,
            kind,
            self.settings.limit_for(kind),
            append,
            versions,
            self.settings.keep_versions,
        )

    def versions_of(self, resource: Resource) -> list[Path]:
        assert resource.upload_kind is not None
        folder = self.versions_root / self.folders[resource.upload_kind]
        return sorted(folder.glob(f"{resource.name.lower()}.*")) if folder.is_dir() else []
