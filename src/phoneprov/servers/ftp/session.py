"""One FTP session: pyftpdlib's control and data channels over the phone services.

Every command that touches a file goes through the phone services, as HTTP does:
RETR, SIZE and MDTM through ``read``, STOR and APPE through ``open_upload``
(the atomic, size-limited upload service), DELE through ``delete``, listings
through ``listing`` (servers/ftp/filesystem.py). Replies: 550 for a refused or missing
read (one answer, so nobody can probe which MACs exist), 553 for a name that
may not be written, 552 past the upload size limit, 452 when the disk is
full or the upload would eat into the free-space reserve. One access line per
command that touches files and per transfer; refusals write their security
line in the gate (logins and size limits here).
"""

from __future__ import annotations

import errno
import io
import logging
import socket
import time
from pathlib import Path
from typing import Any

from OpenSSL import SSL
from pyftpdlib.exceptions import _RetryError
from pyftpdlib.handlers import DTPHandler, FTPHandler, TLS_DTPHandler, TLS_FTPHandler
from pyftpdlib.handlers.ftp.producers import FileProducer

from phoneprov.errors import DiskFullError, PhoneprovError, QuotaError, UploadError
from phoneprov.model import MacAddress, Principal, PrincipalKind, Protocol
from phoneprov.policy import Reason
from phoneprov.protocols.paths import safe_relative
from phoneprov.protocols.polycom import Resource, classify
from phoneprov.provisioning.gate import NotFound, Refused
from phoneprov.provisioning.reads import ReadGrant
from phoneprov.provisioning.services import PhoneServices
from phoneprov.provisioning.uploads import UploadWriter
from phoneprov.servers.ftp.filesystem import PolicyFS, UploadFile

SEND_CHUNK = 1 << 20  # sendfile() per call: fewer wake-ups on firmware images
log = logging.getLogger("phoneprov.server")

_RESETS = {errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EPIPE}
_DISCONNECTED = _RESETS | {errno.ENOTCONN, errno.ESHUTDOWN, errno.EBADF}
_FILE_COMMANDS = {"RETR", "STOR", "APPE", "DELE", "SIZE", "MDTM"}
_LISTINGS = {"LIST", "NLST", "MLSD"}
_LOGGED = _FILE_COMMANDS | _LISTINGS | {"MLST", "STAT"}
_ANONYMOUS = Principal(PrincipalKind.ANONYMOUS, Protocol.FTP, "")


class _Body(io.BytesIO):
    """A file served from memory (small files, the public master file)."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


class PhoneDTP(DTPHandler):  # type: ignore[misc]  # pyftpdlib has no type hints
    """Data channel: commits an upload only when it arrived whole.

    pyftpdlib counts any end of the data connection as the end of the file
    (RFC 959 stream mode). A connection reset is not an end: the upload is
    discarded. Past the size limit the reply is 552 and the upload discarded.
    """

    ac_out_buffer_size = SEND_CHUNK

    def __init__(self, sock: socket.socket, cmd_channel: Any) -> None:
        self.interrupted = False
        super().__init__(sock, cmd_channel)
        if not self.connected:
            # Reset before it was accepted: pyftpdlib would leave the transfer
            # queued and the client waiting for a reply until the idle timeout.
            cmd_channel.data_connection_lost()

    def recv(self, buffer_size: int) -> bytes:
        try:
            data: bytes = self.socket.recv(buffer_size)
        except SSL.SysCallError as error:
            # Under TLS pyftpdlib's mixin (our caller) turns this into an end of
            # file; mark a reset first so the upload is discarded, not committed.
            self.interrupted = bool(error.args) and error.args[0] in _RESETS
            raise
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise _RetryError from error
            if error.errno not in _DISCONNECTED:
                raise
            self.interrupted = error.errno in _RESETS
            data = b""
        if not data:
            self.handle_close()
        return data

    def handle_error(self) -> None:
        try:
            raise  # pyftpdlib calls handle_error inside its except block
        except UploadError as error:
            self.refuse_over_limit(error)
        except BaseException:
            super().handle_error()

    def refuse_over_limit(self, error: UploadError) -> None:
        """The upload passed its size limit (the writer has discarded it): reply 552; or
        the disk filled: 452 (RFC 959 §4.2.2; the uploads service wrote the security line)."""
        if isinstance(error, DiskFullError):
            self._resp = (f"452 {error}", logging.getLogger("pyftpdlib").warning)
        else:
            self.cmd_channel.over_limit(getattr(self.file_obj, "name", ""), str(error))
            self._resp = (f"552 {error}", logging.getLogger("pyftpdlib").info)
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        listing = self.file_obj is None and self.cmd in _LISTINGS
        upload = self.file_obj if isinstance(self.file_obj, UploadFile) else None
        if upload is not None:
            if self.interrupted:
                self.transfer_finished = False
                self._resp = (
                    "426 Connection reset; upload discarded.",
                    logging.getLogger("pyftpdlib").info,
                )
            try:
                upload.finish(self.receive and self.transfer_finished)
            except DiskFullError as error:
                self.transfer_finished = False
                self._resp = (f"452 {error}", logging.getLogger("pyftpdlib").warning)
            except OSError as error:
                log.error("FTP upload %s could not be saved: %s", upload.name, error)
                self.transfer_finished = False
                self._resp = (
                    "451 Upload could not be saved; try again.",
                    logging.getLogger("pyftpdlib").warning,
                )
        super().close()
        if listing:
            self.cmd_channel.log_transfer(
                self.cmd, "", False, self.transfer_finished, 0.0, self.get_transmitted_bytes()
            )


class PhoneFTPHandler(FTPHandler):  # type: ignore[misc]  # pyftpdlib has no type hints
    """One control connection. Class attributes are set per server by ``handler_class``."""

    services: PhoneServices
    remote_ip: str
    fs: PolicyFS | None
    data_channel: Any
    _restart_position: int
    _current_type: str
    _last_response: str
    _in_dtp_queue: Any
    _out_dtp_queue: Any
    abstracted_fs = PolicyFS
    dtp_handler = PhoneDTP
    banner = "phoneprov FTP ready."
    max_login_attempts = 3
    timeout = 300

    def __init__(self, conn: socket.socket, server: Any, ioloop: Any = None) -> None:
        self.principal = _ANONYMOUS
        self.seen_mac: MacAddress | None = None
        self.transfer: tuple[str, float] = ("", 0.0)
        self.receiving: tuple[Resource, UploadWriter] | None = None  # STOR/APPE in progress
        self.command_started = time.perf_counter()
        super().__init__(conn, server, ioloop)

    @property
    def protocol(self) -> Protocol:
        return Protocol.FTPS if getattr(self, "_ssl_established", False) else Protocol.FTP

    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        self.command_started = time.perf_counter()
        if self.fs is not None:
            self.fs.forget()
        super().pre_process_command(line, cmd, arg)

    def ftp_PASS(self, line: str) -> None:
        if self.username and not self.authenticated:
            wait = self.authorizer.locked_for(self.username, self)
            if wait is not None:
                # RFC 959 §4.2: 421 closes the control connection; the password is
                # not even checked, so the reply tells a guesser nothing.
                self.respond(f"421 Too many failed logins; try again in {wait} seconds.")
                self.close_when_done()
                return
        super().ftp_PASS(line)

    def handle_auth_success(self, home: str, password: str, msg_login: str) -> None:
        super().handle_auth_success(home, "", msg_login)  # the password is not kept

    # reads
    def _read(self, path: str) -> ReadGrant | None:
        """The grant for ``path``, or None after replying 550 (refused or missing: one
        answer) or 451 (a template failed; the read service logged it)."""
        try:
            return self.services.reads.read(self.principal, path, ip=self.remote_ip, decoded=True)
        except (Refused, NotFound):
            self.respond("550 No such file.")
        except PhoneprovError:
            self.respond("451 The file could not be prepared; try again later.")
        return None

    def ftp_RETR(self, file: str) -> str | None:
        rest = self._restart_position
        self._restart_position = 0
        grant = self._read(file)
        self._note(file)
        if grant is None:
            return None
        if rest > grant.size:
            self.respond(
                f"554 REST position {rest} is past the end of the file ({grant.size} bytes)."
            )
            return None
        fd: io.BufferedIOBase
        if grant.body is not None:
            fd = _Body(grant.body, file)
        else:
            assert grant.path is not None
            fd = _open_for_sending(grant.path)
        fd.seek(rest)
        self.transfer = (file, time.perf_counter())
        self.push_dtp_data(
            FileProducer(fd, self._current_type), isproducer=True, file=fd, cmd="RETR"
        )
        return file

    def ftp_SIZE(self, path: str) -> None:
        if self._current_type == "a":
            self.respond("550 SIZE not allowed in ASCII mode (send TYPE I first).")
            return
        grant = self._read(path)
        if grant is not None:
            self.respond(f"213 {grant.size}")

    def ftp_MDTM(self, path: str) -> str | None:
        grant = self._read(path)
        if grant is None:
            return None
        self.respond("213 " + time.strftime("%Y%m%d%H%M%S", time.gmtime(grant.mtime)))
        return path

    # writes
    def ftp_STOR(self, file: str, mode: str = "w") -> str | None:
        append = "a" in mode
        cmd = "APPE" if append else "STOR"
        if self._restart_position:
            self._restart_position = 0
            self.respond("554 Resuming an upload is not supported; send the whole file.")
            return None
        try:
            resource, writer = self.services.uploads.open(
                self.principal, file, ip=self.remote_ip, append=append, decoded=True
            )
        except Refused:
            self.respond("553 File name not allowed.")
            return None
        except QuotaError as error:
            self.respond(f"552 {error}")  # the quota service wrote the security line
            return None
        except DiskFullError as error:
            self.respond(f"452 {error}")  # RFC 959 §4.2.2; the uploads service logged it
            return None
        except UploadError as error:
            self.over_limit(file, str(error))
            self.respond(f"552 {error}")
            return None
        except OSError as error:
            log.error("FTP upload %s could not be opened: %s", file, error)
            self.respond("451 Upload could not be started; try again.")
            return None
        finally:
            self._note(file)
        upload = UploadFile(writer, file)
        self.receiving = (resource, writer)
        self.transfer = (file, time.perf_counter())
        if self.data_channel is not None:
            self.respond("125 Data connection already open. Transfer starting.")
            self.data_channel.file_obj = upload
            self.data_channel.enable_receiving(self._current_type, cmd)
        else:
            self.respond("150 File status okay. About to open data connection.")
            self._in_dtp_queue = (upload, cmd)
        return file

    def ftp_APPE(self, file: str) -> str | None:
        if self._restart_position:
            self._restart_position = 0
            self.respond("450 APPE after REST is not supported.")
            return None
        return self.ftp_STOR(file, mode="a")

    def ftp_DELE(self, path: str) -> str | None:
        try:
            self.services.uploads.delete(self.principal, path, ip=self.remote_ip, decoded=True)
        except (PhoneprovError, OSError):
            self.respond("550 No such file.")
            return None
        finally:
            self._note(path)
        self.respond("250 File removed.")
        return path

    def data_connection_lost(self) -> None:
        """The data connection died before the transfer started: reply 425, drop the file."""
        queued = self._in_dtp_queue or self._out_dtp_queue
        if queued is None:
            return
        file = queued[0] if queued is self._in_dtp_queue else queued[2]
        self._in_dtp_queue = self._out_dtp_queue = None
        if file is not None:
            file.close()
        self.respond("425 Data connection lost; transfer not done.")

    def over_limit(self, file: str, detail: str) -> None:
        """An upload refused for its size: one security line (the reply is 552)."""
        self.services.audit.refused(
            protocol=self.protocol.value,
            ip=self.remote_ip,
            identity=self.principal.label(),
            reason=Reason.OVER_SIZE_LIMIT.value,
            path=file,
            detail=detail,
        )

    def on_file_received(self, file: str) -> None:
        if self.receiving is not None:
            resource, writer = self.receiving
            self.receiving = None
            self.services.uploads.committed(self.principal, resource, writer.target, writer.size)

    # device records
    def _note(self, path: str) -> None:
        """Record a sighting. The public account carries no MAC: a session is
        taken to be the phone whose MAC starts the first file name it asks for
        (a phone asks for its own <MAC>.cfg, then writes <MAC>-boot.log)."""
        principal = self.principal
        if principal.kind not in (PrincipalKind.BOOTSTRAP, PrincipalKind.DEVICE_ACCOUNT):
            return
        if principal.mac is None:
            if self.seen_mac is None:
                self.seen_mac = self._owner(path)
            if self.seen_mac is None:
                return
            principal = Principal(
                principal.kind, principal.protocol, principal.name, mac=self.seen_mac
            )
        self.services.identity.note(principal, ip=self.remote_ip, agent=None)

    def _owner(self, path: str) -> MacAddress | None:
        try:
            relative = safe_relative(path, already_decoded=True)
        except PhoneprovError:
            return None
        owner = classify(relative, self.services.settings.policy.bootstrap_files).owner
        return None if owner is None or owner.is_wildcard else owner

    # access log: one line per command that touches files, one per transfer
    def log_cmd(self, cmd: str, arg: str, respcode: int, respstr: str) -> None:
        if cmd not in _LOGGED:
            return
        if respcode in (125, 150):
            if cmd in _LISTINGS:
                self.transfer = (arg, self.command_started)
            return  # the data channel writes the line when the transfer ends
        self._access_line(cmd, arg, respcode, 0, time.perf_counter() - self.command_started)

    def log_transfer(
        self, cmd: str, filename: str, receive: bool, completed: bool, elapsed: float, bytes: int
    ) -> None:
        status = 226 if completed else 426
        last = self._last_response[:3]
        if not completed and last.isdigit() and last[0] in "45":
            status = int(last)
        self._access_line(
            cmd, self.transfer[0] or filename, status, bytes, time.perf_counter() - self.transfer[1]
        )

    def _access_line(self, cmd: str, path: str, status: int, size: int, duration: float) -> None:
        self.services.audit.access(
            protocol=self.protocol.value,
            ip=self.remote_ip,
            identity=self.principal.label(),
            method=cmd,
            path=path,
            status=status,
            size=size,
            duration=duration,
        )


class PhoneTlsDTP(TLS_DTPHandler, PhoneDTP):  # type: ignore[misc]
    """Data channel of an FTPS session (TLS under PROT P, RFC 4217; no sendfile then)."""

    def handle_error(self) -> None:
        # pyftpdlib's TLS mixin comes first in the MRO and would treat the size
        # limit as an internal error.
        try:
            raise  # pyftpdlib calls handle_error inside its except block
        except UploadError as error:
            self.refuse_over_limit(error)
        except BaseException:
            super().handle_error()


class PhoneFTPSHandler(TLS_FTPHandler, PhoneFTPHandler):  # type: ignore[misc]
    """Explicit FTPS: AUTH TLS, PBSZ, PROT on top of the phone handler."""

    dtp_handler = PhoneTlsDTP


def _open_for_sending(path: Path) -> io.BufferedIOBase:
    """A file the read service granted for streaming (sendfile needs a real descriptor)."""
    return open(path, "rb")  # closed by pyftpdlib's data channel
