"""What one admin API route is: method, path, who may call it, bodies, handler.

``routes.ROUTES`` gathers every route module's rows; the aiohttp router, the
role check and the OpenAPI document are all built from them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from phoneprov.policy import Action
from phoneprov.protocols.polycom import ResourceKind
from phoneprov.servers.admin.call import Call

Handler = Callable[[Call], Awaitable[web.StreamResponse]]
VIEW, MANAGE = Action.VIEW, Action.MANAGE


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter: name, JSON Schema, what it does."""

    name: str
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    name: str  # the operationId
    summary: str
    handler: Handler
    action: Action | None = None  # None: no credential needed
    resource: ResourceKind | None = None
    body: Any = None  # a pydantic model, or a media type ("text/csv")
    response: Any = None  # a pydantic model, list[model], a media type, or None
    status: int = 200
    query: tuple[Param, ...] = ()
    tag: str = "devices"
    errors: frozenset[int] = frozenset()  # statuses besides those openapi.py infers (409...)


LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Rows per page.")
