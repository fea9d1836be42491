"""One upload being written: a hidden temporary file, renamed into place when complete.

An append starts from a copy of the file as it is and checks, before the rename,
that no other upload replaced it meanwhile (``RangeMismatch``, HTTP 416): each
committed version is whole, and no append is lost to another. Past its limit an
upload is refused (413), or, for an append under ``[uploads] log_limit_mode =
"truncate"``, keeps its newest part from the first whole line on. The uploads
service (``uploads.py``) decides who may write what and sets the writer up.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from phoneprov.config import LogLimitMode
from phoneprov.errors import DiskFullError, PhoneprovError, UploadError
from phoneprov.protocols.polycom import UploadKind
from phoneprov.provisioning.diskspace import CHECK_EVERY, below_reserve, disk_full, is_disk_full

_COPY_CHUNK = 1 << 20
# ".<name>.<pid>.<ns>.part": an upload (or kept version) being written, see _temp_for.
PART_NAME = re.compile(r"^\..+\.[0-9]+\.[0-9]+\.part$")


def _temp_for(target: Path) -> Path:
    """The hidden temporary file ``target`` is written to before it is renamed into place."""
    return target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}.part")


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


class RangeMismatch(PhoneprovError):
    """An append that does not start at the end of the server's copy (HTTP 416).

    ``size`` is the copy's size now: the phone asks again with HEAD and resends.
    """

    def __init__(self, name: str, first: int, size: int) -> None:
        super().__init__(
            f"append to {name} starts at byte {first}, but the server's copy has {size} bytes",
            "The phone sends HEAD again and resends its log from the server's size.",
        )
        self.size = size


def _identity(path: Path) -> tuple[int, int, int] | None:
    """What changes when another upload replaced or grew ``path`` (None: no file)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


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
        limit_mode: LogLimitMode = "refuse",
    ) -> None:
        self.target = target
        self.kind = kind
        self.limit = limit
        self.versions = versions
        self.keep = keep
        self.limit_mode = limit_mode
        self.size = 0  # bytes this upload sent (an append's tail: the PUT's Content-Length)
        self.total = 0  # bytes of the file being written: an append's old file, then the tail
        self.base = 0  # bytes of the old file an append starts with (not charged again)
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
        self.appending = append
        self.source: tuple[int, int, int] | None = None  # the file an append copied
        if append:
            self._copy_old()

    def _copy_old(self) -> None:
        """Start an append with the target as it is (renamed into place whole, never grown)."""
        try:
            with open(self.target, "rb") as old:
                st = os.fstat(old.fileno())
                self.source = (st.st_ino, st.st_size, st.st_mtime_ns)
                while chunk := old.read(_COPY_CHUNK):
                    self._store(chunk)
        except FileNotFoundError:
            return
        except OSError as error:
            self._fail(error)
        self.base = self.total

    def write(self, chunk: bytes) -> None:
        """Append bytes; raises UploadError (413) past the kind's limit.

        An append counts the old file too, unless ``limit_mode`` is ``truncate``:
        then only the new bytes must fit, and ``commit`` drops the oldest lines.
        """
        if self.size + len(chunk) > self.limit or (
            self.total + len(chunk) > self.limit and not self._trims
        ):
            self._over_limit()
        self.size += len(chunk)
        self._store(chunk)

    @property
    def _trims(self) -> bool:
        return self.appending and self.limit_mode == "truncate"

    def _over_limit(self) -> NoReturn:
        self.abort()
        raise UploadError(
            f"upload {self.target.name} is over the {self.kind.limit_class} limit of "
            f"{_human(self.limit)}",
            f"Raise [uploads] {self.kind.limit_class}_max in phoneprov.toml"
            + (
                ', set [uploads] log_limit_mode = "truncate" to keep the newest part of '
                "appended logs, or lower the phone's log size "
                "(log.render.file.upload.append.sizeLimit)."
                if self.kind.is_log
                else "."
            ),
            http_status=413,
        )

    def _store(self, chunk: bytes) -> None:
        self.total += len(chunk)
        try:
            self._file.write(chunk)
        except OSError as error:
            self._fail(error)
        if self.reserve and self.total >= self._next_check:
            self._next_check = self.total + CHECK_EVERY
            self.check_space(0)

    def check_space(self, incoming: int) -> None:
        """Raise DiskFullError (upload discarded) when ``incoming`` more bytes would eat
        into the reserve; the uploads service calls it with the declared size at the start."""
        reason = below_reserve(self._temp.parent, incoming, self.reserve)
        if reason:
            self._refuse(disk_full(self.target.name, self._temp.parent, reason))

    def commit(self) -> int:
        """Make the upload visible atomically; return the bytes this upload sent.

        Raises DiskFullError (upload discarded) when the disk fills while it is flushed,
        and RangeMismatch (discarded) when another upload changed the file an append
        started from.
        """
        if self.total > self.limit and not self._trims:
            self._over_limit()  # an append to a file already past a since lowered limit
        try:
            if self.total > self.limit:
                self._trim()
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
        with _REPLACING:
            if self.appending and _identity(self.target) != self.source:
                self.abort()
                raise RangeMismatch(self.target.name, self.base, file_size(self.target))
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

    def _trim(self) -> None:
        """Keep the newest ``limit`` bytes of an append, from the first whole line on.

        The phone's ``log.render.file.upload.append.limitMode`` "delete" starts the
        server's file over; dropping only the oldest lines keeps what led up to now.
        """
        self._file.flush()
        cut = self.total - self.limit
        kept = _temp_for(self.target)
        try:
            with open(self._temp, "rb") as source, open(kept, "xb") as dest:
                source.seek(cut - 1)  # the byte before the cut: is the cut at a line start?
                head = source.read(_COPY_CHUNK)
                newline = head.find(b"\n")
                whole_line_left = 0 <= newline < self.total - cut
                dest.write(head[newline + 1 :] if whole_line_left else head[1:])
                while chunk := source.read(_COPY_CHUNK):
                    dest.write(chunk)
                size = dest.tell()
        except BaseException:
            kept.unlink(missing_ok=True)
            raise
        self._temp.unlink(missing_ok=True)
        self._file.close()
        self._temp = kept
        self._file = open(kept, "ab")  # noqa: SIM115 - closed in commit/abort
        self.total = size

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


_REPLACING = threading.Lock()  # an append's "unchanged since I copied it" check, then rename


def file_size(path: Path) -> int:
    """The size of ``path``; 0 when there is none."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
