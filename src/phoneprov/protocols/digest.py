"""HTTP Digest access authentication, server side (RFC 7616, compatible with RFC 2617).

Hand-written because no maintained server-side digest library exists for aiohttp
or ASGI (flask-httpauth is Flask-only). Scope is what phones and curl use: MD5,
``qop=auth``. Sans-IO: the caller passes the clock value and random bytes.

Nonces are stateless and tamper-proof: ``base64(issued_at || salt || HMAC(secret,
issued_at || salt))``, so every worker process that shares the secret accepts
them. Replay is stopped by a ``NonceCounter``: each (nonce, nc) is accepted once
and nc must grow (RFC 7616 §3.4). ``NonceCounts`` keeps them in memory for one
process; nodes sharing a database pass one that keeps them there, with the time
each nonce expires, so a count accepted by one node is a replay on every other.
Expired nonces get ``stale=true`` so the client retries with the same password
without asking the user (RFC 7616 §3.3).

A response is bound to the request it came with: its ``uri`` must be the
request-target exactly as sent, query included (RFC 7616 §3.4.6), so a header
seen on ``/000000000000.cfg`` opens nothing else. Responses without ``qop``
(RFC 2069 style) carry no nonce count; they are refused unless the authority
allows them, and then each nonce is good for one such response only.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol
from urllib.request import parse_http_list, parse_keqv_list

_SALT_BYTES = 12
_MAC_BYTES = 16
# RFC 7616 §3.4: nc-value = 8LHEX. A nonce answered without qop is marked spent with a
# count above any 8-digit one, so no later response on it (with or without qop) passes.
_NC = re.compile(r"[0-9a-fA-F]{8}")
_SPENT = 1 << 32


def ha1(username: str, realm: str, password: str) -> str:
    """MD5(username:realm:password): what the store keeps instead of the password."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


class Verdict(enum.StrEnum):
    OK = "ok"
    STALE = "stale"  # well-formed and signed by us, but expired: retry with stale=true
    REPLAY = "replay"  # nc not greater than the last one seen for this nonce
    BAD_NONCE = "bad-nonce"  # not ours (forged or from another secret)
    BAD_RESPONSE = "bad-response"  # wrong password (or wrong method)
    URI_MISMATCH = "uri-mismatch"  # computed for another request-target (RFC 7616 §3.4.6)
    NO_QOP = "no-qop"  # an RFC 2069 style response, and the authority does not allow them
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A parsed ``Authorization: Digest ...`` header."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    qop: str | None
    nc: str | None
    cnonce: str | None
    algorithm: str
    opaque: str | None


def parse_authorization(header: str | None) -> Credentials | None:
    """Parse a Digest Authorization header; None when absent, not Digest or incomplete."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    try:
        fields = {k.lower(): v for k, v in parse_keqv_list(parse_http_list(rest)).items()}
    except (ValueError, IndexError):  # the stdlib parser raises IndexError on a bare "="
        return None
    required = ("username", "realm", "nonce", "uri", "response")
    if not all(fields.get(key) for key in required):
        return None
    qop = fields.get("qop")
    if qop is not None and (not fields.get("nc") or not fields.get("cnonce")):
        return None
    return Credentials(
        username=fields["username"],
        realm=fields["realm"],
        nonce=fields["nonce"],
        uri=fields["uri"],
        response=fields["response"].lower(),
        qop=qop,
        nc=fields.get("nc"),
        cnonce=fields.get("cnonce"),
        algorithm=fields.get("algorithm", "MD5"),
        opaque=fields.get("opaque"),
    )


class NonceCounter(Protocol):
    """Where the nonce counts already accepted are kept."""

    def accept(self, nonce: str, nc: int, expires: float) -> bool:
        """Record nc for nonce; False if it is not greater than the last one (a replay)."""
        ...

    def spend(self, nonce: str, expires: float) -> bool:
        """Use a nonce up (a response without qop); False if it was used before at all."""
        ...


class NonceCounts:
    """Highest nc seen per nonce in this process, bounded (oldest nonces forgotten first)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity

    def accept(self, nonce: str, nc: int, expires: float = 0.0) -> bool:
        """Record nc for nonce; False if it is not greater than the last one (a replay).

        ``expires`` is not needed here: the capacity bounds what is kept.
        """
        last = self._seen.get(nonce)
        if last is not None and nc <= last:
            return False
        self._record(nonce, nc)
        return True

    def spend(self, nonce: str, expires: float = 0.0) -> bool:
        """Use a nonce up (a response without qop); False if it was used before at all.

        Without qop there is no count to tell a second request from a copy of the
        first, so each nonce is good for one such response (RFC 7616 §5.4 and §5.5:
        limited-use nonces against replay). A legacy client then gets ``stale=true``
        and retries with a fresh nonce.
        """
        if nonce in self._seen:
            return False
        self._record(nonce, _SPENT)
        return True

    def _record(self, nonce: str, nc: int) -> None:
        self._seen[nonce] = nc
        self._seen.move_to_end(nonce)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)


class DigestAuthority:
    """Issues challenges and checks responses for one realm."""

    def __init__(
        self,
        secret: bytes,
        realm: str,
        lifetime: int = 300,
        *,
        allow_without_qop: bool = False,
        counts: NonceCounter | None = None,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("digest nonce secret must be at least 16 bytes")
        self.realm = realm
        self.lifetime = lifetime
        self.allow_without_qop = allow_without_qop
        self._secret = secret
        self.counts: NonceCounter = counts if counts is not None else NonceCounts()

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def make_nonce(self, now: float, salt: bytes) -> str:
        body = struct.pack(">Q", int(now)) + salt[:_SALT_BYTES].ljust(_SALT_BYTES, b"\0")
        return base64.urlsafe_b64encode(body + self._sign(body)).decode()

    def challenge(self, now: float, salt: bytes, *, stale: bool = False) -> str:
        """The ``WWW-Authenticate`` value for a 401."""
        value = (
            f'Digest realm="{self.realm}", qop="auth", algorithm=MD5, '
            f'nonce="{self.make_nonce(now, salt)}"'
        )
        return value + (", stale=true" if stale else "")

    def _nonce_age(self, nonce: str, now: float) -> float | None:
        try:
            raw = base64.urlsafe_b64decode(nonce.encode())
        except (ValueError, TypeError):
            return None
        if len(raw) != 8 + _SALT_BYTES + _MAC_BYTES:
            return None
        body, mac = raw[: 8 + _SALT_BYTES], raw[8 + _SALT_BYTES :]
        if not hmac.compare_digest(mac, self._sign(body)):
            return None
        issued: int = struct.unpack(">Q", body[:8])[0]
        return now - issued

    def verify(
        self, creds: Credentials, method: str, target: str, stored_ha1: str, now: float
    ) -> Verdict:
        """Check a response to the request ``method target`` against the stored HA1.

        ``target`` is the request-target exactly as it came on the request line,
        query included. Only an OK response uses up its nc (or, without qop, its
        nonce). Returns the verdict; never raises.
        """
        if creds.algorithm.upper() != "MD5" or creds.realm != self.realm:
            return Verdict.MALFORMED
        if creds.qop not in (None, "auth"):
            return Verdict.MALFORMED
        if creds.qop == "auth" and not _NC.fullmatch(creds.nc or ""):
            return Verdict.MALFORMED
        # RFC 7616 §3.4.6: the resource named by "uri" must be the one the request
        # line names. Compared as sent, before the password, so it is no oracle.
        if creds.uri != target:
            return Verdict.URI_MISMATCH
        if creds.qop is None and not self.allow_without_qop:
            return Verdict.NO_QOP
        age = self._nonce_age(creds.nonce, now)
        if age is None or age < -5:
            return Verdict.BAD_NONCE
        ha2 = hashlib.md5(f"{method}:{creds.uri}".encode()).hexdigest()
        if creds.qop == "auth":
            assert creds.nc is not None and creds.cnonce is not None
            material = f"{stored_ha1}:{creds.nonce}:{creds.nc}:{creds.cnonce}:auth:{ha2}"
        else:
            material = f"{stored_ha1}:{creds.nonce}:{ha2}"
        expected = hashlib.md5(material.encode()).hexdigest()
        if not hmac.compare_digest(expected, creds.response):
            return Verdict.BAD_RESPONSE
        if age > self.lifetime:
            return Verdict.STALE
        # After this instant the nonce is answered stale, so its count need not be kept.
        expires = now - age + self.lifetime + 1
        if creds.qop == "auth":
            assert creds.nc is not None
            fresh = self.counts.accept(creds.nonce, int(creds.nc, 16), expires)
        else:
            fresh = self.counts.spend(creds.nonce, expires)
        return Verdict.OK if fresh else Verdict.REPLAY
