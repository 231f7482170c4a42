"""Rooms (groups), members, roles, messages and presence over HTTP (docs/protocol.md §12.4)."""

from __future__ import annotations

import msgspec
from aiohttp import web

from client_proto.frames import INT64_MAX

from .. import keys
from storage.records import JoinRequest

from ..errors import not_found
from ..views import join_request_json, member_json, message_frame, room_json
from . import schemas
from .body import current_user, json_response, no_content, parse, query_int
from .routes import Route


async def create_room(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, schemas.NewRoom)
    room = await request.app[keys.ROOMS].create(user, body.name, body.topic, body.join_policy)
    return json_response(room_json(room, user), 201)


async def open_direct(request: web.Request) -> web.Response:
    """The caller's direct room with another user: 201 when new, 200 when the pair has one."""
    user = await current_user(request)
    body = await parse(request, schemas.NewDirect)
    room, created = await request.app[keys.DIRECT].open(user, body.user_id)
    _, owner = await request.app[keys.ROOMS].get(user, room.id)
    return json_response(room_json(room, owner), 201 if created else 200)


async def list_rooms(request: web.Request) -> web.Response:
    user = await current_user(request)
    rooms = await request.app[keys.ROOMS].list_mine(user)
    return json_response({"items": [room_json(room, owner) for room, owner in rooms]})


async def get_room(request: web.Request) -> web.Response:
    user = await current_user(request)
    room, owner = await request.app[keys.ROOMS].get(user, request.match_info["room_id"])
    return json_response(room_json(room, owner))


async def update_room(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, schemas.RoomChanges)
    changes = msgspec.structs.asdict(body)
    changes = {k: v for k, v in changes.items() if v is not None and k != "avatar"}
    if body.avatar is not msgspec.UNSET:
        changes["avatar"] = body.avatar
    room, owner = await request.app[keys.ROOMS].update(user, request.match_info["room_id"], changes)
    return json_response(room_json(room, owner))


async def list_members(request: web.Request) -> web.Response:
    user = await current_user(request)
    members = await request.app[keys.ROOMS].members(user, request.match_info["room_id"])
    return json_response({"items": [member_json(m) for m in members]})


async def add_member(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, schemas.AddMember)
    added = await request.app[keys.ROOMS].add_member(user, request.match_info["room_id"], body.user_id, body.note)
    if isinstance(added, JoinRequest):  # an `approval` group: the owner and admins decide
        return json_response(join_request_json(added), 202)
    return json_response(member_json(added), 201)


async def dissolve(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.ROOMS].dissolve(user, request.match_info["room_id"])
    return no_content()


async def remove_member(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.ROOMS].remove_member(user, request.match_info["room_id"], request.match_info["user_id"])
    return no_content()


async def set_role(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, schemas.SetRole)
    member = await request.app[keys.ROOMS].set_role(
        user, request.match_info["room_id"], request.match_info["user_id"], body.role
    )
    return json_response(member_json(member))


async def history(request: web.Request) -> web.Response:
    user = await current_user(request)
    page = await request.app[keys.MESSAGES].history(
        user,
        request.match_info["room_id"],
        before=query_int(request, "before", low=0),
        after=query_int(request, "after", low=0),
        limit=query_int(request, "limit", default=50, low=1, high=100),
    )
    return json_response(
        {"messages": [message_frame(m) for m in page.messages], "more": page.more, "last_seq": page.last_seq}
    )


async def post_message(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, schemas.PostMessage)
    stored = await request.app[keys.MESSAGES].send(
        user, request.match_info["room_id"], body.text, body.cid, reply_to=body.reply_to, mentions=body.mentions,
        files=body.files,
    )
    m = stored.message
    return json_response({"seq": m.seq, "id": m.id, "ts": m.ts, "dup": stored.dup}, 200 if stored.dup else 201)


def path_seq(request: web.Request) -> int:
    """The `{seq}` of the path; anything but a seq names no message (404)."""
    raw = request.match_info["seq"]
    if not raw.isdigit() or not 1 <= int(raw) <= INT64_MAX:
        raise not_found("message")
    return int(raw)


async def edit_message(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, schemas.EditMessage)
    room_id, seq = request.match_info["room_id"], path_seq(request)
    service = request.app[keys.MESSAGES]
    await service.edit(user, room_id, seq, body.text)
    return json_response(message_frame(await service.get(user, room_id, seq)))


async def add_reaction(request: web.Request) -> web.Response:
    user = await current_user(request)
    room_id, seq = request.match_info["room_id"], path_seq(request)
    service = request.app[keys.MESSAGES]
    await service.react(user, room_id, seq, request.match_info["emoji"], True)
    return json_response(message_frame(await service.get(user, room_id, seq)))


async def remove_reaction(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.MESSAGES].react(
        user, request.match_info["room_id"], path_seq(request), request.match_info["emoji"], False
    )
    return no_content()


async def message_edits(request: web.Request) -> web.Response:
    user = await current_user(request)
    versions = await request.app[keys.MESSAGES].edits(user, request.match_info["room_id"], path_seq(request))
    return json_response({"items": [{"text": text, "ts": ts} for text, ts in versions]})


async def online(request: web.Request) -> web.Response:
    user = await current_user(request)
    ids = await request.app[keys.ROOMS].online(user, request.match_info["room_id"])
    return json_response({"online": ids, "count": len(ids)})


ROOM = {"$ref": "#/components/schemas/Room"}
MEMBER = {"$ref": "#/components/schemas/Member"}
MESSAGE = {"$ref": "#/components/schemas/Message"}
ROOM_PATH = "/api/rooms/{room_id}"
ROUTES = [
    Route("POST", "/api/rooms", create_room, "Create a group; the caller owns it", schemas.NewRoom, 201, ROOM,
          tags=("rooms",)),
    Route("POST", "/api/dms", open_direct, "Open (or find) the direct room with another user",
          schemas.NewDirect, 201, ROOM, tags=("rooms",)),
    Route("GET", "/api/rooms", list_rooms, "The caller's groups",
          response={"type": "object", "properties": {"items": {"type": "array", "items": ROOM}}}, tags=("rooms",)),
    Route("GET", ROOM_PATH, get_room, "A group (members; anyone for an open group)", response=ROOM,
          tags=("rooms",)),
    Route("PATCH", ROOM_PATH, update_room, "Change a group (owner/admin)", schemas.RoomChanges, response=ROOM,
          tags=("rooms",)),
    Route("DELETE", ROOM_PATH, dissolve, "Dissolve a group (owner): it and its history are deleted", status=204,
          tags=("rooms",)),
    Route("GET", f"{ROOM_PATH}/members", list_members, "Members with roles",
          response={"type": "object", "properties": {"items": {"type": "array", "items": MEMBER}}},
          tags=("rooms",)),
    Route("POST", f"{ROOM_PATH}/members", add_member, "Add a member (owner/admin), join an open group, or ask to join an approval group (202 request)",
          schemas.AddMember, 201, MEMBER, tags=("rooms",)),
    Route("DELETE", f"{ROOM_PATH}/members/{{user_id}}", remove_member, "Leave, or remove a member (owner/admin)",
          status=204, tags=("rooms",)),
    Route("PUT", f"{ROOM_PATH}/members/{{user_id}}/role", set_role, "Set a member's role (owner only)",
          schemas.SetRole, response=MEMBER, tags=("rooms",)),
    Route("GET", f"{ROOM_PATH}/messages", history, "History, ascending seq",
          response={"type": "object", "properties": {"messages": {"type": "array", "items": MESSAGE},
                                                      "more": {"type": "boolean"}}},
          query=("before", "after", "limit"), tags=("messages",)),
    Route("POST", f"{ROOM_PATH}/messages", post_message, "Send a message (idempotent on cid)",
          schemas.PostMessage, 201,
          {"type": "object", "properties": {"seq": {"type": "integer"}, "id": {"type": "string"},
                                            "ts": {"type": "integer"}, "dup": {"type": "boolean"}}},
          tags=("messages",)),
    Route("PATCH", f"{ROOM_PATH}/messages/{{seq}}", edit_message, "Edit one's own message (its author)",
          schemas.EditMessage, response=MESSAGE, tags=("messages",)),
    Route("PUT", f"{ROOM_PATH}/messages/{{seq}}/reactions/{{emoji}}", add_reaction, "React to a message",
          response=MESSAGE, tags=("messages",)),
    Route("DELETE", f"{ROOM_PATH}/messages/{{seq}}/reactions/{{emoji}}", remove_reaction,
          "Take back one's reaction", status=204, tags=("messages",)),
    Route("GET", f"{ROOM_PATH}/messages/{{seq}}/edits", message_edits, "Earlier versions, oldest first (members)",
          response={"type": "object", "properties": {"items": {"type": "array", "items": {
              "type": "object", "properties": {"text": {"type": "string"}, "ts": {"type": "integer"}}}}}},
          tags=("messages",)),
    Route("GET", f"{ROOM_PATH}/online", online, "Members online on any node",
          response={"type": "object", "properties": {"online": {"type": "array", "items": {"type": "string"}},
                                                      "count": {"type": "integer"}}},
          tags=("rooms",)),
]
