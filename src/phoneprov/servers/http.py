"""The aiohttp side of the HTTP (digest) listener: the application and its in-flight count.

The phone handlers themselves (digest and mutual TLS, reads, uploads, HEAD and
ranged appends) are in ``servers.phonehttp.phone``, the one set both phone
listeners run; ``servers.phonehttp.aio`` carries them under aiohttp, and the
HTTPS listener (``servers.phonehttp.listener``) in its own threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware


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
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
    in_flight: InFlight | None = None,
    admitted: Middleware | None = None,
) -> web.Application:
    """The aiohttp application for one listener: every request goes to ``handle``.

    ``admitted`` runs first for every request (the connection admission's middleware:
    a request reaching it has sent its headers).
    """
    middlewares: list[Middleware] = []
    if admitted is not None:
        middlewares.append(admitted)
    if in_flight is not None:
        middlewares.append(in_flight.middleware)
    app = web.Application(client_max_size=1024**3, middlewares=middlewares)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
