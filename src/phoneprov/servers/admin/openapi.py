"""The OpenAPI 3.1 document, generated from ``routes.ROUTES`` and the pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import TypeAdapter

from phoneprov import __version__
from phoneprov.servers.admin.models import MAC_PATTERN, Problem
from phoneprov.servers.admin.problems import PROBLEM_TYPE
from phoneprov.servers.admin.routes import ROUTES
from phoneprov.servers.admin.table import Route

REF = "#/components/schemas/{model}"
PATH_PARAMS = {
    "mac": {"type": "string", "pattern": MAC_PATTERN},
    "name": {"type": "string", "minLength": 1, "maxLength": 64},
    "serial": {"type": "string", "pattern": "^(0[xX])?[0-9A-Fa-f:]{1,59}$"},
}
ERRORS = {
    400: "Bad input: the detail names the value, the hint the fix",
    401: "No credential, or a token that is unknown, expired or revoked",
    403: "The caller's role does not allow this",
    404: "No such phone, token, administrator, certificate, CSR or CRL",
    409: "Already exists",
    429: "Too many bad credentials from this address: wait Retry-After seconds",
}


def _schema(kind: Any, components: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(kind).json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    title = schema.get("title")
    if schema.get("type") == "object" and title and "properties" in schema:
        components[title] = schema
        return {"$ref": REF.format(model=title)}
    return schema


def _content(kind: Any, components: dict[str, Any]) -> dict[str, Any]:
    if isinstance(kind, str):
        return {kind: {"schema": {"type": "string"}}}
    return {"application/json": {"schema": _schema(kind, components)}}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_TYPE: {"schema": {"$ref": REF.format(model="Problem")}}},
    }


def _operation(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMS[name]}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    params += [
        {
            "name": p.name,
            "in": "query",
            "required": False,
            "schema": p.schema,
            "description": p.description,
        }
        for p in route.query
    ]
    ok: dict[str, Any] = {"description": route.summary}
    if route.response is not None:
        ok["content"] = _content(route.response, components)
    responses: dict[str, Any] = {str(route.status): ok}
    codes = {400} if params or route.body is not None else set()
    if route.action is not None:
        codes |= {401, 403, 429}
    if "{" in route.path:
        codes.add(404)
    if route.name == "createDevice":
        codes.add(409)
    codes |= route.errors
    if route.name == "readyz":
        responses["503"] = {
            "description": "Not ready: the problems say why",
            "content": _content(route.response, components),
        }
    for code in sorted(codes):
        responses[str(code)] = _problem(ERRORS[code])
    operation: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": responses,
        "security": [{"bearer": []}] if route.action is not None else [],
    }
    if route.action is not None:
        operation["description"] = (
            f"Policy: `{route.action.value}` on `{route.resource}` "
            "(docs/boot-server.md, the policy table)."
        )
    if params:
        operation["parameters"] = params
    if route.body is not None:
        operation["requestBody"] = {"required": True, "content": _content(route.body, components)}
    return operation


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route in ``ROUTES``."""
    components: dict[str, Any] = {}
    _schema(Problem, components)
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, components)
    paths["/api/v1/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "tags": ["health"],
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "phoneprov admin API",
            "version": __version__,
            "description": "Administer a phoneprov site: docs/admin-api.md.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token."}
            },
        },
    }
