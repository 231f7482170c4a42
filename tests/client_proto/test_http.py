"""ApiClient against a fake HTTP API built here with aiohttp.web (docs/protocol.md §12)."""

from __future__ import annotations

import pytest
from aiohttp import web

from client_proto.http import ApiClient, ApiError


def error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             headers=headers)


async def create_user(request: web.Request) -> web.Response:
    body = await request.json()
    if body["name"] == "taken":
        return error(409, "conflict", "name taken")
    return web.json_response({"id": "u1", "name": body["name"],
                              "display": body.get("display", body["name"]), "bot": False, "avatar": None}, status=201)


async def create_token(request: web.Request) -> web.Response:
    body = await request.json()
    if body != {"name": "alice", "password": "pw"}:
        return error(401, "unauthorized", "bad credentials")
    return web.json_response({"token": "t-alice", "user": {"id": "u1"}}, status=201)


async def create_room(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != "Bearer t-alice":
        return error(401, "unauthorized", "no token")
    return web.json_response({"id": "r1", **await request.json()}, status=201)


async def add_member(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response({"room": request.match_info["room"], **body}, status=201)


async def list_messages(request: web.Request) -> web.Response:
    return web.json_response({"messages": [], "more": False, "query": dict(request.query)})


async def limited(request: web.Request) -> web.Response:
    return error(429, "rate_limited", "slow down", **{"Retry-After": "2"})


async def no_content(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def bad_gateway(request: web.Request) -> web.Response:
    return web.Response(status=502, text="<html>bad gateway</html>", content_type="text/html")


@pytest.fixture
async def api(aiohttp_server):
    app = web.Application()
    app.router.add_post("/api/users", create_user)
    app.router.add_post("/api/tokens", create_token)
    app.router.add_post("/api/rooms", create_room)
    app.router.add_post("/api/rooms/{room}/members", add_member)
    app.router.add_get("/api/rooms/{room}/messages", list_messages)
    app.router.add_post("/api/limited", limited)
    app.router.add_delete("/api/tokens/current", no_content)
    app.router.add_get("/api/broken", bad_gateway)
    server = await aiohttp_server(app)
    async with ApiClient(f"http://{server.host}:{server.port}/") as client:
        yield client


async def test_register_login_and_authorized_calls(api):
    user = await api.register("alice", "pw", display="Alice")
    assert user == {"id": "u1", "name": "alice", "display": "Alice", "bot": False, "avatar": None}
    token = await api.login("alice", "pw")
    assert token == "t-alice"
    assert api.token is None

    alice = api.as_user(token)
    room = await alice.create_room("general", join_policy="open", topic="hi")
    assert room == {"id": "r1", "name": "general", "join_policy": "open", "topic": "hi"}
    assert await alice.add_member("r1", "u2") == {"room": "r1", "user_id": "u2"}
    page = await alice.get("/api/rooms/r1/messages", before=10, limit=5)
    assert page["query"] == {"before": "10", "limit": "5"}
    assert await alice.delete("/api/tokens/current") is None


@pytest.mark.parametrize(
    ("call", "status", "code"),
    [
        (lambda api: api.register("taken", "pw"), 409, "conflict"),
        (lambda api: api.login("alice", "wrong"), 401, "unauthorized"),
        (lambda api: api.create_room("general"), 401, "unauthorized"),
        (lambda api: api.get("/api/missing"), 404, "http_error"),
        (lambda api: api.get("/api/broken"), 502, "http_error"),
    ],
)
async def test_non_2xx_raises_api_error(api, call, status, code):
    with pytest.raises(ApiError) as info:
        await call(api)
    assert (info.value.status, info.value.code) == (status, code)


async def test_rate_limit_carries_retry_after(api):
    with pytest.raises(ApiError) as info:
        await api.post("/api/limited", {})
    assert (info.value.code, info.value.message, info.value.retry_after) == ("rate_limited", "slow down", 2.0)
