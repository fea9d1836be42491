"""The phone-facing HTTP and HTTPS listeners (aiohttp).

HTTP: RFC 7616 digest for the bootROM/Updater (phase 1 of the secure
bootstrap). HTTPS: mutual TLS; the client certificate's CN is the MAC
(phase 2). Both hand every request to the phone services (reads, uploads) so
one policy decides.
aiohttp is used because it is the maintained server that exposes the verified
client certificate to the handler (``transport.get_extra_info("ssl_object")``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import Awaitable, Callable

from aiohttp import ClientPayloadError, web
from aiohttp.typedefs import Middleware

from phoneprov.errors import QuotaError, UploadError
from phoneprov.model import Principal, PrincipalKind, Protocol
from phoneprov.policy import Reason
from phoneprov.protocols import digest
from phoneprov.protocols.polycom import UserAgent, parse_user_agent
from phoneprov.provisioning.client_certs import CertIdentifier
from phoneprov.provisioning.gate import NotFound, Refused
from phoneprov.provisioning.lockout import Login
from phoneprov.provisioning.render import RenderError
from phoneprov.provisioning.services import PhoneServices

UPLOAD_CHUNK = 64 * 1024


def _peer(request: web.Request) -> str:
    return request.remote or "-"


class PhoneHandler:
    """One per listener: identifies the caller, then serves or stores the file."""

    def __init__(
        self,
        services: PhoneServices,
        *,
        secure: bool,
        authority: digest.DigestAuthority | None = None,
        identifier: CertIdentifier | None = None,
    ) -> None:
        self.services = services
        self.secure = secure
        self.authority = authority
        self.identifier = identifier
        self.protocol = Protocol.HTTPS if secure else Protocol.HTTP
        self.tolerate_expired = services.settings.https.tolerate_expired_device_certs

    # identity
    def _refuse_auth(self, request: web.Request, reason: Reason, identity: str) -> None:
        self.services.audit.refused(
            protocol=self.protocol.value,
            ip=_peer(request),
            identity=identity,
            reason=reason.value,
            path=request.path,
        )

    def _challenge(self, *, stale: bool = False) -> web.Response:
        assert self.authority is not None
        header = self.authority.challenge(time.time(), os.urandom(12), stale=stale)
        return web.Response(
            status=401, text="authentication required\n", headers={"WWW-Authenticate": header}
        )

    def _digest_principal(self, request: web.Request) -> Principal | web.Response:
        creds = digest.parse_authorization(request.headers.get("Authorization"))
        if creds is None:
            return self._challenge()
        account = self.services.accounts.get(creds.username)
        identity = f"user:{creds.username}"
        if account is None or (
            account.kind == "device" and not self.services.settings.http.allow_device_accounts
        ):
            self._refuse_auth(request, Reason.UNKNOWN_USER, identity)
            return self._challenge()
        assert self.authority is not None
        # The brake on guessing comes before the password check: while locked, even
        # the right password is refused, so a 429 tells a guesser nothing.
        login = Login(self.protocol.value, _peer(request), account.username, identity, request.path)
        wait = self.services.lockout.refused(login)
        if wait is not None:
            return _too_many(wait)
        # request.raw_path is the request-target as sent, query included (RFC 7616 §3.4.6).
        verdict = self.authority.verify(
            creds, request.method, request.raw_path, account.ha1, time.time()
        )
        if verdict is digest.Verdict.STALE:
            return self._challenge(stale=True)
        if verdict is digest.Verdict.OK:
            return self.services.accounts.principal(account, self.protocol)
        self._refuse_auth(request, Reason(f"digest-{verdict.value}"), identity)
        if verdict is digest.Verdict.URI_MISMATCH:
            # RFC 7616 §3.4.6: "the server SHOULD return a 400 Bad Request error".
            return web.Response(status=400, text="digest uri does not match the request\n")
        if verdict is digest.Verdict.REPLAY:
            # The response was right but its nonce (count) is used up: a client that
            # reuses a nonce without qop retries with a fresh one, without asking anyone.
            return self._challenge(stale=True)
        if verdict is digest.Verdict.BAD_RESPONSE:
            locked = self.services.lockout.failed(login)
            if locked is not None:
                return _too_many(locked)
        return self._challenge()

    def _cert_principal(self, request: web.Request) -> Principal | web.Response:
        assert self.identifier is not None
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            self._refuse_auth(request, Reason.NO_CLIENT_CERTIFICATE, "anonymous")
            return web.Response(status=403, text="client certificate required\n")
        now = dt.datetime.now(dt.UTC)
        facts = self.identifier.facts(der, now)
        identity = f"cert:{facts.common_name or '?'}"
        if self.identifier.revoked(facts):
            self._refuse_auth(request, Reason.CERTIFICATE_REVOKED, identity)
            return web.Response(status=403, text="certificate revoked\n")
        if facts.expired(now) and not self.tolerate_expired:
            self._refuse_auth(request, Reason.CERTIFICATE_EXPIRED, identity)
            return web.Response(status=403, text="certificate expired\n")
        if facts.mac is None:
            self._refuse_auth(request, Reason.CERTIFICATE_CN_NOT_MAC, identity)
            return web.Response(status=403, text="certificate common name is not a MAC\n")
        return self.services.identity.device_principal(
            PrincipalKind.DEVICE_CERT, self.protocol, facts.mac, cert_kind=facts.kind
        )

    def identify(self, request: web.Request) -> Principal | web.Response:
        if self.secure:
            return self._cert_principal(request)
        return self._digest_principal(request)

    # dispatch
    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        agent = parse_user_agent(request.headers.get("User-Agent"))
        identified = self.identify(request)
        if isinstance(identified, web.Response):
            self._log(request, "-", identified.status, 0, started)
            return identified
        principal = identified
        raw_path = request.raw_path.split("?", 1)[0]
        try:
            if request.method in ("GET", "HEAD"):
                response = await self._get(request, principal, raw_path, agent)
            elif request.method == "PUT":
                response = await self._put(request, principal, raw_path)
            else:
                response = web.Response(status=405, headers={"Allow": "GET, HEAD, PUT"})
        except Refused as refused:
            if refused.reason is Reason.UNSAFE_PATH:
                response = web.Response(status=400, text="bad path\n")
            elif refused.hide:
                response = web.Response(status=404, text="not found\n")
            else:
                response = web.Response(status=403, text="forbidden\n")
        except NotFound:
            response = web.Response(status=404, text="not found\n")
        except RenderError:
            # The read service logged the template and line; the phone retries later.
            response = web.Response(status=500, text="configuration template error\n")
        except QuotaError as error:
            response = web.Response(
                status=429, text=f"{error}\n", headers={"Retry-After": str(error.retry_after)}
            )
        except UploadError as error:
            response = web.Response(status=error.http_status, text=f"{error}\n")
        except (ConnectionError, ClientPayloadError) as error:
            # The phone went away mid-upload; the writer already discarded the partial file.
            self._log(request, principal.label(), f"aborted:{error.__class__.__name__}", 0, started)
            raise
        self.services.identity.note(
            principal,
            ip=_peer(request),
            agent=agent,
            user_agent=request.headers.get("User-Agent", ""),
        )
        size = response.content_length or 0
        self._log(request, principal.label(), response.status, size, started)
        return response

    async def _get(
        self,
        request: web.Request,
        principal: Principal,
        raw_path: str,
        agent: UserAgent | None = None,
    ) -> web.StreamResponse:
        grant = self.services.reads.read(principal, raw_path, ip=_peer(request), agent=agent)
        if grant.body is not None:
            return web.Response(
                body=grant.body,
                content_type=grant.content_type,
                headers={"Last-Modified": _http_date(grant.mtime)},
            )
        assert grant.path is not None
        return web.FileResponse(grant.path, headers={"Content-Type": grant.content_type})

    async def _put(self, request: web.Request, principal: Principal, raw_path: str) -> web.Response:
        resource, writer = self.services.uploads.open(
            principal, raw_path, ip=_peer(request), declared_size=request.content_length
        )
        try:
            async for chunk in request.content.iter_chunked(UPLOAD_CHUNK):
                writer.write(chunk)
            if request.content_length is not None and writer.size != request.content_length:
                raise UploadError("upload ended before Content-Length bytes arrived")
            await asyncio.get_running_loop().run_in_executor(None, writer.commit)
        except BaseException:
            writer.abort()
            raise
        await asyncio.get_running_loop().run_in_executor(
            None, self.services.uploads.committed, principal, resource, writer.target, writer.size
        )
        # The same answer whether or not the file existed: a 201 would tell anyone
        # holding the public account which phones have files (decisions/0008).
        return web.Response(status=204)

    def _log(
        self, request: web.Request, identity: str, status: int | str, size: int, started: float
    ) -> None:
        self.services.audit.access(
            protocol=self.protocol.value,
            ip=_peer(request),
            identity=identity,
            method=request.method,
            path=request.path,
            status=status,
            size=size,
            duration=time.perf_counter() - started,
        )


def _too_many(seconds: int) -> web.Response:
    """429 with Retry-After (RFC 6585 §4): too many wrong passwords from this address."""
    return web.Response(
        status=429,
        text=f"too many failed logins; retry after {seconds} s\n",
        headers={"Retry-After": str(seconds)},
    )


def _http_date(timestamp: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(timestamp))


class InFlight:
    """Counts requests being handled, so a stop can wait for them.

    aiohttp's own graceful shutdown stops reading from connections at once,
    which would cut an upload whose body is still arriving; the runner first
    stops accepting, then waits here until the listener is idle.
    """

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        self.count += 1
        self._idle.clear()
        try:
            return await handler(request)
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """True when no request is in flight any more, False after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


def build_app(
    handler: PhoneHandler,
    extra_routes: list[web.RouteDef] | None = None,
    in_flight: InFlight | None = None,
    admitted: Middleware | None = None,
) -> web.Application:
    """The aiohttp application for one listener; ``extra_routes`` come first.

    ``admitted`` runs first for every request (the connection admission's middleware:
    a request reaching it has sent its headers).
    """
    middlewares: list[Middleware] = []
    if admitted is not None:
        middlewares.append(admitted)
    if in_flight is not None:
        middlewares.append(in_flight.middleware)
    app = web.Application(client_max_size=1024**3, middlewares=middlewares)
    if extra_routes:
        app.add_routes(extra_routes)
    app.router.add_route("GET", "/{tail:.*}", handler.handle)
    app.router.add_route("PUT", "/{tail:.*}", handler.handle)
    app.router.add_route("*", "/{tail:.*}", handler.handle)
    return app
