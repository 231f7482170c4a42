"""One table of routes serves both the router and the OpenAPI document, so they never disagree."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type | None = None  # a msgspec Struct: the request body's schema
    status: int = 200  # the success status
    response: dict[str, Any] | None = None  # JSON schema of the success body
    auth: bool = True
    query: tuple[str, ...] = ()  # names, or "name:type" (see openapi._query_parameter)
    tags: tuple[str, ...] = field(default=())
    raw_body: str | None = None  # the media type of a body that is not JSON (a file's bytes)
    raw_response: bool = False  # the answer is a file's bytes (any type; 206 and 304 too), not JSON


def add_routes(app: web.Application, routes: list[Route]) -> None:
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
