"""Alumni records, profiles, invitations and feeds over HTTP (docs/protocol.md §12.6).

`GET /api/alumni/{id}/posts` is served by the posts module, which owns posts.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from aiohttp import web
from msgspec import UNSET, Meta, UnsetType

from storage.invitations import STATUSES

from .. import keys
from ..errors import invalid
from ..services.alumni import parse_feed_cursor
from .body import current_user, json_response, no_content, parse, query_int
from .routes import Route

# ---------------------------------------------------------------------------- bodies

Visibility = Literal["members", "public"]


def _text(limit: int):
    return Annotated[str, Meta(max_length=limit)]


class NewRecord(msgspec.Struct, frozen=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    school: Annotated[str, Meta(min_length=1, max_length=200)]
    year: Annotated[int, Meta(ge=1900, le=2100)] | None = None
    class_name: _text(100) | None = None
    description: _text(2000) | None = None


class BindRoom(msgspec.Struct, frozen=True):
    room_id: Annotated[str, Meta(min_length=1, max_length=64)]


class FieldVisibility(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One visibility per profile field; a field left out keeps the one it had."""

    real_name: Visibility | UnsetType = UNSET
    class_name: Visibility | UnsetType = UNSET
    city: Visibility | UnsetType = UNSET
    employer: Visibility | UnsetType = UNSET
    bio: Visibility | UnsetType = UNSET
    contact: Visibility | UnsetType = UNSET


class ProfileChanges(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The caller's own profile: a field left out is kept, null clears it."""

    real_name: _text(100) | None | UnsetType = UNSET
    class_name: _text(100) | None | UnsetType = UNSET
    city: _text(100) | None | UnsetType = UNSET
    employer: _text(200) | None | UnsetType = UNSET
    bio: _text(2000) | None | UnsetType = UNSET
    contact: _text(200) | None | UnsetType = UNSET
    visibility: Visibility | FieldVisibility | UnsetType = UNSET


class NewInvitations(msgspec.Struct, frozen=True):
    user_ids: Annotated[list[Annotated[str, Meta(min_length=1, max_length=64)]], Meta(max_length=1000)] | None = None
    note: _text(1000) | None = None


def _given(struct: msgspec.Struct) -> dict:
    """The fields the client sent (UNSET ones left out)."""
    return {k: v for k, v in msgspec.structs.asdict(struct).items() if v is not UNSET}


# ---------------------------------------------------------------------------- handlers


async def create_record(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, NewRecord)
    return json_response(await request.app[keys.ALUMNI].create(user, msgspec.structs.asdict(body)), 201)


async def get_record(request: web.Request) -> web.Response:
    user = await current_user(request)
    return json_response(await request.app[keys.ALUMNI].get(user, request.match_info["record_id"]))


async def list_members(request: web.Request) -> web.Response:
    user = await current_user(request)
    return json_response({"items": await request.app[keys.ALUMNI].members(user, request.match_info["record_id"])})


async def bind_room(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, BindRoom)
    return json_response(await request.app[keys.ALUMNI].bind(user, request.match_info["record_id"], body.room_id))


async def unbind_room(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.ALUMNI].unbind(user, request.match_info["record_id"])
    return no_content()


async def set_profile(request: web.Request) -> web.Response:
    user = await current_user(request)
    changes = _given(await parse(request, ProfileChanges))
    visibility = changes.pop("visibility", None)
    if isinstance(visibility, FieldVisibility):
        visibility = _given(visibility)
    profile = await request.app[keys.ALUMNI].set_profile(user, request.match_info["record_id"], changes, visibility)
    return json_response(profile)


async def invite(request: web.Request) -> web.Response:
    user = await current_user(request)
    # No body at all means `{}`: invite the whole bound group.
    body = await parse(request, NewInvitations) if await request.read() else NewInvitations()
    result = await request.app[keys.ALUMNI].invite(
        user, request.match_info["record_id"], body.user_ids, body.note or ""
    )
    return json_response(result, 201)


async def my_invitations(request: web.Request) -> web.Response:
    user = await current_user(request)
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise invalid(f"status: must be one of {', '.join(STATUSES)}")
    return json_response({"items": await request.app[keys.ALUMNI].my_invitations(user, status)})


async def accept(request: web.Request) -> web.Response:
    user = await current_user(request)
    return json_response(await request.app[keys.ALUMNI].accept(user, request.match_info["invitation_id"]))


async def decline(request: web.Request) -> web.Response:
    user = await current_user(request)
    return json_response(await request.app[keys.ALUMNI].decline(user, request.match_info["invitation_id"]))


async def feed(request: web.Request) -> web.Response:
    user = await current_user(request)
    before = parse_feed_cursor(request.query.get("before"))
    limit = query_int(request, "limit", default=50, low=1, high=100)
    return json_response(await request.app[keys.ALUMNI].feed(user, request.match_info["record_id"], before, limit))


# ---------------------------------------------------------------------------- routes

_USER = {"$ref": "#/components/schemas/User"}
RECORD = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "school": {"type": "string"},
        "year": {"type": "integer", "nullable": True}, "class_name": {"type": "string", "nullable": True},
        "description": {"type": "string", "nullable": True}, "owner": _USER,
        "room": {"type": "string", "nullable": True}, "member_count": {"type": "integer"},
    },
}
PROFILE = {"type": "object", "description": "Profile fields; non-members get only the public ones",
           "additionalProperties": True}
INVITATION = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "record": RECORD, "inviter": _USER, "invitee": _USER, "note": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES)}, "created": {"type": "integer"},
    },
}
FEED_ENTRY = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "ts": {"type": "integer"},
        "type": {"type": "string", "enum": ["joined", "profile", "post", "bound"]},
        "actor": _USER, "data": {"type": "object"}, "record": {"type": "string"},
    },
}


def _items(schema: dict, paged: bool = False) -> dict:
    properties = {"items": {"type": "array", "items": schema}}
    if paged:
        properties["next"] = {"type": "string", "nullable": True}
    return {"type": "object", "properties": properties}


RECORD_PATH = "/api/alumni/{record_id}"
TAGS = ("alumni",)
ROUTES = [
    Route("POST", "/api/alumni", create_record, "Create an alumni record; the caller owns it", NewRecord, 201,
          RECORD, tags=TAGS),
    Route("GET", RECORD_PATH, get_record, "An alumni record (any signed-in user)", response=RECORD, tags=TAGS),
    Route("GET", f"{RECORD_PATH}/members", list_members, "Members with profiles (public fields only for non-members)",
          response=_items({"type": "object", "properties": {"user": _USER, "profile": PROFILE,
                                                            "joined": {"type": "integer"}}}), tags=TAGS),
    Route("PUT", f"{RECORD_PATH}/room", bind_room, "Bind the record to a group (owner of both / admin of the group)",
          BindRoom, response=RECORD, tags=TAGS),
    Route("DELETE", f"{RECORD_PATH}/room", unbind_room, "Unbind the record from its group", status=204, tags=TAGS),
    Route("PUT", f"{RECORD_PATH}/profile", set_profile, "Set the caller's own profile and its visibility",
          ProfileChanges, response=PROFILE, tags=TAGS),
    Route("POST", f"{RECORD_PATH}/invitations", invite, "Invite people (record members and their bots)",
          NewInvitations, 201,
          {"type": "object", "properties": {
              "invitations": {"type": "array", "items": {"type": "object", "properties": {
                  "id": {"type": "string"}, "invitee": _USER, "status": {"type": "string"}}}},
              "skipped": {"type": "array", "items": {"type": "object", "properties": {
                  "user_id": {"type": "string"},
                  "reason": {"type": "string", "enum": ["member", "pending", "blocked"]}}}}}},
          tags=TAGS),
    Route("GET", "/api/me/invitations", my_invitations, "The caller's invitations, newest first",
          response=_items(INVITATION), query=("status",), tags=TAGS),
    Route("POST", "/api/invitations/{invitation_id}/accept", accept, "Accept (invitee): join the record",
          response=RECORD, tags=TAGS),
    Route("POST", "/api/invitations/{invitation_id}/decline", decline, "Decline (invitee)", response=INVITATION,
          tags=TAGS),
    # `before` is left out of `query`: it is a string cursor (the `next` of the previous page).
    Route("GET", f"{RECORD_PATH}/feed", feed, "The record's activity, newest first (members); "
          "pass `next` back as `before`", response=_items(FEED_ENTRY, paged=True), query=("before:string", "limit"),
          tags=TAGS),
]
