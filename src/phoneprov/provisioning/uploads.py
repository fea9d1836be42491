"""Phone uploads: atomic, size-limited, versioned (SPEC §6).

A write goes to a hidden temporary file in the target folder, is fsynced, and
is renamed over the target only when complete: an interrupted upload leaves the
previous version intact. Overrides and contacts keep their previous versions
in ``<site>/versions/<folder>/`` (outside the boot directory, never served).

A plain HTTP PUT (and FTP STOR) replaces the whole file. Phones append their
logs (docs/decisions/0012): ``HEAD`` gives the size of the server's copy
(``Uploads.size``), then a PUT with ``Content-Range: bytes FIRST-LAST/*``
carries only the new tail; it appends when FIRST is the current size and is
refused with the current size (416) otherwise. FTP APPE appends the same way.
An append is a copy of the old file plus the tail, renamed over it: readers
see the old file or the new one, never half. Past the log limit an append
either drops the oldest lines or is refused, per ``[uploads] log_limit_mode``.
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
import time
from pathlib import Path

from phoneprov.config import LogLimitMode, Settings, UploadSettings
from phoneprov.errors import DiskFullError, UploadError
from phoneprov.model import MacAddress, Principal, PrincipalKind
from phoneprov.policy import Action, Reason
from phoneprov.protocols.contentrange import BadContentRange, ContentRange, parse_content_range
from phoneprov.protocols.polycom import Resource, ResourceKind, UploadKind
from phoneprov.provisioning.bootdir import BootDir
from phoneprov.provisioning.enrolment import handle_csr
from phoneprov.provisioning.gate import Gate, NotFound
from phoneprov.provisioning.quotas import Quotas
from phoneprov.provisioning.upload_writer import PART_NAME, file_size
from phoneprov.provisioning.upload_writer import RangeMismatch as RangeMismatch
from phoneprov.provisioning.upload_writer import UploadWriter as UploadWriter
from phoneprov.records import Event
from phoneprov.store import Recorder

HELD_DIR = "held"  # <site>/held/<folder>/: public-account uploads for quarantined phones
VERSIONS_DIR = "versions"  # <site>/versions/<folder>/: kept versions


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
            if PART_NAME.match(path.name) and path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


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
            self._limit_mode(kind),
        )
        writer.keep_days = self.settings.keep_days
        return writer

    def _limit_mode(self, kind: UploadKind) -> LogLimitMode:
        """Logs follow ``[uploads] log_limit_mode``; nothing else is ever cut short."""
        return self.settings.log_limit_mode if kind.is_log else "refuse"

    def held_path(self, resource: Resource) -> Path:
        """Where an upload kept aside until the phone is approved lands."""
        assert resource.upload_kind is not None
        return self.held_root / self.folders[resource.upload_kind] / resource.name.lower()

    def versions_size(self, resource: Resource) -> int:
        """Bytes of the kept versions of ``resource``'s file."""
        assert resource.upload_kind is not None
        folder = self.versions_root / self.folders[resource.upload_kind]
        if not folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in folder.glob(f"{glob.escape(resource.name.lower())}.*"))

    def held(self, resource: Resource, *, append: bool = False) -> UploadWriter:
        """A writer for an upload kept aside until the phone is approved (never served)."""
        kind = resource.upload_kind
        assert kind is not None
        path = self.held_path(resource)
        path.parent.mkdir(parents=True, exist_ok=True)
        limit = self.settings.limit_for(kind)
        return UploadWriter(path, kind, limit, append, None, 0, self._limit_mode(kind))

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


def _span(header: str | None, declared_size: int | None) -> ContentRange | None:
    """The append a PUT's ``Content-Range`` asks for; UploadError (400) when it is bad."""
    if header is None:
        return None
    try:
        span = parse_content_range(header)
    except BadContentRange as error:
        raise UploadError(str(error), "Send 'Content-Range: bytes FIRST-LAST/*'.") from None
    if declared_size is not None and declared_size != span.length:
        raise UploadError(
            f"Content-Range {header[:80]!r} names {span.length} bytes but the body has "
            f"{declared_size}",
            "Send as many bytes as the range names.",
        )
    return span


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
        content_range: str | None = None,
    ) -> tuple[Resource, UploadWriter]:
        """Authorize an upload and return its writer (atomic on commit).

        ``append`` (FTP APPE) adds to the file. ``content_range`` (an HTTP PUT's
        ``Content-Range: bytes FIRST-LAST/*``) appends when FIRST is the file's
        current size and raises RangeMismatch (416) otherwise, UploadError (400)
        when malformed or not the body's length. Raises Refused; ``declared_size`` (HTTP
        Content-Length) over the kind's limit raises UploadError (413) before
        anything is written, and DiskFullError (507, logged) when it would leave
        less than the free-space reserve, as the writer does when space runs out later.
        """
        span = _span(content_range, declared_size)
        resource = self.gate.resolve(principal, raw, ip=ip, decoded=decoded)
        decision = self.gate.check(principal, Action.WRITE, resource, ip=ip)
        if span is not None:
            path = self.folder.held_path(resource) if decision.hold else None
            current = file_size(path or self.folder.target(resource))
            if span.first != current:
                raise RangeMismatch(resource.name, span.first, current)
            append = True
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
                writer = self.folder.held(resource, append=append)
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

    def size(self, principal: Principal, raw: str, *, ip: str) -> int | None:
        """The size of the server's copy of an upload, for HEAD before an append.

        Asked as a write (the caller is about to append), so a caller who may not
        write the file gets the refusal a PUT would (Refused). None when ``raw``
        is not an upload name (a read, for the read service); NotFound when there
        is no copy yet.
        """
        resource = self.gate.resolve(principal, raw, ip=ip, decoded=False)
        if resource.kind is not ResourceKind.UPLOAD:
            return None
        decision = self.gate.check(principal, Action.WRITE, resource, ip=ip)
        path = self.folder.held_path(resource) if decision.hold else self.folder.target(resource)
        try:
            return path.stat().st_size
        except FileNotFoundError:
            raise NotFound(f"{resource.path} has no copy on the server yet") from None

    def delete(self, principal: Principal, raw: str, *, ip: str, decoded: bool = False) -> None:
        """Delete a phone's own upload. Raises Refused or NotFound."""
        resource = self.gate.resolve(principal, raw, ip=ip, decoded=decoded)
        self.gate.check(principal, Action.DELETE, resource, ip=ip)
        self.folder.existing(resource).unlink()
