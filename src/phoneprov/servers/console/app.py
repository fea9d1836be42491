"""The web console's aiohttp application: login, sessions, CSRF, headers, the page routes.

Mounted under ``/console/`` on the admin listener. Every response carries a
strict Content-Security-Policy (no inline script, nothing from elsewhere),
``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer``. Every POST
must carry the session's CSRF token in its form (403 otherwise), and an
action is checked against the administrator's role by ``policy.decide``
(the same rows the admin API asks) before any service is called.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp_jinja2
from aiohttp import web

from phoneprov.config import Settings
from phoneprov.policy import Action
from phoneprov.protocols.polycom import ResourceKind
from phoneprov.provisioning import admins, trail
from phoneprov.provisioning.admin_api import AdminServices
from phoneprov.provisioning.audit import escape
from phoneprov.reasons import Reason
from phoneprov.servers.console.session import Session, Sessions

HERE = Path(__file__).parent
PREFIX = "/console"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions", Sessions)
SERVICES: web.AppKey[AdminServices] = web.AppKey("services", AdminServices)
SESSION: web.RequestKey[Session] = web.RequestKey("session", Session)
security_log = logging.getLogger("phoneprov.security")
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admin_of(session: Session) -> admins.Admin:
    return admins.Admin(session.name, session.role, "password")


def may(request: web.Request, action: Action, kind: ResourceKind) -> bool:
    """True when the session's role may ``action`` the ``kind`` (policy.py's admin rows)."""
    admin = admin_of(session_of(request))
    allowed: bool = request.app[SERVICES].decide(admin, action, kind).allowed
    return allowed


async def blocking(func: Callable[..., T], *args: Any, actor: str = "", **kwargs: Any) -> T:
    """Run a service call in a thread; changes it makes are audited as ``actor``."""

    def call() -> T:
        if actor:
            with trail.acting_as(actor):
                return func(*args, **kwargs)
        return func(*args, **kwargs)

    return await asyncio.get_running_loop().run_in_executor(None, call)


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as error:
        response = error
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if not request.path.startswith(f"{PREFIX}/static/"):
        response.headers["Cache-Control"] = "no-store"
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pages need a live session (else the login page); a POST also needs its CSRF token."""
    open_paths = (f"{PREFIX}/login", f"{PREFIX}/static/")
    if request.path.startswith(open_paths):
        return await handler(request)
    session = request.app[SESSIONS].open(request)
    if session is None:
        if request.method == "POST":
            raise web.HTTPForbidden(text="Your session has ended: log in again.")
        raise web.HTTPSeeOther(f"{PREFIX}/login")
    if request.method == "POST":
        form = await request.post()
        if not session.csrf_ok(str(form.get("csrf", ""))):
            security_log.warning(
                "phoneprov-security refused ip=%s proto=https identity=%s reason=csrf path=%s",
                escape(request.remote or ""),
                escape(admin_of(session).actor),
                escape(request.path, quote=True),
            )
            raise web.HTTPForbidden(text="The form's CSRF token is missing or wrong.")
    request[SESSION] = session
    response = await handler(request)
    request.app[SESSIONS].seal(response, session)
    return response


def session_of(request: web.Request) -> Session:
    return request[SESSION]


PageFunc = Callable[[web.Request], Awaitable[dict[str, Any]]]


def page(template: str) -> Callable[[PageFunc], Handler]:
    """Render the handler's dict into ``template`` with the session and its CSRF token."""

    def decorate(func: PageFunc) -> Handler:
        @functools.wraps(func)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            context = await func(request)
            session = session_of(request)
            context.update(
                session=session,
                csrf=session.csrf,
                can_manage=may(request, Action.MANAGE, ResourceKind.FLEET),
                can_certs=may(request, Action.MANAGE, ResourceKind.CERTIFICATES),
                prefix=PREFIX,
                path=request.path,
                done=request.query.get("done", "")[:500],
                error=request.query.get("error", "")[:500],
            )
            return aiohttp_jinja2.render_template(template, request, context)

        return wrapper

    return decorate


async def login_form(request: web.Request) -> web.StreamResponse:
    return aiohttp_jinja2.render_template(
        "login.html", request, {"prefix": PREFIX, "error": "", "name": ""}
    )


async def login(request: web.Request) -> web.StreamResponse:
    """Check the name and password (argon2id, with the phone accounts' back-off); a failure
    is a security-log line naming the administrator, never the password."""
    form = await request.post()
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    services = request.app[SERVICES]
    answer = await blocking(services.login, name, password, request.remote or "")
    if isinstance(answer, admins.Admin):
        response = web.HTTPSeeOther(f"{PREFIX}/")
        request.app[SESSIONS].seal(response, Session.new(answer.name, answer.role, time.time()))
        return response
    if answer.reason is Reason.LOCKED_OUT:
        error, status = f"Too many failed logins: try again in {answer.retry_after} s.", 429
    else:
        error, status = "Wrong name or password.", 401
    return aiohttp_jinja2.render_template(
        "login.html", request, {"prefix": PREFIX, "error": error, "name": name}, status=status
    )


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther(f"{PREFIX}/login")
    Sessions.end(response)
    return response
