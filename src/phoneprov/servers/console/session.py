"""Console sessions: a signed and encrypted cookie (Fernet), with idle and absolute timeouts.

The cookie holds the administrator's name and role, the session's CSRF token,
when the session started and when it was last used; the server keeps nothing.
Fernet (AES-128-CBC with HMAC-SHA256) makes it unreadable and unforgeable
without the site's key (``<site>/pki/console-session.key``). A session ends
``IDLE`` seconds after its last request or ``ABSOLUTE`` seconds after the
login, whichever comes first; each request renews the idle clock.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import dataclass, replace

from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken

COOKIE = "phoneprov_console"
IDLE = 30 * 60  # seconds without a request
ABSOLUTE = 12 * 3600  # seconds after the login


@dataclass(frozen=True, slots=True)
class Session:
    name: str
    role: str
    csrf: str
    started: float
    seen: float

    @classmethod
    def new(cls, name: str, role: str, now: float) -> Session:
        return cls(name, role, secrets.token_urlsafe(32), now, now)

    def csrf_ok(self, token: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), token.encode())


class Sessions:
    """Seals sessions into cookies and opens them, with the site's key."""

    def __init__(self, key: bytes) -> None:
        self.fernet = Fernet(key)

    def open(self, request: web.Request, now: float | None = None) -> Session | None:
        """The request's live session, or None (no cookie, forged, expired or idle)."""
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        when = time.time() if now is None else now
        try:
            data = json.loads(self.fernet.decrypt(cookie.encode(), ttl=IDLE))
            session = Session(
                str(data["n"]), str(data["r"]), str(data["c"]), float(data["s"]), float(data["t"])
            )
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None
        if when - session.seen > IDLE or when - session.started > ABSOLUTE:
            return None
        return session

    def seal(
        self, response: web.StreamResponse, session: Session, now: float | None = None
    ) -> None:
        """Set the cookie for ``session``, its idle clock restarted."""
        fresh = replace(session, seen=time.time() if now is None else now)
        body = json.dumps(
            {"n": fresh.name, "r": fresh.role, "c": fresh.csrf, "s": fresh.started, "t": fresh.seen}
        )
        response.set_cookie(
            COOKIE,
            self.fernet.encrypt(body.encode()).decode(),
            max_age=IDLE,
            path="/",
            secure=True,  # the admin listener is HTTPS only
            httponly=True,
            samesite="Strict",
        )

    @staticmethod
    def end(response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE, path="/")
