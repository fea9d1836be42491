"""What a handler gets: the request, the caller and the services, with helpers that run
service calls off the event loop in the caller's name (the audit trail's actor)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.policy import Action
from phoneprov.protocols.polycom import ResourceKind
from phoneprov.provisioning import trail
from phoneprov.provisioning.admin_api import AdminServices
from phoneprov.provisioning.admins import Admin

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
MAX_BODY = 16 * 1024**2  # bytes: a CSV of 50,000 phones with a few lines each


@dataclass(frozen=True, slots=True)
class Call:
    request: web.Request
    admin: Admin | None
    services: AdminServices

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``func(*args)`` in a worker thread, recorded as done by the caller."""
        actor = self.admin.actor if self.admin is not None else "anonymous"
        with trail.acting_as(actor):
            return await asyncio.to_thread(func, *args, **kwargs)

    def may(self, action: Action, kind: ResourceKind) -> bool:
        return self.admin is not None and self.services.decide(self.admin, action, kind).allowed

    def mac(self) -> MacAddress:
        return MacAddress.parse(self.request.match_info["mac"])

    async def body(self, model: type[M]) -> M:
        """The JSON body as ``model``; InputError naming the first bad field."""
        raw = await self.request.read()
        try:
            return model.model_validate_json(raw or b"{}")
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise InputError(
                f"{where}: {first['msg']}",
                f"Send a JSON object as described by {model.__name__} in /api/v1/openapi.json.",
            ) from None

    def query(self, name: str) -> str | None:
        return self.request.query.get(name)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        text = self.request.query.get(name)
        if text is None:
            return default
        if not text.isdigit() or not low <= int(text) <= high:
            raise InputError(f"{name}={text!r} is not a number from {low} to {high}", "")
        return int(text)


def json(model: BaseModel | list[Any], status: int = 200) -> web.Response:
    if isinstance(model, list):
        text = "[" + ",".join(item.model_dump_json() for item in model) + "]"
    else:
        text = model.model_dump_json()
    return web.Response(status=status, text=text, content_type="application/json")
