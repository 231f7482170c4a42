"""Users, tokens and bots over HTTP (docs/protocol.md §12.2, §12.3), with status codes and
the error shape `{"error":{"code","message"}}`."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conftest import unique_name

from .conftest import with_settings


def user_shape(user: dict, *, name: str, display: str, bot: bool = False) -> None:
    assert set(user) == {"id", "name", "display", "bot", "avatar"}  # avatar: docs/protocol.md §12.10
    assert isinstance(user["id"], str) and user["id"]
    assert (user["name"], user["display"], user["bot"]) == (name, display, bot)


# ---------------------------------------------------------------------------- users


async def test_sign_up_returns_201_user(http):
    name = unique_name("ann")
    reply = await http("POST", "/api/users", json={"name": name, "password": "pw-1", "display": "Ann Lee"})
    assert reply.status == 201
    user_shape(reply.body, name=name, display="Ann Lee")
    plain = unique_name("bo")
    reply = await http("POST", "/api/users", json={"name": plain, "password": "pw-2"})
    user_shape(reply.body, name=plain, display=plain)  # display defaults to the name


async def test_taken_name_is_409(http):
    name = unique_name("dup")
    assert (await http("POST", "/api/users", json={"name": name, "password": "a"})).status == 201
    (await http("POST", "/api/users", json={"name": name, "password": "b"})).error(409, "conflict")


async def test_names_follow_the_rule_and_bad_ones_are_refused_never_changed(http):
    for name in ("Alice", "al", "x" * 33, "al ice", "álvaro", "al!ce", "", "ALICE1", "bob\n"):
        (await http("POST", "/api/users", json={"name": name, "password": "pw"})).error(422, "invalid", "name")
    for name in ("abc", "a.b-c_d", "0" * 32, "x_9"):  # each test has its own database: nobody took these
        reply = await http("POST", "/api/users", json={"name": name, "password": "pw"})
        assert reply.status == 201 and reply.body["name"] == name, reply


async def test_wrong_sign_up_fields_are_422_naming_the_field(http):
    for body, field in (
        ({"password": "pw"}, "name"),
        ({"name": "somebody"}, "password"),
        ({"name": "somebody", "password": 5}, "password"),
        ({"name": "somebody", "password": ""}, "password"),
        ({"name": "somebody", "password": "pw", "display": "x" * 65}, "display"),
    ):
        (await http("POST", "/api/users", json=body)).error(422, "invalid", field)


async def test_body_that_is_not_json_is_400(http, make_account):
    alice = await make_account()
    for path in ("/api/users", "/api/tokens", "/api/rooms", "/api/bots"):
        reply = await http("POST", path, token=alice.token, data=b"{name: nope",
                           headers={"Content-Type": "application/json"})
        reply.error(400, "bad_frame")


async def test_body_that_is_json_but_not_an_object_is_422(http):
    (await http("POST", "/api/users", json=["name", "pw"])).error(422, "invalid")


# ---------------------------------------------------------------------------- tokens


async def test_sign_in_returns_201_token_and_user(http):
    name = unique_name("tok")
    created = (await http("POST", "/api/users", json={"name": name, "password": "secret"})).body
    reply = await http("POST", "/api/tokens", json={"name": name, "password": "secret"})
    assert reply.status == 201 and set(reply.body) == {"token", "user"}
    assert isinstance(reply.body["token"], str) and reply.body["token"]
    assert reply.body["user"] == created
    again = await http("POST", "/api/tokens", json={"name": name, "password": "secret"})
    assert again.body["token"] != reply.body["token"]  # a new token each time


async def test_wrong_password_or_unknown_name_is_401(http):
    name = unique_name("pw")
    await http("POST", "/api/users", json={"name": name, "password": "right"})
    (await http("POST", "/api/tokens", json={"name": name, "password": "wrong"})).error(401, "unauthorized")
    (await http("POST", "/api/tokens", json={"name": unique_name("nobody"), "password": "x"})).error(
        401, "unauthorized")
    (await http("POST", "/api/tokens", json={"name": name})).error(422, "invalid", "password")


async def test_me(http, make_account):
    alice = await make_account("alice")
    reply = await http("GET", "/api/me", token=alice.token)
    assert reply.status == 200 and reply.body == alice.user
    user_shape(reply.body, name=alice.user["name"], display=alice.user["name"])


async def test_missing_or_bad_token_is_401(http):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer "}):
        for method, path in [("GET", "/api/me"), ("GET", "/api/rooms"), ("POST", "/api/rooms"), ("GET", "/api/bots"),
                             ("POST", "/api/bots"), ("DELETE", "/api/tokens/current"), ("DELETE", "/api/bots/x")]:
            (await http(method, path, headers=headers, json={"name": "g"} if method == "POST" else None)).error(
                401, "unauthorized")


async def test_token_is_not_taken_from_the_query_string(http, make_account):
    alice = await make_account()
    (await http("GET", f"/api/me?token={alice.token}")).error(401, "unauthorized")
    (await http("GET", f"/api/me?access_token={alice.token}")).error(401, "unauthorized")


async def test_sign_out_revokes_the_token_and_closes_its_connections(http, make_account, connect):
    alice = await make_account()
    other_token = await alice.api.login(alice.user["name"], "correct horse")
    doomed = [await connect(alice), await connect(alice)]
    spared = await connect(other_token)
    reply = await http("DELETE", "/api/tokens/current", token=alice.token)
    assert (reply.status, reply.body) == (204, None)
    for wire in doomed:
        assert await wire.closed() == 4001
    (await http("GET", "/api/me", token=alice.token)).error(401, "unauthorized")
    (await http("DELETE", "/api/tokens/current", token=alice.token)).error(401, "unauthorized")
    # Only that token: the user's other sessions go on.
    assert (await spared.call("ping"))["op"] == "pong"
    assert (await http("GET", "/api/me", token=other_token)).status == 200


async def test_a_plain_aiohttp_client_reads_4001_as_the_close_code(server, http, make_account):
    """The closing handshake completes: a client library reports the server's code, not 1006."""
    alice = await make_account()
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.ws_url) as ws:
            await ws.send_json({"op": "hello", "token": alice.token})
            assert (await ws.receive_json())["op"] == "welcome"
            await http("DELETE", "/api/tokens/current", token=alice.token)
            closing = await ws.receive(timeout=5)
            assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 4001)
            assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSED
            assert ws.close_code == 4001


# ---------------------------------------------------------------------------- bots


@pytest.fixture
async def bot(make_account, http):
    """(owner account, bot reply body)"""
    owner = await make_account("owner")
    name = unique_name("bot")
    reply = await http("POST", "/api/bots", token=owner.token, json={"name": name, "display": "Helper"})
    assert reply.status == 201
    return owner, reply.body


async def test_create_bot_is_201_user_and_token(bot, http):
    owner, body = bot
    assert set(body) == {"user", "token"}
    user_shape(body["user"], name=body["user"]["name"], display="Helper", bot=True)
    me = await http("GET", "/api/me", token=body["token"])
    assert me.status == 200 and me.body == body["user"]
    listed = await http("GET", "/api/bots", token=owner.token)
    assert listed.status == 200 and listed.body == {"items": [body["user"]]}


async def test_bot_has_no_password_login(bot, http):
    _, body = bot
    for password in ("", "x", body["token"]):
        reply = await http("POST", "/api/tokens", json={"name": body["user"]["name"], "password": password})
        reply.error(401, "unauthorized")


async def test_bot_names_follow_the_name_rule(make_account, http):
    owner = await make_account()
    (await http("POST", "/api/bots", token=owner.token, json={"name": "Bot"})).error(422, "invalid", "name")
    (await http("POST", "/api/bots", token=owner.token, json={})).error(422, "invalid", "name")
    taken = owner.user["name"]
    (await http("POST", "/api/bots", token=owner.token, json={"name": taken})).error(409, "conflict")


async def test_bot_token_works_over_websocket_and_posts_only_where_member(bot, make_room, connect, http):
    owner, body = bot
    room, _ = await make_room(owner=owner)
    wire = await connect(body["token"])
    assert wire.welcome["user"] == body["user"] and wire.welcome["rooms"] == []
    path = f"/api/rooms/{room['id']}/messages"
    (await http("POST", path, token=body["token"], json={"text": "hi", "cid": "1"})).error(403, "forbidden")
    refused = await wire.request({"op": "send", "room": room["id"], "text": "hi", "cid": "2"})
    assert refused["code"] == "forbidden"

    await owner.api.add_member(room["id"], body["user"]["id"])
    posted = await http("POST", path, token=body["token"], json={"text": "beep", "cid": "1"})
    assert posted.status == 201
    ack = await wire.call("send", room=room["id"], text="boop", cid="2")
    message = await wire.expect("message", seq=ack["seq"])
    assert message["from"] == body["user"] and message["from"]["bot"] is True


async def test_delete_bot_stops_its_token_and_closes_its_connections(bot, make_room, connect, http):
    owner, body = bot
    room, _ = await make_room(owner=owner)
    await owner.api.add_member(room["id"], body["user"]["id"])
    await owner.api.post(f"/api/rooms/{room['id']}/messages", {"text": "hello bot", "cid": "h"})
    wires = [await connect(body["token"]), await connect(body["token"])]
    reply = await http("DELETE", f"/api/bots/{body['user']['id']}", token=owner.token)
    assert (reply.status, reply.body) == (204, None)
    for wire in wires:
        assert await wire.closed() == 4001
    (await http("GET", "/api/me", token=body["token"])).error(401, "unauthorized")
    refused = await connect(hello=False)
    await refused.send({"op": "hello", "token": body["token"]})
    assert (await refused.recv())["code"] == "unauthorized"
    assert await refused.closed() == 4001
    assert (await http("GET", "/api/bots", token=owner.token)).body == {"items": []}


async def test_only_the_owner_deletes_a_bot(bot, make_account, http):
    _, body = bot
    stranger = await make_account()
    (await http("DELETE", f"/api/bots/{body['user']['id']}", token=stranger.token)).error(403, "forbidden")
    (await http("DELETE", "/api/bots/no-such-bot", token=stranger.token)).error(404, "not_found")
    (await http("DELETE", f"/api/bots/{stranger.id}", token=stranger.token)).error(404, "not_found")  # not a bot
    assert (await http("GET", "/api/me", token=body["token"])).status == 200


async def test_bots_cannot_create_bots(bot, http):
    _, body = bot
    (await http("POST", "/api/bots", token=body["token"], json={"name": unique_name("sub")})).error(
        403, "forbidden")


async def test_bot_list_is_the_callers_own(bot, make_account, http):
    other = await make_account()
    assert (await http("GET", "/api/bots", token=other.token)).body == {"items": []}



@with_settings(login_attempts=2)
async def test_repeated_failed_sign_ins_are_429_with_retry_after(http):
    name = unique_name("guess")
    await http("POST", "/api/users", json={"name": name, "password": "right"})
    for _ in range(2):
        (await http("POST", "/api/tokens", json={"name": name, "password": "wrong"})).error(401, "unauthorized")
    limited = await http("POST", "/api/tokens", json={"name": name, "password": "right"})
    limited.error(429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1


async def test_body_too_large_is_413(http, make_account):
    alice = await make_account()
    huge = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    reply = await http("POST", "/api/rooms", token=alice.token, data=huge, headers={"Content-Type": "application/json"})
    reply.error(413, "too_large")
