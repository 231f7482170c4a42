"""Request parsing: bodies into typed structs, query strings into ints, bearer tokens into users."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from client_proto.errors import ErrorCode
from client_proto.frames import INT64_MAX
from storage.records import User

from .. import keys
from ..errors import ServiceError, invalid

T = TypeVar("T")
_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


async def parse(request: web.Request, type_: type[T]) -> T:
    """The JSON body as `type_`: 400 if it is not JSON, 422 naming the field that is wrong."""
    raw = await request.read()
    try:
        return msgspec.json.decode(raw or b"", type=type_)
    except msgspec.ValidationError as exc:
        raise invalid(_field_message(str(exc))) from None
    except msgspec.DecodeError:
        raise ServiceError(ErrorCode.BAD_FRAME, "the body is not valid JSON") from None


def _field_message(reason: str) -> str:
    match = _PATH.search(reason)
    text = reason[: match.start()] if match else reason
    missing = re.match(r"Object missing required field `([^`]+)`", text)
    if missing:
        return f"{missing.group(1)}: required"
    if match and match.group(1):
        return f"{match.group(1)}: {text}"
    if text.startswith("Expected `object`"):
        return "body: must be a JSON object"
    return text


def query_int(request: web.Request, name: str, *, default: int | None = None, low: int = -INT64_MAX - 1,
              high: int = INT64_MAX) -> int | None:
    """An integer query parameter within `low`..`high` (by default what a database column holds)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"{name}: must be an integer") from None
    if not low <= value <= high:
        raise invalid(f"{name}: must be {low} to {high}")
    return value


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def current_user(request: web.Request) -> User:
    """The caller, from `Authorization: Bearer <token>`; 401 otherwise."""
    user = await request.app[keys.ACCOUNTS].authenticate(bearer_token(request))
    if user is None:
        raise ServiceError(ErrorCode.UNAUTHORIZED, "a valid bearer token is required")
    return user


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode(data), content_type="application/json")


def no_content() -> web.Response:
    return web.Response(status=204)
