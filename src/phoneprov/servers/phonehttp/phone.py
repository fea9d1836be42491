"""The phone handler both phone listeners run: who is asking, then serve or store the file.

HTTP: RFC 7616 digest for the bootROM/Updater (phase 1 of the secure
bootstrap). HTTPS: mutual TLS; the client certificate's CN is the MAC
(phase 2). Every request goes to the phone services (reads, uploads) so one
policy decides. The handler is synchronous and runs in a worker thread (the
services are thread-safe: FTP has always called them from its own thread).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time

from phoneprov.errors import QuotaError, UploadError
from phoneprov.model import Principal, PrincipalKind, Protocol
from phoneprov.policy import Reason
from phoneprov.protocols import digest
from phoneprov.protocols.contentrange import unsatisfied
from phoneprov.protocols.polycom import UserAgent, parse_user_agent
from phoneprov.provisioning.client_certs import CertIdentifier
from phoneprov.provisioning.gate import NotFound, Refused
from phoneprov.provisioning.lockout import Login
from phoneprov.provisioning.render import RenderError
from phoneprov.provisioning.services import PhoneServices
from phoneprov.provisioning.uploads import RangeMismatch
from phoneprov.servers.phonehttp.message import PhoneRequest, PhoneResponse

UPLOAD_CHUNK = 64 * 1024


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
        # The identifier's per-certificate cache is an OrderedDict: one thread at a time.
        self._identify_lock = threading.Lock()

    # identity
    def _refuse_auth(self, request: PhoneRequest, reason: Reason, identity: str) -> None:
        self.services.audit.refused(
            protocol=self.protocol.value,
            ip=request.ip,
            identity=identity,
            reason=reason.value,
            path=request.path,
        )

    def _challenge(self, *, stale: bool = False) -> PhoneResponse:
        assert self.authority is not None
        header = self.authority.challenge(time.time(), os.urandom(12), stale=stale)
        return PhoneResponse.text(401, "authentication required\n", {"WWW-Authenticate": header})

    def _digest_principal(self, request: PhoneRequest) -> Principal | PhoneResponse:
        creds = digest.parse_authorization(request.headers.get("authorization"))
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
        login = Login(self.protocol.value, request.ip, account.username, identity, request.path)
        wait = self.services.lockout.refused(login)
        if wait is not None:
            return _too_many(wait)
        # The request-target as sent, query included (RFC 7616 §3.4.6).
        verdict = self.authority.verify(
            creds, request.method, request.target, account.ha1, time.time()
        )
        if verdict is digest.Verdict.STALE:
            return self._challenge(stale=True)
        if verdict is digest.Verdict.OK:
            return self.services.accounts.principal(account, self.protocol)
        self._refuse_auth(request, Reason(f"digest-{verdict.value}"), identity)
        if verdict is digest.Verdict.URI_MISMATCH:
            # RFC 7616 §3.4.6: "the server SHOULD return a 400 Bad Request error".
            return PhoneResponse.text(400, "digest uri does not match the request\n")
        if verdict is digest.Verdict.REPLAY:
            # The response was right but its nonce (count) is used up: a client that
            # reuses a nonce without qop retries with a fresh one, without asking anyone.
            return self._challenge(stale=True)
        if verdict is digest.Verdict.BAD_RESPONSE:
            locked = self.services.lockout.failed(login)
            if locked is not None:
                return _too_many(locked)
        return self._challenge()

    def _cert_principal(self, request: PhoneRequest) -> Principal | PhoneResponse:
        assert self.identifier is not None
        der = request.peer_cert
        if not der:
            self._refuse_auth(request, Reason.NO_CLIENT_CERTIFICATE, "anonymous")
            return PhoneResponse.text(403, "client certificate required\n")
        now = dt.datetime.now(dt.UTC)
        with self._identify_lock:
            facts = self.identifier.facts(der, now)
        identity = f"cert:{facts.common_name or '?'}"
        if self.identifier.revoked(facts):
            self._refuse_auth(request, Reason.CERTIFICATE_REVOKED, identity)
            return PhoneResponse.text(403, "certificate revoked\n")
        if facts.expired(now) and not self.tolerate_expired:
            self._refuse_auth(request, Reason.CERTIFICATE_EXPIRED, identity)
            return PhoneResponse.text(403, "certificate expired\n")
        if facts.mac is None:
            self._refuse_auth(request, Reason.CERTIFICATE_CN_NOT_MAC, identity)
            return PhoneResponse.text(403, "certificate common name is not a MAC\n")
        return self.services.identity.device_principal(
            PrincipalKind.DEVICE_CERT, self.protocol, facts.mac, cert_kind=facts.kind
        )

    def identify(self, request: PhoneRequest) -> Principal | PhoneResponse:
        if self.secure:
            return self._cert_principal(request)
        return self._digest_principal(request)

    # dispatch
    def handle(self, request: PhoneRequest) -> PhoneResponse:
        started = time.perf_counter()
        user_agent = request.headers.get("user-agent")
        agent = parse_user_agent(user_agent)
        identified = self.identify(request)
        if isinstance(identified, PhoneResponse):
            self._log(request, "-", identified.status, 0, started)
            return identified
        principal = identified
        try:
            if request.method == "HEAD":
                response = self._head(request, principal, agent)
            elif request.method == "GET":
                response = self._get(request, principal, agent)
            elif request.method == "PUT":
                response = self._put(request, principal)
            else:
                response = PhoneResponse.empty(405, {"Allow": "GET, HEAD, PUT"})
        except Refused as refused:
            if refused.reason is Reason.UNSAFE_PATH:
                response = PhoneResponse.text(400, "bad path\n")
            elif refused.hide:
                response = PhoneResponse.text(404, "not found\n")
            else:
                response = PhoneResponse.text(403, "forbidden\n")
        except NotFound:
            response = PhoneResponse.text(404, "not found\n")
        except RenderError:
            # The read service logged the template and line; the phone retries later.
            response = PhoneResponse.text(500, "configuration template error\n")
        except QuotaError as error:
            response = PhoneResponse.text(
                429, f"{error}\n", {"Retry-After": str(error.retry_after)}
            )
        except RangeMismatch as mismatch:
            # RFC 9110 §15.5.17: the current size, for the phone's next append.
            response = PhoneResponse.text(
                416, f"{mismatch}\n", {"Content-Range": unsatisfied(mismatch.size)}
            )
        except UploadError as error:
            response = PhoneResponse.text(error.http_status, f"{error}\n")
        except ConnectionError as error:
            # The phone went away mid-upload; the writer already discarded the partial file.
            self._log(request, principal.label(), f"aborted:{error.__class__.__name__}", 0, started)
            raise
        self.services.identity.note(
            principal, ip=request.ip, agent=agent, user_agent=user_agent or "", path=request.path
        )
        self._log(request, principal.label(), response.status, response.size, started)
        return response

    def _get(
        self, request: PhoneRequest, principal: Principal, agent: UserAgent | None
    ) -> PhoneResponse:
        grant = self.services.reads.read(principal, request.raw_path, ip=request.ip, agent=agent)
        if grant.body is not None:
            return PhoneResponse.data(
                grant.body, grant.content_type, {"Last-Modified": http_date(grant.mtime)}
            )
        assert grant.path is not None
        return PhoneResponse(
            200,
            {"Content-Type": grant.content_type, "Last-Modified": http_date(grant.mtime)},
            file=grant.path,
            size=grant.size,
        )

    def _head(
        self, request: PhoneRequest, principal: Principal, agent: UserAgent | None
    ) -> PhoneResponse:
        """An upload's size before an append (asked as a write); any other file as GET."""
        size = self.services.uploads.size(principal, request.raw_path, ip=request.ip)
        if size is None:
            return self._get(request, principal, agent)
        return PhoneResponse(200, size=size)

    def _put(self, request: PhoneRequest, principal: Principal) -> PhoneResponse:
        declared = request.content_length
        resource, writer = self.services.uploads.open(
            principal,
            request.raw_path,
            ip=request.ip,
            declared_size=declared,
            content_range=request.headers.get("content-range"),
        )
        try:
            while chunk := request.body.read(UPLOAD_CHUNK):
                writer.write(chunk)
            if declared is not None and writer.size != declared:
                raise UploadError("upload ended before Content-Length bytes arrived")
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        self.services.uploads.committed(principal, resource, writer.target, writer.size)
        # The same answer whether or not the file existed: a 201 would tell anyone
        # holding the public account which phones have files (decisions/0008).
        return PhoneResponse.empty(204)

    def _log(
        self, request: PhoneRequest, identity: str, status: int | str, size: int, started: float
    ) -> None:
        self.services.audit.access(
            protocol=self.protocol.value,
            ip=request.ip,
            identity=identity,
            method=request.method,
            path=request.path,
            status=status,
            size=size,
            duration=time.perf_counter() - started,
        )


def _too_many(seconds: int) -> PhoneResponse:
    """429 with Retry-After (RFC 6585 §4): too many wrong passwords from this address."""
    return PhoneResponse.text(
        429, f"too many failed logins; retry after {seconds} s\n", {"Retry-After": str(seconds)}
    )


def http_date(timestamp: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(timestamp))
