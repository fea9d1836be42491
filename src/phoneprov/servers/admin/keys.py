"""The admin application's shared objects (aiohttp ``AppKey``s)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from phoneprov.provisioning.admin_api import AdminServices, Refusal
from phoneprov.provisioning.admins import Admin

# Who is asking: each method returns the caller, a Refusal, or None when its
# credential is absent (the next method is tried). The bearer token is the first;
# the web console adds its session cookie.
Authenticator = Callable[[web.Request, AdminServices], Awaitable[Admin | Refusal | None]]

SERVICES = web.AppKey("services", AdminServices)
AUTHENTICATORS = web.AppKey("authenticators", list[Authenticator])
Bound = Callable[[], bool]  # True while the site's listeners are bound (for /readyz)
BOUND: web.AppKey[Bound] = web.AppKey("bound")
METRICS_ALLOW = web.AppKey("metrics_allow", frozenset[str])
