"""The HTTP error shape `{"error":{"code","message"}}` and the middleware that guarantees it.

Whatever goes wrong, a client gets that shape with the right status and a
message it can act on; a traceback never leaves the server.
"""

from __future__ import annotations

import logging

import msgspec
from aiohttp import web

from client_proto.errors import ErrorCode
from storage.db import StorageUnavailable

from .. import keys
from ..errors import ServiceError

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: ErrorCode.BAD_FRAME,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.INVALID,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.TOO_LARGE,
    422: ErrorCode.INVALID,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.UNAVAILABLE,
}


def json_error(status: int, code: str, message: str, *, headers: dict | None = None) -> web.Response:
    body = msgspec.json.encode({"error": {"code": str(code), "message": message}})
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def _from_service_error(exc: ServiceError) -> web.Response:
    headers = None
    if exc.retry_after is not None:
        headers = {"Retry-After": str(max(1, (exc.retry_after + 999) // 1000))}
    return json_error(exc.http_status, exc.code, exc.message, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ServiceError as exc:
        _count(request, exc.code)
        return _from_service_error(exc)
    except StorageUnavailable:
        _count(request, ErrorCode.UNAVAILABLE)
        return json_error(503, ErrorCode.UNAVAILABLE, "storage is unavailable; retry shortly")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, ErrorCode.INTERNAL if exc.status >= 500 else ErrorCode.INVALID)
        message = {
            404: "no such path",
            405: f"{request.method} is not allowed here",
            413: "request body too large",
        }.get(exc.status, exc.text or exc.reason)
        if exc.status == 413:
            code = ErrorCode.TOO_LARGE
        _count(request, code)
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return json_error(exc.status, code, message, headers=headers)
    except ConnectionResetError:
        # The client went away mid-request: nobody to answer and nothing wrong here.
        return json_error(400, ErrorCode.BAD_FRAME, "connection lost")
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        _count(request, ErrorCode.INTERNAL)
        return json_error(500, ErrorCode.INTERNAL, "internal error; it has been logged")


def _count(request: web.Request, code: str) -> None:
    metrics = request.app.get(keys.METRICS)
    if metrics is not None:
        metrics.errors.labels(str(code)).inc()
