"""Phone uploads: atomic, size-limited, versioned (SPEC §6).

A write goes to a hidden temporary file in the target folder, is fsynced, and
is renamed over the target only when complete: an interrupted upload leaves the
previous version intact. Overrides and contacts keep their previous versions
in ``<site>/versions/<folder>/`` (outside the boot directory, never served).

HTTP PUT replaces the whole file and FTP APPE appends (docs/decisions/0002).
An upload that runs out of disk space (or would eat into ``[uploads]
free_space_reserve``, see ``diskspace``) is discarded, its temporary file
removed first, and refused with DiskFullError; temporary files a killed server
left behind are removed by ``sweep_partial_uploads`` before the next one serves.
``Uploads`` is the service the listeners call: it asks the gate, checks the
declared size, and after a committed upload records an event and enrols a CSR.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from phoneprov.config import Settings, UploadSettings
from phoneprov.errors import DiskFullError, UploadError
from phoneprov.model import MacAddress, Principal, PrincipalKind
from phoneprov.policy import Action, Reason
from phoneprov.protocols.polycom import Resource, ResourceKind, UploadKind
from phoneprov.provisioning.bootdir import BootDir
from phoneprov.provisioning.diskspace import CHECK_EVERY, below_reserve, disk_full, is_disk_full
from phoneprov.provisioning.enrolment import handle_csr
from phoneprov.provisioning.gate import Gate, NotFound
from phoneprov.provisioning.quotas import Quotas
from phoneprov.records import Event
from phoneprov.store import Recorder

_COPY_CHUNK = 1 << 20
HELD_DIR = "held"  # <site>/held/<folder>/: public-account uploads for quarantined phones
VERSIONS_DIR = "versions"  # <site>/versions/<folder>/: kept versions
# ".<name>.<pid>.<ns>.part": an upload (or kept version) being written, see _temp_for.
_PART = re.compile(r"^\..+\.[0-9]+\.[0-9]+\.part$")


def _temp_for(target: Path) -> Path:
    """The hidden temporary file ``target`` is written to before it is renamed into place."""
    return target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}.part")


def sweep_partial_uploads(settings: Settings) -> list[Path]:
    """Remove the temporary files of uploads a killed server left; return what went.

    Call before any listener of the site serves (``run_workers``): every temporary
    file then belongs to a server that is gone. Nodes of one site each have their
    own site folder (docs/boot-server.md), so no other node's uploads are here.
    """
    removed: list[Path] = []
    for root in (settings.boot_dir, settings.site_dir / HELD_DIR, settings.site_dir / VERSIONS_DIR):
        if not root.is_dir():
            continue
        for path in sorted(root.rglob(".*.part")):
            if _PART.match(path.name) and path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def _keep_copy(source: Path, dest: Path) -> None:
    """Make ``dest`` a kept version of ``source`` as it is now.

    A hard link takes no space, so a nearly full disk still keeps versions (the
    upload then renames a new file over ``source``; the link keeps the old one).
    Where links are not possible (another filesystem) the bytes are copied to a
    temporary file, removed again if the copy fails.
    """
    try:
        os.link(source, dest)
        return
    except OSError as error:
        if is_disk_full(error):
            raise
    temp = _temp_for(dest)
    try:
        shutil.copy2(source, temp)
        os.replace(temp, dest)
    finally:
        temp.unlink(missing_ok=True)


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
        self.keep_days = 30
        self.charge: Callable[[int], None] | None = None  # counts the bytes against quotas
        # Set by the uploads service: the free space to leave ([uploads] free_space_reserve),
        # and who logs a refusal for want of space (the writer knows no principal or address).
        self.reserve = 0
        self.on_disk_full: Callable[[DiskFullError], None] | None = None
        self._next_check = CHECK_EVERY
        self._temp = _temp_for(target)
        self._closed = True
        try:
            self._file = open(self._temp, "xb")  # noqa: SIM115 - closed in commit/abort
        except OSError as error:
            self._fail(error)
        self._closed = False
        if append and target.is_file():
            try:
                with open(target, "rb") as old:
                    while chunk := old.read(_COPY_CHUNK):
                        self.write(chunk)
            except OSError as error:
                self._fail(error)

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
        try:
            self._file.write(chunk)
        except OSError as error:
            self._fail(error)
        if self.reserve and self.size >= self._next_check:
            self._next_check = self.size + CHECK_EVERY
            self.check_space(0)

    def check_space(self, incoming: int) -> None:
        """Raise DiskFullError (upload discarded) when ``incoming`` more bytes would eat
        into the reserve; the uploads service calls it with the declared size at the start."""
        reason = below_reserve(self._temp.parent, incoming, self.reserve)
        if reason:
            self._refuse(disk_full(self.target.name, self._temp.parent, reason))

    def commit(self) -> int:
        """Make the upload visible atomically; return its size.

        Raises DiskFullError (upload discarded) when the disk fills while it is flushed.
        """
        try:
            self._file.flush()
            if self.kind is UploadKind.KEY:
                os.fchmod(self._file.fileno(), 0o600)  # a phone's private key: owner only
            os.fsync(self._file.fileno())
            self._file.close()
            self._closed = True
            if self.versions is not None and self.target.is_file():
                self._keep_version()
        except OSError as error:
            self._fail(error)
        os.replace(self._temp, self.target)
        if self.charge is not None:
            self.charge(self.size)
        directory = os.open(self.target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return self.size

    def abort(self) -> None:
        """Discard the upload. The temporary file is removed before it is closed: removing
        needs no free space, while closing flushes a buffer that a full disk refuses."""
        self._temp.unlink(missing_ok=True)
        if not self._closed:
            self._closed = True
            try:
                self._file.close()  # closes the descriptor even when the flush fails
            except OSError as error:
                if not is_disk_full(error):
                    raise

    def _fail(self, error: OSError) -> NoReturn:
        """Discard the upload, then raise DiskFullError for a full disk, else ``error``."""
        self.abort()
        if is_disk_full(error):
            self._refuse(disk_full(self.target.name, self._temp.parent, "the disk is full"))
        raise error

    def _refuse(self, error: DiskFullError) -> NoReturn:
        self.abort()
        if self.on_disk_full is not None:
            self.on_disk_full(error)
        raise error

    def _keep_version(self) -> None:
        assert self.versions is not None
        self.versions.mkdir(parents=True, exist_ok=True)
        now = time.time_ns()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now / 1e9)) + f".{now % 10**9:09d}"
        _keep_copy(self.target, self.versions / f"{self.target.name}.{stamp}")
        # Kept by age, not by count alone: a burst of uploads must not push out the
        # versions from before it (the quotas bound how many a burst can add).
        old = sorted(self.versions.glob(f"{self.target.name}.*"))
        cutoff = time.time() - self.keep_days * 86400
        for path in old[: max(0, len(old) - self.keep)]:
            if path.stat().st_mtime < cutoff:
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
        self.held_root = versions_root.parent / HELD_DIR
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
        writer = UploadWriter(
            target,
            kind,
            self.settings.limit_for(kind),
            append,
            versions,
            self.settings.keep_versions,
        )
        writer.keep_days = self.settings.keep_days
        return writer

    def versions_size(self, resource: Resource) -> int:
        """Bytes of the kept versions of ``resource``'s file."""
        assert resource.upload_kind is not None
        folder = self.versions_root / self.folders[resource.upload_kind]
        if not folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in folder.glob(f"{glob.escape(resource.name.lower())}.*"))

    def held(self, resource: Resource) -> UploadWriter:
        """A writer for an upload kept aside until the phone is approved (never served)."""
        assert resource.upload_kind is not None
        folder = self.held_root / self.folders[resource.upload_kind]
        folder.mkdir(parents=True, exist_ok=True)
        kind = resource.upload_kind
        return UploadWriter(
            folder / resource.name.lower(), kind, self.settings.limit_for(kind), False, None, 0
        )

    def release(self, mac: MacAddress) -> list[Path]:
        """Move the uploads held for ``mac`` into place (its approval); return where they went."""
        moved: list[Path] = []
        if not self.held_root.is_dir():
            return moved
        for folder in sorted(p for p in self.held_root.iterdir() if p.is_dir()):
            for held in sorted(folder.glob(f"{mac.value}*")):
                target = self.boot.folder(folder.name) / held.name
                os.replace(held, target)
                moved.append(target)
        return moved


class Uploads:
    """What a phone may write and delete, for every listener of one process."""

    def __init__(self, gate: Gate, folder: UploadFolder, recorder: Recorder) -> None:
        self.gate = gate
        self.folder = folder
        self.recorder = recorder
        self.settings = gate.settings
        self.quotas = Quotas(gate)

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
        limit raises UploadError (413) before anything is written, and
        DiskFullError (507, logged) when it would leave less than the free-space
        reserve, as the writer does when space runs out later.
        """
        resource = self.gate.resolve(principal, raw, ip=ip, decoded=decoded)
        decision = self.gate.check(principal, Action.WRITE, resource, ip=ip)
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
        self.quotas.check(principal, resource, ip, declared_size or 0)
        try:
            if decision.hold:
                writer = self.folder.held(resource)
            else:
                if kind.versioned and self.folder.versions_size(resource) > (
                    self.settings.uploads.versions_max
                ):
                    self.quotas.refuse_versions(principal, resource, ip)
                writer = self.folder.open(resource, append=append)
        except DiskFullError as error:
            self._disk_full(principal, resource, ip, error)
            raise
        owner = resource.owner
        writer.charge = lambda size: self.quotas.charge(owner, ip, size)
        writer.reserve = self.settings.uploads.free_space_reserve
        writer.on_disk_full = lambda error: self._disk_full(principal, resource, ip, error)
        writer.check_space(declared_size or 0)
        return resource, writer

    def _disk_full(
        self, principal: Principal, resource: Resource, ip: str, error: DiskFullError
    ) -> None:
        """An upload refused for want of space: one security line, an event on the phone.

        ``upload-failed`` is a server fault, not a client's: fail2ban must not match it.
        """
        self.gate.audit.refused(
            protocol=principal.protocol.value,
            ip=ip,
            identity=principal.label(),
            reason=Reason.UPLOAD_FAILED.value,
            path=resource.path,
            detail=error.detail,
        )
        if resource.owner is not None:
            self.recorder.event(
                Event(time.time(), resource.owner.value, "refused", f"disk-full {resource.path}")
            )

    def committed(self, principal: Principal, resource: Resource, path: Path, size: int) -> None:
        """After a committed upload: an event on the device, and CSR enrolment.

        A CSR is enrolled only when it came over the phone's own mutual-TLS
        session: a public or per-device account could upload one for any MAC.
        """
        owner = resource.owner
        if owner is None:
            return
        detail = f"{resource.name} {size} bytes"
        if self.folder.held_root in path.parents:
            # Kept aside until `phoneprov device approve` (decisions/0008).
            self.recorder.event(Event(time.time(), owner.value, "upload-held", detail))
            return
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
