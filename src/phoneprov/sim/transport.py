"""HTTP and HTTPS as a phone's libcurl uses them: a new connection (and a full TLS
handshake, no session reuse) for every file, digest auth, mutual TLS.

Hand-written on asyncio streams rather than an HTTP client library: the storm
opens thousands of connections, and the phone's behaviour (one request per
connection, ``Connection: close``) needs nothing more than HTTP/1.1 framing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from dataclasses import dataclass

from phoneprov.sim.digestclient import Challenge, authorization, parse_challenges
from phoneprov.sim.endpoint import Endpoint
from phoneprov.sim.plan import Outcome, Step

MAX_KEPT_BODY = 4 * 1024 * 1024  # configs are small; firmware is counted, not kept
MAX_HEADER_LINES = 100
READ_CHUNK = 64 * 1024


class ProtocolFailure(Exception):
    """The server's answer is not HTTP/1.x we can read."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    size: int | None  # bytes received, or the Content-Length of a HEAD answer (None: none)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def all(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]


def describe_error(error: BaseException, host: str, port: int) -> str:
    """``reason: text`` for a failed exchange; the reason groups storm failures."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"tls: server certificate verify failed: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"tls: TLS handshake or alert: {error.reason or error}"
    if isinstance(error, ConnectionRefusedError):
        return f"connect: could not connect to {host} port {port}: connection refused"
    if isinstance(error, TimeoutError):
        return f"timeout: no answer from {host} port {port} in time"
    if isinstance(error, (ConnectionResetError, asyncio.IncompleteReadError, BrokenPipeError)):
        return (
            "closed: the server closed the connection without answering (under TLS 1.3 "
            "this is how a refused client certificate looks)"
        )
    if isinstance(error, ProtocolFailure):
        return f"protocol: {error}"
    if isinstance(error, OSError):
        return f"connect: could not connect to {host} port {port}: {error.strerror or error}"
    return f"error: {error}"


async def _read_answer(reader: asyncio.StreamReader, method: str) -> Answer:
    status_line = (await reader.readline()).decode("latin-1").strip()
    if not status_line:
        # TLS 1.3 servers refuse a client certificate after the handshake: the
        # first read just ends (curl: "(52) Empty reply from server").
        raise ConnectionResetError("empty reply")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/1.") or not fields[1].isdigit():
        raise ProtocolFailure(f"not an HTTP answer: {status_line[:80]!r}")
    status = int(fields[1])
    headers: list[tuple[str, str]] = []
    for _ in range(MAX_HEADER_LINES):
        raw = (await reader.readline()).decode("latin-1")
        if raw in ("\r\n", "\n", ""):
            break
        name, _, value = raw.partition(":")
        headers.append((name.strip(), value.strip()))
    answer = Answer(status, headers, b"", 0)
    length_text = answer.header("Content-Length")
    length = int(length_text) if length_text and length_text.isdigit() else None
    if method == "HEAD":
        return Answer(status, headers, b"", length)
    if status in (204, 304) or 100 <= status < 200:
        return Answer(status, headers, b"", 0)
    kept = bytearray()
    size = 0
    if (answer.header("Transfer-Encoding") or "").lower() == "chunked":
        while True:
            chunk_size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if chunk_size == 0:
                await reader.readline()
                break
            data = await reader.readexactly(chunk_size)
            await reader.readexactly(2)
            size += len(data)
            if len(kept) < MAX_KEPT_BODY:
                kept += data
    else:
        remaining = length
        while remaining is None or remaining > 0:
            data = await reader.read(
                READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
            )
            if not data:
                if remaining is not None:
                    raise asyncio.IncompleteReadError(bytes(kept), remaining)
                break
            size += len(data)
            if remaining is not None:
                remaining -= len(data)
            if len(kept) < MAX_KEPT_BODY:
                kept += data
    return Answer(status, headers, bytes(kept), size)


class HttpTransport:
    """One phone's HTTP(S) client for one boot server."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        user_agent: str,
        ssl_context: ssl.SSLContext | None = None,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.endpoint = endpoint
        self.user_agent = user_agent
        self.ssl_context = ssl_context
        self.user = user if user is not None else endpoint.user
        self.password = password if password is not None else endpoint.password
        self.timeout = timeout
        self.can_head = True
        self.tls_version: str | None = None  # set after a TLS handshake succeeded
        self._challenge: Challenge | None = None
        self._nc = 0

    async def _exchange(
        self,
        method: str,
        target: str,
        body: bytes,
        authorization_header: str | None,
        append_from: int | None = None,
    ) -> Answer:
        host = self.endpoint.host
        reader, writer = await asyncio.open_connection(
            host,
            self.endpoint.port,
            ssl=self.ssl_context,
            server_hostname=host if self.ssl_context is not None else None,
            ssl_handshake_timeout=self.timeout if self.ssl_context is not None else None,
        )
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            if ssl_object is not None:
                self.tls_version = ssl_object.version()
            host_header = f"[{host}]" if ":" in host else host
            lines = [
                f"{method} {target} HTTP/1.1",
                f"Host: {host_header}:{self.endpoint.port}",
                f"User-Agent: {self.user_agent}",
                "Accept: */*",
                "Connection: close",
            ]
            if authorization_header:
                lines.append(f"Authorization: {authorization_header}")
            if method == "PUT":
                lines.append(f"Content-Length: {len(body)}")
                if append_from is not None and body:
                    # The phone's append: only the new bytes, where the server's copy ends.
                    last = append_from + len(body) - 1
                    lines.append(f"Content-Range: bytes {append_from}-{last}/*")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            return await _read_answer(reader, method)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    def _authorize(self, method: str, target: str) -> str | None:
        if self._challenge is None or self.user is None:
            return None
        self._nc += 1
        return authorization(
            self._challenge,
            self.user,
            self.password or "",
            method,
            target,
            self._nc,
            os.urandom(8).hex(),
        )

    async def request(self, step: Step, body: bytes = b"") -> Outcome:
        """Send one request (a new connection each time); map every failure to an Outcome."""
        target = self.endpoint.target(step.path)
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self._exchange(
                    step.method,
                    target,
                    body,
                    self._authorize(step.method, target),
                    step.append_from,
                )
                # RFC 7616 §3.3: a 401 with a (new or stale) challenge is answered once.
                if answer.status == 401 and self.user is not None:
                    challenge = parse_challenges(answer.all("WWW-Authenticate"))
                    if challenge is not None:
                        self._challenge, self._nc = challenge, 0
                        answer = await self._exchange(
                            step.method,
                            target,
                            body,
                            self._authorize(step.method, target),
                            step.append_from,
                        )
        except (
            OSError,
            ssl.SSLError,
            TimeoutError,
            asyncio.IncompleteReadError,
            ProtocolFailure,
        ) as error:
            return Outcome(0, error=describe_error(error, self.endpoint.host, self.endpoint.port))
        return Outcome(answer.status, answer.body, size=answer.size)


def client_context(
    *,
    cafile: str | None,
    certfile: str | None = None,
    keyfile: str | None = None,
    verify: bool = True,
) -> ssl.SSLContext:
    """A phone's TLS client: verifies the server against ``cafile`` (the CA that
    ``device.sec.TLS.customCaCert1`` installed), presents the device certificate.
    Session tickets are never reused: each connection is a full handshake."""
    ctx = ssl.create_default_context(cafile=cafile)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if certfile is not None:
        ctx.load_cert_chain(certfile, keyfile)
    return ctx
