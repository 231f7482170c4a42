"""Search over HTTP (docs/protocol.md §12.13): people, records, groups and messages.

Every list is `{items, next}`; `next` goes back as `before=`. `limit` is
1-100 (default 20).
"""

from __future__ import annotations

from aiohttp import web

from .. import keys
from .body import current_user, json_response, query_int
from .routes import Route


def _paging(request: web.Request) -> tuple[str | None, int]:
    return request.query.get("before") or None, query_int(request, "limit", default=20, low=1, high=100)


async def people(request: web.Request) -> web.Response:
    user = await current_user(request)
    before, limit = _paging(request)
    return json_response(await request.app[keys.SEARCH].people(user, request.query.get("q"), before, limit))


async def user_profile(request: web.Request) -> web.Response:
    user = await current_user(request)
    return json_response(await request.app[keys.SEARCH].user(user, request.match_info["user_id"]))


async def records(request: web.Request) -> web.Response:
    user = await current_user(request)
    before, limit = _paging(request)
    filters = {
        "q": request.query.get("q"),
        "school": request.query.get("school") or None,
        "class_name": request.query.get("class_name") or None,
        "year": query_int(request, "year", low=1900, high=2100),
    }
    return json_response(await request.app[keys.SEARCH].records(user, filters, before, limit))


async def groups(request: web.Request) -> web.Response:
    user = await current_user(request)
    before, limit = _paging(request)
    return json_response(await request.app[keys.SEARCH].groups(user, request.query.get("q") or None, before, limit))


async def messages(request: web.Request) -> web.Response:
    user = await current_user(request)
    before, limit = _paging(request)
    return json_response(await request.app[keys.SEARCH].messages(
        user, request.query.get("q"), request.query.get("room") or None, before, limit
    ))


_USER = {"$ref": "#/components/schemas/User"}
_NEXT = {"type": "string", "nullable": True}


def _paged(item: dict) -> dict:
    return {"type": "object", "properties": {"items": {"type": "array", "items": item}, "next": _NEXT}}


_RECORD = {"type": "object", "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "school": {"type": "string"},
    "year": {"type": "integer", "nullable": True}, "class_name": {"type": "string", "nullable": True},
    "description": {"type": "string", "nullable": True}, "owner": _USER,
    "room": {"type": "string", "nullable": True}, "member_count": {"type": "integer"}}}
_HIT = {"type": "object", "properties": {
    "room": {"type": "string"}, "seq": {"type": "integer"}, "id": {"type": "string"}, "ts": {"type": "integer"},
    "from": _USER, "text": {"type": "string"},
    "snippet": {"type": "string", "description": "the text around the first match; matches marked [ ]"}}}
PAGED = ("before:string", "limit")
TAGS = ("search",)
# Before the rooms' routes: `/api/rooms/discover` must not be taken for the room "discover".
ROUTES = [
    Route("GET", "/api/users", people, "People whose name or display contains q (2-64 characters), by name",
          response=_paged(_USER), query=("q:string", *PAGED), tags=TAGS),
    Route("GET", "/api/users/{user_id}", user_profile, "A user, with when they signed up",
          response={"type": "object", "properties": {
              "id": {"type": "string"}, "name": {"type": "string"}, "display": {"type": "string"},
              "bot": {"type": "boolean"}, "created": {"type": "integer"}}}, tags=TAGS),
    Route("GET", "/api/alumni", records, "Alumni records, best match first: q (2-64 characters) in the name, "
          "school, class or description; school and class_name contained, year equal",
          response=_paged(_RECORD), query=("q:string", "school:string", "year", "class_name:string", *PAGED),
          tags=TAGS),
    Route("GET", "/api/rooms/discover", groups, "Groups anyone may join or ask to join, best match first",
          response=_paged({"$ref": "#/components/schemas/Room"}), query=("q:string", *PAGED), tags=TAGS),
    Route("GET", "/api/search", messages, "Text messages of the caller's rooms containing q (2-200 characters), "
          "newest first, with [ ]-marked snippets", response=_paged(_HIT), query=("q:string", "room:string", *PAGED),
          tags=TAGS),
]
