"""Managing alumni records over HTTP (docs/protocol.md §12.13): edit, delete, leave or remove, and
join requests decided by the owner."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web
from msgspec import UNSET, Meta, UnsetType

from storage.record_requests import STATUSES

from .. import keys
from ..errors import invalid
from .alumni import RECORD, RECORD_PATH
from .body import current_user, json_response, no_content, parse
from .routes import Route


class RecordChanges(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A field left out is kept; null clears an optional one."""

    name: Annotated[str, Meta(min_length=1, max_length=100)] | UnsetType = UNSET
    school: Annotated[str, Meta(min_length=1, max_length=200)] | UnsetType = UNSET
    year: Annotated[int, Meta(ge=1900, le=2100)] | None | UnsetType = UNSET
    class_name: Annotated[str, Meta(max_length=100)] | None | UnsetType = UNSET
    description: Annotated[str, Meta(max_length=2000)] | None | UnsetType = UNSET


class NewRequest(msgspec.Struct, frozen=True):
    note: Annotated[str, Meta(max_length=1000)] | None = None


async def update_record(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, RecordChanges)
    changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not UNSET}
    return json_response(await request.app[keys.RECORDS].update(user, request.match_info["record_id"], changes))


async def delete_record(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.RECORDS].delete(user, request.match_info["record_id"])
    return no_content()


async def remove_member(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.RECORDS].remove_member(user, request.match_info["record_id"], request.match_info["user_id"])
    return no_content()


async def ask_to_join(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, NewRequest) if await request.read() else NewRequest()
    result = await request.app[keys.RECORDS].request(user, request.match_info["record_id"], body.note or "")
    return json_response(result, 201)


async def list_requests(request: web.Request) -> web.Response:
    user = await current_user(request)
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise invalid(f"status: must be one of {', '.join(STATUSES)}")
    items = await request.app[keys.RECORDS].requests(user, request.match_info["record_id"], status)
    return json_response({"items": items})


async def approve(request: web.Request) -> web.Response:
    user = await current_user(request)
    return json_response(await request.app[keys.RECORDS].decide(user, request.match_info["request_id"], True))


async def decline(request: web.Request) -> web.Response:
    user = await current_user(request)
    return json_response(await request.app[keys.RECORDS].decide(user, request.match_info["request_id"], False))


REQUEST = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "record": RECORD, "user": {"$ref": "#/components/schemas/User"},
        "note": {"type": "string"}, "status": {"type": "string", "enum": list(STATUSES)},
        "created": {"type": "integer"},
    },
}
TAGS = ("alumni",)
ROUTES = [
    Route("PATCH", RECORD_PATH, update_record, "Change a record (owner)", RecordChanges, response=RECORD, tags=TAGS),
    Route("DELETE", RECORD_PATH, delete_record, "Delete a record (owner); a bound group is unbound, posts stay "
          "in their authors' spaces", status=204, tags=TAGS),
    Route("DELETE", f"{RECORD_PATH}/members/{{user_id}}", remove_member, "Leave the record (not its owner), or "
          "remove a member (owner)", status=204, tags=TAGS),
    Route("POST", f"{RECORD_PATH}/requests", ask_to_join, "Ask to join the record; its owner is notified",
          NewRequest, 201, REQUEST, tags=TAGS),
    Route("GET", f"{RECORD_PATH}/requests", list_requests, "Requests to join, newest first (owner)",
          response={"type": "object", "properties": {"items": {"type": "array", "items": REQUEST}}},
          query=("status",), tags=TAGS),
    Route("POST", "/api/record-requests/{request_id}/approve", approve, "Approve (owner): the user joins",
          response=REQUEST, tags=TAGS),
    Route("POST", "/api/record-requests/{request_id}/decline", decline, "Decline (owner)", response=REQUEST,
          tags=TAGS),
]
