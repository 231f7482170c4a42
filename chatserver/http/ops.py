"""Operations: health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .. import keys
from .body import json_response
from .openapi import openapi_document
from .routes import Route


async def _checks(app: web.Application) -> dict[str, bool]:
    storage_ok = await app[keys.DB].ping()
    return {"storage": storage_ok, "bus": bool(app[keys.BUS].healthy)}


async def healthz(request: web.Request) -> web.Response:
    """200 when storage and bus answer, else 503 (docs/protocol.md §12.9)."""
    checks = await _checks(request.app)
    ok = all(checks.values())
    return json_response({"status": "ok" if ok else "unavailable", **checks}, 200 if ok else 503)


async def readyz(request: web.Request) -> web.Response:
    """Ready to take traffic: dependencies answer and the node is not draining."""
    checks = await _checks(request.app)
    checks["draining"] = request.app[keys.HUB].draining
    ok = checks["storage"] and checks["bus"] and not checks["draining"]
    return json_response({"status": "ok" if ok else "unavailable", **checks}, 200 if ok else 503)


async def livez(request: web.Request) -> web.Response:
    """The process is alive and its event loop turns."""
    await asyncio.sleep(0)
    return json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    metrics = request.app[keys.METRICS]
    return web.Response(body=metrics.render(), headers={"Content-Type": metrics.content_type})


async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document(request.app))


HEALTH = {"type": "object", "properties": {"status": {"type": "string"}}}
ROUTES = [
    Route("GET", "/healthz", healthz, "200 when storage and bus answer, else 503", response=HEALTH, auth=False,
          tags=("operations",)),
    Route("GET", "/readyz", readyz, "Ready for traffic (503 while draining or degraded)", response=HEALTH,
          auth=False, tags=("operations",)),
    Route("GET", "/livez", livez, "The process is alive", response=HEALTH, auth=False, tags=("operations",)),
    Route("GET", "/metrics", metrics, "Prometheus text format", auth=False, tags=("operations",)),
    Route("GET", "/api/openapi.json", openapi, "This document", response={"type": "object"}, auth=False,
          tags=("operations",)),
]
