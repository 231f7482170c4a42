"""Users, tokens and bots (docs/protocol.md §12.2, §12.3)."""

from __future__ import annotations

import msgspec
from aiohttp import web

from client_proto.errors import ErrorCode

from .. import keys
from ..errors import ServiceError
from ..views import user_json
from . import schemas
from .body import bearer_token, current_user, json_response, no_content, parse
from .routes import Route


async def create_user(request: web.Request) -> web.Response:
    body = await parse(request, schemas.NewUser)
    user = await request.app[keys.ACCOUNTS].register(body.name, body.password, body.display)
    return json_response(user_json(user), 201)


async def create_token(request: web.Request) -> web.Response:
    body = await parse(request, schemas.Login)
    guard = request.app[keys.LOGIN_GUARD]
    address = request.remote or "?"
    wait = guard.blocked_ms(address, body.name)
    if wait is not None:
        raise ServiceError(ErrorCode.RATE_LIMITED, "too many failed sign-ins; wait and retry", retry_after=wait)
    try:
        token, user = await request.app[keys.ACCOUNTS].login(body.name, body.password)
    except ServiceError as exc:
        if exc.code == ErrorCode.UNAUTHORIZED:
            guard.failed(address, body.name)
        raise
    return json_response({"token": token, "user": user_json(user)}, 201)


async def delete_current_token(request: web.Request) -> web.Response:
    await current_user(request)
    await request.app[keys.ACCOUNTS].revoke(bearer_token(request))
    return no_content()


async def me(request: web.Request) -> web.Response:
    return json_response(user_json(await current_user(request)))


async def update_me(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await parse(request, schemas.MeChanges)
    password = (body.password.old, body.password.new) if body.password is not None else None
    user = await request.app[keys.ACCOUNTS].update_me(user, bearer_token(request), body.display, password)
    if body.avatar is not msgspec.UNSET:
        user = await request.app[keys.FILES].set_user_avatar(user, body.avatar)
    return json_response(user_json(user))


async def block(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.ACCOUNTS].block(user, request.match_info["user_id"])
    return no_content()


async def unblock(request: web.Request) -> web.Response:
    user = await current_user(request)
    await request.app[keys.ACCOUNTS].unblock(user, request.match_info["user_id"])
    return no_content()


async def list_blocks(request: web.Request) -> web.Response:
    user = await current_user(request)
    return json_response({"items": [user_json(u) for u in await request.app[keys.ACCOUNTS].blocks(user)]})


async def create_bot(request: web.Request) -> web.Response:
    owner = await current_user(request)
    body = await parse(request, schemas.NewBot)
    bot, token = await request.app[keys.ACCOUNTS].create_bot(owner, body.name, body.display)
    return json_response({"user": user_json(bot), "token": token}, 201)


async def list_bots(request: web.Request) -> web.Response:
    owner = await current_user(request)
    bots = await request.app[keys.ACCOUNTS].bots(owner)
    return json_response({"items": [user_json(bot) for bot in bots]})


async def delete_bot(request: web.Request) -> web.Response:
    owner = await current_user(request)
    await request.app[keys.ACCOUNTS].delete_bot(owner, request.match_info["bot_id"])
    return no_content()


USER = {"$ref": "#/components/schemas/User"}
ROUTES = [
    Route("POST", "/api/users", create_user, "Sign up", schemas.NewUser, 201, USER, auth=False, tags=("users",)),
    Route("POST", "/api/tokens", create_token, "Sign in: a bearer token", schemas.Login, 201,
          {"type": "object", "properties": {"token": {"type": "string"}, "user": USER}}, auth=False,
          tags=("users",)),
    Route("DELETE", "/api/tokens/current", delete_current_token, "Sign out: revoke this token", status=204,
          tags=("users",)),
    Route("GET", "/api/me", me, "The caller", response=USER, tags=("users",)),
    Route("PATCH", "/api/me", update_me, "Change the caller's display name, password (a new password ends "
          "every other token of theirs) or avatar (a file id of theirs, or null)", schemas.MeChanges, response=USER,
          tags=("users",)),
    Route("GET", "/api/me/blocks", list_blocks, "The users the caller blocked",
          response={"type": "object", "properties": {"items": {"type": "array", "items": USER}}}, tags=("users",)),
    Route("PUT", "/api/me/blocks/{user_id}", block, "Block a user: their invitations are skipped, and they "
          "cannot open a direct room with the caller", status=204, tags=("users",)),
    Route("DELETE", "/api/me/blocks/{user_id}", unblock, "Unblock a user", status=204, tags=("users",)),
    Route("POST", "/api/bots", create_bot, "Create a bot owned by the caller", schemas.NewBot, 201,
          {"type": "object", "properties": {"user": USER, "token": {"type": "string"}}}, tags=("bots",)),
    Route("GET", "/api/bots", list_bots, "The caller's bots",
          response={"type": "object", "properties": {"items": {"type": "array", "items": USER}}}, tags=("bots",)),
    Route("DELETE", "/api/bots/{bot_id}", delete_bot, "Retire a bot; its token stops working", status=204,
          tags=("bots",)),
]
