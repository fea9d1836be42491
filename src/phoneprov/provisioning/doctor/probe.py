"""Network probes for ``phoneprov doctor``: what a listener sends, as raw facts.

TLS goes through pyOpenSSL because Python's ``ssl`` exposes only the leaf of
the peer's chain; phones judge the whole chain the server sends, so that is
what we must see (with the CertificateRequest and its CA names). The probe
does not verify anything itself: the judging is in ``doctor.chain``.
Each probe is bounded by a timeout and returns an error text instead of
raising for network trouble.
"""

from __future__ import annotations

import ftplib
import select
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from cryptography import x509
from OpenSSL import SSL, crypto

from phoneprov import __version__
from phoneprov.pki.keys import PrivateKey
from phoneprov.protocols.tftp import codec as tftp_codec

USER_AGENT = f"phoneprov-doctor/{__version__}"
MAX_BODY = 1024 * 1024  # config files are small; a bigger answer is cut, not buffered
# TLS 1.2 suites per server key type: a server holding an ECDSA and an RSA certificate
# (phoneprov does; old phones only do RSA) shows each one to the matching client.
# SECLEVEL=0 lets the probe talk to old servers (SHA-1, TLS 1.0): it inspects, it trusts nothing.
CIPHERS = {
    "RSA": b"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"
    b"ECDHE-RSA-CHACHA20-POLY1305:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA:"
    b"@SECLEVEL=0",
    "ECDSA": b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    b"ECDHE-ECDSA-CHACHA20-POLY1305:@SECLEVEL=0",
}
CERT_REQUEST_STATE = b"SSLv3/TLS read server certificate request"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class TlsProbe:
    """What one TLS handshake showed: the chain sent, the CertificateRequest, the answer."""

    kind: str  # RSA or ECDSA: the key type the probe offered suites for
    chain: tuple[x509.Certificate, ...] = ()
    requested: bool = False
    ca_names: tuple[tuple[str, bytes], ...] = ()
    protocol: str = ""
    cipher: str = ""
    error: str = ""
    answer: HttpAnswer | None = None
    states: frozenset[bytes] = field(default_factory=frozenset)


def _name_text(name: crypto.X509Name) -> str:
    parts = [
        f"{k.decode(errors='replace')}={v.decode(errors='replace')}"
        for k, v in name.get_components()
    ]
    return ",".join(parts) or "(empty name)"


def _retry(
    conn: SSL.Connection, sock: socket.socket, deadline: float, action: Callable[[], T]
) -> T:
    """Run a pyOpenSSL call on a non-blocking socket until it completes or time runs out."""
    while True:
        try:
            return action()
        except (SSL.WantReadError, SSL.WantWriteError) as error:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out") from None
            want_read = isinstance(error, SSL.WantReadError)
            select.select([sock] if want_read else [], [] if want_read else [sock], [], left)


def _request(host: str, path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


def parse_http(raw: bytes) -> HttpAnswer | None:
    """Parse an HTTP/1.x answer read to the end; None when it is not one."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    return HttpAnswer(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body)


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


def _read_all(conn: SSL.Connection, sock: socket.socket, deadline: float) -> bytes:
    data = bytearray()
    while len(data) < MAX_BODY:
        try:
            chunk = _retry(conn, sock, deadline, lambda: conn.recv(65536))
        except (SSL.ZeroReturnError, SSL.SysCallError):
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


def probe_tls(
    host: str,
    port: int,
    *,
    kind: str,
    server_name: str,
    client: tuple[x509.Certificate, PrivateKey] | None = None,
    path: str | None = None,
    timeout: float = 5.0,
) -> TlsProbe:
    """Handshake with ``host:port`` offering only ``kind`` (RSA/ECDSA) TLS 1.2 suites.

    ``server_name`` goes in SNI (not for IP literals); ``client`` is sent when the
    server asks; ``path`` is fetched with GET after the handshake. Never raises
    for network or TLS trouble: ``error`` says what happened.
    """
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    # The probe records the chain; judging it is doctor.chain's job.
    ctx.set_verify(SSL.VERIFY_NONE, lambda *_: True)
    ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_cipher_list(CIPHERS[kind])
    states: set[bytes] = set()
    ctx.set_info_callback(lambda conn, _where, _ret: states.add(conn.get_state_string()))
    if client is not None:
        ctx.use_certificate(client[0])
        ctx.use_privatekey(client[1])
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as refused:
        return TlsProbe(kind, error=f"cannot connect to {host}:{port}: {refused}")
    with sock:
        sock.setblocking(False)
        conn = SSL.Connection(ctx, sock)
        if not _is_ip(server_name):
            conn.set_tlsext_host_name(server_name.encode("idna"))
        conn.set_connect_state()
        problem = ""
        answer: HttpAnswer | None = None
        try:
            _retry(conn, sock, deadline, conn.do_handshake)
            if path is not None:
                request = _request(server_name, path)
                _retry(conn, sock, deadline, lambda: conn.sendall(request))
                answer = parse_http(_read_all(conn, sock, deadline))
                if answer is None:
                    problem = f"the server's answer to GET {path} is not HTTP"
        except (SSL.Error, OSError) as failure:
            problem = _tls_error(failure)
        chain = tuple(conn.get_peer_cert_chain(as_cryptography=True) or ())
        names = tuple((_name_text(n), n.der()) for n in (conn.get_client_ca_list() or []))
        return TlsProbe(
            kind,
            chain,
            CERT_REQUEST_STATE in states,
            names,
            conn.get_protocol_version_name(),
            conn.get_cipher_name() or "",
            problem,
            answer,
            frozenset(states),
        )


def _tls_error(failure: BaseException) -> str:
    if isinstance(failure, SSL.Error) and failure.args and isinstance(failure.args[0], list):
        reasons = [str(item[2]) for item in failure.args[0] if len(item) > 2]
        return "TLS error: " + ("; ".join(reasons) or "handshake failed")
    if isinstance(failure, SSL.SysCallError):
        return "the server closed the connection during the handshake"
    return str(failure) or type(failure).__name__


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def fetch_digest(url: str, user: str, password: str, timeout: float = 5.0) -> HttpAnswer:
    """GET ``url`` as a bootROM does: HTTP with digest authentication (RFC 7616).

    Returns the final answer (401 when the credentials are refused); raises OSError
    when the server cannot be reached.
    """
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, url, user, password)
    opener = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(manager))
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with opener.open(request, timeout=timeout) as response:
            return HttpAnswer(
                response.status,
                response.reason,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(MAX_BODY),
            )
    except urllib.error.HTTPError as error:
        with error:
            return HttpAnswer(
                error.code,
                str(error.reason),
                {k.lower(): v for k, v in error.headers.items()},
                error.read(MAX_BODY),
            )
    except urllib.error.URLError as error:
        raise OSError(str(error.reason)) from None


def ftp_banner(host: str, port: int, timeout: float = 5.0) -> str:
    """Connect to an FTP listener and return its greeting; raises OSError or ftplib.Error."""
    client = ftplib.FTP(timeout=timeout)
    try:
        return client.connect(host, port)
    finally:
        client.close()


def tftp_read_request(
    host: str, port: int, filename: str, timeout: float = 3.0
) -> tftp_codec.Packet:
    """Send an RRQ (RFC 1350 §4) and return the first answer (DATA, OACK or ERROR).

    A transfer that started is aborted with an ERROR so the server stops
    retransmitting. Raises TimeoutError without an answer, OSError on ICMP
    refusal, TftpError for a malformed answer.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        request = tftp_codec.Request(tftp_codec.Opcode.RRQ, filename, tftp_codec.Mode.OCTET)
        sock.sendto(tftp_codec.encode(request), (host, port))
        data, peer = sock.recvfrom(65536)
        packet = tftp_codec.decode(data)
        if isinstance(packet, tftp_codec.Data | tftp_codec.OAck):
            sock.sendto(
                tftp_codec.error_packet(tftp_codec.ErrorCode.NOT_DEFINED, "doctor: probe done"),
                peer,
            )
        return packet


def header(answer: HttpAnswer | None, name: str) -> str:
    return answer.headers.get(name, "") if answer is not None else ""
