"""People over HTTP (docs/protocol.md §12.13): finding users, a user's page, the caller's own account
(display name, password) and blocks, through a real server."""

from __future__ import annotations

import uuid


async def test_find_people_by_name_or_display_any_case_paged(http, make_account):
    alice = await make_account("findme")
    await alice.api.patch("/api/me", {"display": "王小明 Ming"})
    bob = await make_account("findme")
    await make_account("other")
    reply = await http("GET", "/api/users?q=FINDME", token=bob.token)
    assert reply.status == 200
    assert sorted(u["id"] for u in reply.body["items"]) == sorted([alice.id, bob.id])
    assert reply.body["next"] is None
    for q in ("小明", "王小明", "ming"):
        reply = await http("GET", f"/api/users?q={q}", token=bob.token)
        assert [u["id"] for u in reply.body["items"]] == [alice.id], q
        assert set(reply.body["items"][0]) == set(alice.user)  # a user object, nothing more
    first = await http("GET", "/api/users?q=findme&limit=1", token=bob.token)
    assert len(first.body["items"]) == 1 and first.body["next"]
    rest = await http("GET", f"/api/users?q=findme&limit=1&before={first.body['next']}", token=bob.token)
    assert {first.body["items"][0]["id"], rest.body["items"][0]["id"]} == {alice.id, bob.id}
    assert rest.body["next"] is None


async def test_people_query_bounds_are_422(http, make_account):
    alice = await make_account()
    for q in ("", "a", "x" * 65):
        (await http("GET", f"/api/users?q={q}", token=alice.token)).error(422, "invalid", "q")
    (await http("GET", "/api/users", token=alice.token)).error(422, "invalid", "q")
    (await http("GET", "/api/users?q=ab")).error(401, "unauthorized")


async def test_a_user_page_has_created_and_unknown_is_404(http, make_account):
    alice, bob = await make_account(), await make_account()
    reply = await http("GET", f"/api/users/{alice.id}", token=bob.token)
    assert reply.status == 200
    assert {k: reply.body[k] for k in alice.user} == alice.user and set(reply.body) == {*alice.user, "created"}
    assert isinstance(reply.body["created"], int) and reply.body["created"] > 0
    (await http("GET", "/api/users/nobody", token=bob.token)).error(404, "not_found")


async def test_change_display(http, make_account):
    alice = await make_account()
    reply = await http("PATCH", "/api/me", token=alice.token, json={"display": "Alice 李"})
    assert reply.status == 200 and reply.body == {**alice.user, "display": "Alice 李"}
    assert (await http("GET", "/api/me", token=alice.token)).body["display"] == "Alice 李"
    for display in ("", "   ", "x" * 65):
        (await http("PATCH", "/api/me", token=alice.token, json={"display": display})).error(422, "invalid", "display")


async def test_new_password_ends_every_other_token_and_their_connections(http, make_account, connect):
    alice = await make_account(password="old secret")
    other = await alice.api.login(alice.user["name"], "old secret")
    doomed = await connect(other)
    kept = await connect(alice)
    (await http("PATCH", "/api/me", token=alice.token,
                json={"password": {"old": "wrong", "new": "new secret"}})).error(403, "forbidden")
    assert (await http("GET", "/api/me", token=other)).status == 200  # a wrong old password changed nothing
    reply = await http("PATCH", "/api/me", token=alice.token, json={"password": {"old": "old secret", "new": "new secret"}})
    assert reply.status == 200 and reply.body == alice.user
    assert await doomed.closed() == 4001
    (await http("GET", "/api/me", token=other)).error(401, "unauthorized")
    assert (await http("GET", "/api/me", token=alice.token)).status == 200  # the token that asked goes on
    assert (await kept.call("ping"))["op"] == "pong"
    (await http("POST", "/api/tokens", json={"name": alice.user["name"], "password": "old secret"})).error(
        401, "unauthorized")
    assert (await http("POST", "/api/tokens", json={"name": alice.user["name"], "password": "new secret"})).status == 201


async def test_blocks(http, make_account):
    alice, bob, carol = await make_account(), await make_account(), await make_account()
    for who in (bob, carol):
        assert (await http("PUT", f"/api/me/blocks/{who.id}", token=alice.token)).status == 204
    assert (await http("PUT", f"/api/me/blocks/{bob.id}", token=alice.token)).status == 204  # twice: the same
    reply = await http("GET", "/api/me/blocks", token=alice.token)
    assert sorted(u["id"] for u in reply.body["items"]) == sorted([bob.id, carol.id])
    assert reply.body["items"][0].keys() == alice.user.keys()
    assert (await http("GET", "/api/me/blocks", token=bob.token)).body["items"] == []  # blocks are one-way
    assert (await http("DELETE", f"/api/me/blocks/{bob.id}", token=alice.token)).status == 204
    assert [u["id"] for u in (await http("GET", "/api/me/blocks", token=alice.token)).body["items"]] == [carol.id]
    (await http("PUT", "/api/me/blocks/nobody", token=alice.token)).error(404, "not_found")
    (await http("PUT", f"/api/me/blocks/{alice.id}", token=alice.token)).error(422, "invalid")


async def test_display_change_shows_in_messages_already_sent(http, make_account, make_room):
    alice = await make_account()
    room, _ = await make_room(owner=alice)
    await alice.api.post(f"/api/rooms/{room['id']}/messages", {"text": "hi", "cid": uuid.uuid4().hex})
    await alice.api.patch("/api/me", {"display": "Renamed"})
    history = await alice.api.get(f"/api/rooms/{room['id']}/messages")
    assert history["messages"][-1]["from"]["display"] == "Renamed"


async def test_a_blocked_user_cannot_open_a_direct_room_with_the_blocker(http, make_account):
    alice, bob = await make_account(), await make_account()
    await alice.api.put(f"/api/me/blocks/{bob.id}")
    (await http("POST", "/api/dms", token=bob.token, json={"user_id": alice.id})).error(403, "forbidden")
    # One-way: the blocker may still open one.
    assert (await http("POST", "/api/dms", token=alice.token, json={"user_id": bob.id})).status == 201
    await alice.api.delete(f"/api/me/blocks/{bob.id}")
    assert (await http("POST", "/api/dms", token=bob.token, json={"user_id": alice.id})).status == 200
