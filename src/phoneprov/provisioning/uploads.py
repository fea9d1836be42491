"""Phone uploads: atomic, size-limited, versioned (SPEC §6).

A write goes to a hidden temporary file in the target folder, is fsynced, and
is renamed over the target only when complete: an interrupted upload leaves the
previous version intact. Overrides and contacts keep their previous versions
in ``<site>/versions/<folder>/`` (outside the boot directory, never served).

HTTP PUT replaces the whole file and FTP APPE appends (docs/decisions/0002).
``Uploads`` is the service the listeners call: it asks the gate, checks the
declared size, and after a committed upload records an event and enrols a CSR.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from phoneprov.config import UploadSettings
from phoneprov.errors import UploadError
from phoneprov.model import Principal, PrincipalKind
from phoneprov.policy import Action
from phoneprov.protocols.polycom import Resource, ResourceKind, UploadKind
from phoneprov.provisioning.bootdir import BootDir
from phoneprov.provisioning.enrolment import handle_csr
from phoneprov.provisioning.gate import Gate, NotFound
from phoneprov.records import Event
from phoneprov.store import Recorder

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


class UploadFolder:
    """Where each upload kind lands, and the kept versions of the files phones read back."""

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

    def existing(self, resource: Resource) -> Path:
        """The file on disk for ``resource`` (a root upload sits in its kind's folder).

        Raises NotFound when there is none.
        """
        path = self.boot.locate(resource.path)
        if not path.is_file() and resource.kind is ResourceKind.UPLOAD and not resource.folder:
            path = self.target(resource)
        if not path.is_file():
            raise NotFound(f"{resource.path} does not exist")
        return path

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


class Uploads:
    """What a phone may write and delete, for every listener of one process."""

    def __init__(self, gate: Gate, folder: UploadFolder, recorder: Recorder) -> None:
        self.gate = gate
        self.folder = folder
        self.recorder = recorder
        self.settings = gate.settings

    def open(
        self,
        principal: Principal,
        raw: str,
        *,
        ip: str,
        append: bool = False,
        decoded: bool = False,
        declared_size: int | None = None,
    ) -> tuple[Resource, UploadWriter]:
        """Authorize an upload and return its writer (atomic on commit).

        Raises Refused; ``declared_size`` (HTTP Content-Length) over the kind's
        limit raises UploadError (413) before anything is written.
        """
        resource = self.gate.resolve(principal, raw, ip=ip, decoded=decoded)
        self.gate.check(principal, Action.WRITE, resource, ip=ip)
        kind = resource.upload_kind
        assert kind is not None  # policy allows writes to upload names only
        limit = self.settings.uploads.limit_for(kind)
        if declared_size is not None and declared_size > limit:
            raise UploadError(
                f"upload {resource.name} declares {declared_size} bytes; the "
                f"{kind.limit_class} limit is {limit} bytes",
                f"Raise [uploads] {kind.limit_class}_max in phoneprov.toml.",
                http_status=413,
            )
        return resource, self.folder.open(resource, append=append)

    def committed(self, principal: Principal, resource: Resource, path: Path, size: int) -> None:
        """After a committed upload: an event on the device, and CSR enrolment.

        A CSR is enrolled only when it came over the phone's own mutual-TLS
        session: a public or per-device account could upload one for any MAC.
        """
        owner = resource.owner
        if owner is None:
            return
        detail = f"{resource.name} {size} bytes"
        self.recorder.event(Event(time.time(), owner.value, "upload", detail))
        if (
            resource.upload_kind is UploadKind.CSR
            and principal.kind is PrincipalKind.DEVICE_CERT
            and principal.mac == owner
        ):
            self.recorder.event(handle_csr(self.settings, owner, path).event)

    def delete(self, principal: Principal, raw: str, *, ip: str, decoded: bool = False) -> None:
        """Delete a phone's own upload. Raises Refused or NotFound."""
        resource = self.gate.resolve(principal, raw, ip=ip, decoded=decoded)
        self.gate.check(principal, Action.DELETE, resource, ip=ip)
        self.folder.existing(resource).unlink()
