"""The FTP view of the boot directory: pyftpdlib's AbstractedFS over the phone services.

pyftpdlib asks its filesystem object whether a path is a folder, what a folder
holds and what size and date a file has. Here every answer comes from
``Listings.listing`` for the logged-in principal, so LIST, NLST, MLSD,
MLST, STAT and CWD show only what policy lets that principal read (the
phones' public account never sees another phone's uploads).

Paths handed around are the client's virtual paths (``/logs/x.log``), never
disk paths. Nothing here opens, creates, renames or removes a file: those
methods raise FilesystemError (pyftpdlib answers 550), and RETR, STOR, APPE,
DELE, SIZE and MDTM go through the phone services in ``servers/ftp/session.py``.
"""

from __future__ import annotations

import os
import posixpath
import stat
from typing import Any, NoReturn, Protocol

from pyftpdlib.exceptions import FilesystemError
from pyftpdlib.filesystems import AbstractedFS

from phoneprov.errors import PhoneprovError
from phoneprov.model import Principal
from phoneprov.provisioning.listings import Entry
from phoneprov.provisioning.services import PhoneServices
from phoneprov.provisioning.uploads import UploadWriter

_ROOT = Entry("/", True, 0, 0.0)
_DIR_MODE = stat.S_IFDIR | 0o755
_FILE_MODE = stat.S_IFREG | 0o644


class Session(Protocol):
    """What the filesystem needs from the FTP control connection it serves."""

    services: PhoneServices
    principal: Principal
    remote_ip: str


def normalized(path: str) -> str:
    """A virtual folder path with ``.`` and ``..`` resolved (never above ``/``)."""
    return posixpath.normpath("/" + path.lstrip("/"))


def _as_stat(entry: Entry) -> os.stat_result:
    mode = _DIR_MODE if entry.is_dir else _FILE_MODE
    mtime = int(entry.mtime)
    return os.stat_result((mode, 0, 0, 1, 0, 0, entry.size, mtime, mtime, mtime))


def _not_allowed() -> NoReturn:
    raise FilesystemError("Not allowed on this server")


class PolicyFS(AbstractedFS):  # type: ignore[misc]  # pyftpdlib has no type hints
    """One per logged-in session; listings are remembered for one command only."""

    def __init__(self, root: str, cmd_channel: Any) -> None:
        super().__init__("/", cmd_channel)
        self._listed: dict[str, dict[str, Entry]] = {}

    @property
    def session(self) -> Session:
        session: Session = self.cmd_channel
        return session

    def forget(self) -> None:
        """Drop remembered listings (called before every command)."""
        self._listed.clear()

    # paths: virtual only
    def ftp2fs(self, ftppath: str) -> str:
        """The client's path joined to the cwd. ``..`` is kept, not resolved, so a
        file command carrying it reaches the gate, which refuses and logs it."""
        joined = posixpath.join(self.cwd, ftppath)
        return joined if joined.startswith("/") else "/" + joined

    def fs2ftp(self, fspath: str) -> str:
        return fspath

    def validpath(self, path: str) -> bool:
        return True  # the gate checks every path it is given

    def realpath(self, path: str) -> str:
        return path

    def chdir(self, path: str) -> None:
        target = normalized(path)
        self._entries(target)
        self.cwd = target

    # listings
    def _entries(self, directory: str) -> dict[str, Entry]:
        """Name -> Entry of what this principal may see in ``directory``.

        Raises FilesystemError when it is not a folder (or not a safe path).
        """
        folder = normalized(directory)
        listed = self._listed.get(folder)
        if listed is not None:
            return listed
        session = self.session
        try:
            entries = session.services.listings.listing(
                session.principal, folder, ip=session.remote_ip
            )
        except PhoneprovError:
            raise FilesystemError("No such directory") from None
        listed = {entry.name: entry for entry in entries}
        self._listed[folder] = listed
        return listed

    def _entry(self, path: str) -> Entry:
        folder, name = posixpath.split(normalized(path))
        if not name:
            return _ROOT
        entry = self._entries(folder).get(name)
        if entry is None:
            raise FilesystemError("No such file or directory")
        return entry

    def isdir(self, path: str) -> bool:
        try:
            return self._entry(path).is_dir
        except FilesystemError:
            return False

    def isfile(self, path: str) -> bool:
        try:
            return not self._entry(path).is_dir
        except FilesystemError:
            return False

    def islink(self, path: str) -> bool:
        return False

    def lexists(self, path: str) -> bool:
        try:
            self._entry(path)
        except FilesystemError:
            return False
        return True

    def listdir(self, path: str) -> list[str]:
        return sorted(self._entries(path))

    def listdirinfo(self, path: str) -> list[str]:
        return self.listdir(path)

    def stat(self, path: str) -> os.stat_result:
        return _as_stat(self._entry(path))

    def lstat(self, path: str) -> os.stat_result:
        return self.stat(path)

    def getsize(self, path: str) -> int:
        return self._entry(path).size

    def getmtime(self, path: str) -> float:
        return self._entry(path).mtime

    def get_user_by_uid(self, uid: int) -> str:
        return "phoneprov"

    def get_group_by_gid(self, gid: int) -> str:
        return "phoneprov"

    # everything that would touch the disk directly is refused
    def open(self, filename: str, mode: str) -> NoReturn:
        _not_allowed()

    def mkstemp(
        self, suffix: str = "", prefix: str = "", dir: str | None = None, mode: str = "wb"
    ) -> NoReturn:
        _not_allowed()

    def mkdir(self, path: str) -> NoReturn:
        _not_allowed()

    def rmdir(self, path: str) -> NoReturn:
        _not_allowed()

    def remove(self, path: str) -> NoReturn:
        _not_allowed()

    def rename(self, src: str, dst: str) -> NoReturn:
        _not_allowed()

    def chmod(self, path: str, mode: int) -> NoReturn:
        _not_allowed()

    def utime(self, path: str, timeval: float) -> NoReturn:
        _not_allowed()

    def readlink(self, path: str) -> NoReturn:
        _not_allowed()


class UploadFile:
    """The file object pyftpdlib's data channel writes an upload into.

    Bytes go to an UploadWriter (hidden temporary file, size limit). The data
    channel calls ``finish(complete)`` when the transfer ends: commit makes the
    file visible atomically, anything else aborts and leaves the previous file
    as it was. ``close`` without ``finish`` (control connection lost before the
    data connection opened) aborts.
    """

    def __init__(self, writer: UploadWriter, name: str) -> None:
        self.writer = writer
        self.name = name
        self.closed = False
        self.committed = False
        self._done = False

    def write(self, chunk: bytes) -> int:
        """Raises UploadError past the kind's size limit (the writer has aborted)."""
        self.writer.write(chunk)
        return len(chunk)

    def finish(self, complete: bool) -> None:
        """Commit (``complete``) or abort, once. Raises OSError if the commit fails."""
        if self._done:
            return
        self._done = True
        if not complete:
            self.writer.abort()
            return
        try:
            self.writer.commit()
        except BaseException:
            self.writer.abort()
            raise
        self.committed = True

    def close(self) -> None:
        self.closed = True
        self.finish(False)
