"""Running a group over HTTP (docs/protocol.md §12.14): mutes, bans, join requests, announcements, group cards."""

from __future__ import annotations

from aiohttp import web

from .. import keys
from ..views import ban_json, join_request_json, member_json, notice_json, pin_json
from . import schemas
from .body import current_user, json_response, no_content, parse
from .rooms import path_seq
from .routes import Route


def _ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["room_id"], request.match_info["user_id"]


async def mute(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, schemas.Mute)
    member = await request.app[keys.MODERATION].mute(user, *_ids(request), body.seconds)
    return json_response(member_json(member))


async def unmute(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.MODERATION].unmute(user, *_ids(request))
    return no_content()


async def ban(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, schemas.NewBan) if await request.read() else schemas.NewBan()
    found = await request.app[keys.MODERATION].ban(user, *_ids(request), body.reason)
    return json_response(ban_json(found))


async def unban(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.MODERATION].unban(user, *_ids(request))
    return no_content()


async def list_bans(request: web.Request) -> web.Response:
    user = await current_user(request)
    bans = await request.app[keys.MODERATION].bans(user, request.match_info["room_id"])
    return json_response({"items": [ban_json(b) for b in bans]})


async def list_requests(request: web.Request) -> web.Response:
    user = await current_user(request)
    found = await request.app[keys.MODERATION].requests(
        user, request.match_info["room_id"], request.query.get("status") or None
    )
    return json_response({"items": [join_request_json(r) for r in found]})


async def approve(request: web.Request) -> web.Response:
    user = await current_user(request)
    decided = await request.app[keys.MODERATION].decide(user, request.match_info["request_id"], approve=True)
    return json_response(join_request_json(decided))


async def decline(request: web.Request) -> web.Response:
    user = await current_user(request)
    decided = await request.app[keys.MODERATION].decide(user, request.match_info["request_id"], approve=False)
    return json_response(join_request_json(decided))


async def announce(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, schemas.NewAnnouncement)
    notice = await request.app[keys.MODERATION].announce(user, request.match_info["room_id"], body.text)
    return json_response(notice_json(notice), 201)


async def list_announcements(request: web.Request) -> web.Response:
    user = await current_user(request)
    found = await request.app[keys.MODERATION].announcements(user, request.match_info["room_id"])
    return json_response({"items": [notice_json(n) for n in found]})


async def withdraw(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.MODERATION].withdraw(
        user, request.match_info["room_id"], request.match_info["announcement_id"]
    )
    return no_content()


async def set_nickname(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, schemas.Nickname)
    member = await request.app[keys.MODERATION].set_nickname(user, *_ids(request), body.nickname)
    return json_response(member_json(member))


async def pin(request: web.Request) -> web.Response:
    user = await current_user(request)
    found = await request.app[keys.MODERATION].pin(user, request.match_info["room_id"], path_seq(request))
    return json_response(pin_json(*found))


async def unpin(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.MODERATION].unpin(user, request.match_info["room_id"], path_seq(request))
    return no_content()


async def list_pins(request: web.Request) -> web.Response:
    user = await current_user(request)
    found = await request.app[keys.MODERATION].pins(user, request.match_info["room_id"])
    return json_response({"items": [pin_json(*p) for p in found]})


MEMBER = {"$ref": "#/components/schemas/Member"}
PERSON = {"$ref": "#/components/schemas/User"}
BAN = {"type": "object", "properties": {"user": PERSON, "by": PERSON, "reason": {"type": "string"},
                                         "ts": {"type": "integer"}}}
REQUEST = {"type": "object", "properties": {
    "id": {"type": "string"}, "room": {"type": "string"}, "user": PERSON, "note": {"type": "string"},
    "status": {"type": "string", "enum": ["pending", "approved", "declined"]}, "created": {"type": "integer"}}}
ANNOUNCEMENT = {"type": "object", "properties": {"id": {"type": "string"}, "text": {"type": "string"}, "by": PERSON,
                                                  "ts": {"type": "integer"}}}


def _items(schema: dict) -> dict:
    return {"type": "object", "properties": {"items": {"type": "array", "items": schema}}}


ROOM_PATH = "/api/rooms/{room_id}"
MEMBER_PATH = f"{ROOM_PATH}/members/{{user_id}}"
TAGS = ("group administration",)
PIN = {"type": "object", "properties": {"message": {"$ref": "#/components/schemas/Message"}, "by": PERSON,
                                         "ts": {"type": "integer"}}}
ROUTES = [
    Route("PUT", f"{ROOM_PATH}/pins/{{seq}}", pin, "Pin a message (owner/admin; at most 50)", response=PIN, tags=TAGS),
    Route("DELETE", f"{ROOM_PATH}/pins/{{seq}}", unpin, "Unpin a message (owner/admin)", status=204, tags=TAGS),
    Route("GET", f"{ROOM_PATH}/pins", list_pins, "Pinned messages, newest pin first (members)",
          response=_items(PIN), tags=TAGS),
    Route("PUT", f"{MEMBER_PATH}/mute", mute, "Mute a member for 60 s to 30 days (owner/admin)", schemas.Mute,
          response=MEMBER, tags=TAGS),
    Route("DELETE", f"{MEMBER_PATH}/mute", unmute, "Lift a mute (owner/admin)", status=204, tags=TAGS),
    Route("PUT", f"{MEMBER_PATH}/nickname", set_nickname, "Set a group card (yourself, or owner/admin)",
          schemas.Nickname, response=MEMBER, tags=TAGS),
    Route("PUT", f"{ROOM_PATH}/bans/{{user_id}}", ban, "Ban a user, removing them if a member (owner/admin)",
          schemas.NewBan, response=BAN, tags=TAGS),
    Route("DELETE", f"{ROOM_PATH}/bans/{{user_id}}", unban, "Lift a ban (owner/admin)", status=204, tags=TAGS),
    Route("GET", f"{ROOM_PATH}/bans", list_bans, "Bans, newest first (owner/admin)", response=_items(BAN), tags=TAGS),
    Route("GET", f"{ROOM_PATH}/requests", list_requests, "Requests to join, newest first (owner/admin)",
          response=_items(REQUEST), query=("status:string",), tags=TAGS),
    Route("POST", "/api/room-requests/{request_id}/approve", approve, "Approve a request to join (owner/admin)",
          response=REQUEST, tags=TAGS),
    Route("POST", "/api/room-requests/{request_id}/decline", decline, "Decline a request to join (owner/admin)",
          response=REQUEST, tags=TAGS),
    Route("POST", f"{ROOM_PATH}/announcements", announce, "Post a group announcement (owner/admin)",
          schemas.NewAnnouncement, 201, ANNOUNCEMENT, tags=TAGS),
    Route("GET", f"{ROOM_PATH}/announcements", list_announcements, "Announcements, newest first (members)",
          response=_items(ANNOUNCEMENT), tags=TAGS),
    Route("DELETE", f"{ROOM_PATH}/announcements/{{announcement_id}}", withdraw, "Delete an announcement (owner/admin)",
          status=204, tags=TAGS),
]
