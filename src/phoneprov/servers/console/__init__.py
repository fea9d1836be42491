"""The web console (issue 15): server-rendered pages on the admin listener, under ``/console/``.

``console_app(settings)`` is the aiohttp application the admin listener mounts
(``app.add_subapp(PREFIX, ...)``); docs/console.md describes the pages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp_jinja2
import jinja2
from aiohttp import web

from phoneprov.config import Settings
from phoneprov.provisioning import admins
from phoneprov.provisioning.admin_api import AdminServices
from phoneprov.provisioning.console_views import session_key
from phoneprov.servers.admin.keys import AUTHENTICATORS
from phoneprov.servers.console import actions, pages
from phoneprov.servers.console.app import (
    HERE,
    PREFIX,
    SERVICES,
    SESSIONS,
    SETTINGS,
    headers,
    login,
    login_form,
    logout,
    sessions,
)
from phoneprov.servers.console.session import Sessions

__all__ = ["PREFIX", "console_app", "mount_console"]


def console_app(settings: Settings, services: AdminServices) -> web.Application:
    """The console, to mount with ``app.add_subapp(PREFIX, console_app(settings))``."""
    app = web.Application(middlewares=[headers, sessions])
    app[SETTINGS] = settings
    app[SERVICES] = services
    app[SESSIONS] = Sessions(session_key(settings))
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_static("/static/", HERE / "static")
    pages.add_routes(app.router)
    actions.add_routes(app.router)
    return app


def mount_console(app: web.Application, services: AdminServices) -> None:
    """Serve the console under ``PREFIX`` on the admin application ``app``, and let the
    admin API accept its session cookie: for reading, or with the session's CSRF token in
    ``X-CSRF-Token`` for a change."""
    console = console_app(services.settings, services)
    app.add_subapp(PREFIX, console)
    app[AUTHENTICATORS].append(cookie_authenticator(console[SESSIONS]))


def cookie_authenticator(
    store: Sessions,
) -> Callable[[web.Request, AdminServices], Awaitable[admins.Admin | None]]:
    async def cookie(request: web.Request, services: AdminServices) -> admins.Admin | None:
        session = store.open(request)
        if session is None:
            return None
        if request.method not in ("GET", "HEAD") and not session.csrf_ok(
            request.headers.get("X-CSRF-Token", "")
        ):
            return None
        return admins.Admin(session.name, session.role, "password")

    return cookie
