"""`GET /api/openapi.json`, built from the route table and the msgspec request structs."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from aiohttp import web

from client_proto import frames

from .. import keys

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
_USER = {
    "type": "object",
    "required": ["id", "name", "display", "bot"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "display": {"type": "string"},
        "bot": {"type": "boolean"},
    },
}
_ROOM = {
    "type": "object",
    "required": ["id", "name", "topic", "join_policy", "owner", "member_count", "last_seq"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "topic": {"type": "string"},
        "join_policy": {"type": "string", "enum": ["open", "invite"]},
        "owner": {"$ref": "#/components/schemas/User"},
        "member_count": {"type": "integer"},
        "last_seq": {"type": "integer"},
        "kind": {"type": "string", "enum": ["group", "direct"]},
        "mentions": {"type": "integer"},
    },
}
_MEMBER = {
    "type": "object",
    "required": ["user", "role", "joined"],
    "properties": {
        "user": {"$ref": "#/components/schemas/User"},
        "role": {"type": "string", "enum": ["owner", "admin", "member"]},
        "joined": {"type": "integer"},
    },
}
_ERROR_STATUSES = {
    "400": "The body is not JSON",
    "401": "No valid bearer token",
    "403": "Not allowed",
    "404": "No such thing",
    "409": "Conflict",
    "413": "Too large",
    "422": "A field is wrong; the message names it",
    "429": "Too many requests (see Retry-After)",
    "503": "Storage or bus unavailable",
}


def openapi_document(app: web.Application) -> dict[str, Any]:
    routes = app[keys.ROUTES]
    bodies = sorted({r.body for r in routes if r.body is not None}, key=lambda t: t.__name__)
    _, components = msgspec.json.schema_components(
        [*bodies, frames.Message], ref_template="#/components/schemas/{name}"
    )
    components.update(Error=_ERROR, User=_USER, Room=_ROOM, Member=_MEMBER)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.0.3",
        "info": {"title": "chatserver", "version": "1", "description": "REST API of docs/protocol.md §12"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


# The integer query parameters and the bounds the handlers enforce (422 outside them).
_INTEGER_QUERIES = {
    "before": {"minimum": 0, "maximum": frames.INT64_MAX},
    "after": {"minimum": 0, "maximum": frames.INT64_MAX},
    "limit": {"minimum": 1, "maximum": 100},
}


def _query_parameter(entry: str) -> dict[str, Any]:
    """`"limit"` or `"before:string"`: a name and, when it is not the usual one, its type.

    `before`, `after` and `limit` are integers unless said otherwise (a feed's
    `before` is an opaque string cursor); every other parameter is a string.
    """
    name, _, type_ = entry.partition(":")
    type_ = type_ or ("integer" if name in _INTEGER_QUERIES else "string")
    schema = {"type": type_, **(_INTEGER_QUERIES.get(name, {}) if type_ == "integer" else {})}
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _operation(route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": route.summary,
        "operationId": f"{route.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', route.path.lower()).strip('_')}",
        "tags": list(route.tags),
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    parameters += [_query_parameter(entry) for entry in route.query]
    if parameters:
        op["parameters"] = parameters
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{route.body.__name__}"}}},
        }
    elif route.raw_body is not None:
        op["requestBody"] = {"required": True, "content": {route.raw_body: {"schema": {"type": "string", "format": "binary"}}}}
    if route.auth:
        op["security"] = [{"bearer": []}]
    success: dict[str, Any] = {"description": "Success"}
    if route.status != 204 and route.response is not None:
        success["content"] = {"application/json": {"schema": route.response}}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    op["responses"] = {str(route.status): success}
    if route.raw_response:
        binary = {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}
        op["responses"] = {"200": {"description": "The bytes", **binary},
                           "206": {"description": "The bytes of the `Range` asked for", **binary},
                           "304": {"description": "Not modified (`If-None-Match`)"},
                           "416": {"description": "The `Range` cannot be satisfied"}}
    if route.method == "POST" and route.status == 201:
        op["responses"]["200"] = {**success, "description": "Already done (idempotent repeat)"}
    for status, description in _ERROR_STATUSES.items():
        op["responses"][status] = {"description": description, **error}
    return op
