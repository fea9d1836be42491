"""RFC 9457 problem documents: every error of the admin API, with the CLI's message and hint."""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web

from phoneprov.servers.admin.models import Problem

PROBLEM_TYPE = "application/problem+json"


def problem(
    status: int,
    detail: str,
    hint: str = "",
    *,
    headers: dict[str, str] | None = None,
    errors: list[str] | None = None,
) -> web.Response:
    """A problem+json response; ``title`` is the status phrase."""
    body = Problem(
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        hint=hint,
        errors=errors or [],
    )
    return web.Response(
        status=status,
        body=body.model_dump_json().encode(),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )
