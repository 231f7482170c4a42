"""Rooms, members, roles, messages and presence over HTTP (docs/protocol.md §12.4), with status codes and
the error shape."""

from __future__ import annotations

import pytest

from .conftest import seqs


@pytest.fixture
async def group(make_account, http):
    """An invite-only group of alice (owner) and bob (member), and carol outside it: (room, alice, bob, carol)."""
    alice = await make_account("alice")
    bob = await make_account("bob")
    carol = await make_account("carol")
    room = (await http("POST", "/api/rooms", token=alice.token, json={"name": "class of 2010"})).body
    assert (await http("POST", f"/api/rooms/{room['id']}/members", token=alice.token,
                       json={"user_id": bob.id})).status == 201
    return room, alice, bob, carol


def room_path(room, suffix: str = "") -> str:
    return f"/api/rooms/{room['id']}{suffix}"


# ---------------------------------------------------------------------------- create / read


async def test_create_room_is_201_with_the_creator_as_owner(make_account, http):
    alice = await make_account("alice")
    reply = await http("POST", "/api/rooms", token=alice.token,
                       json={"name": "reunion", "topic": "2010", "join_policy": "open"})
    assert reply.status == 201
    room = reply.body
    assert set(room) == {"id", "name", "topic", "join_policy", "owner", "member_count", "last_seq", "kind",
                         "avatar", "muted", "announcement"}
    assert (room["kind"], room["muted"], room["announcement"]) == ("group", False, None)
    assert (room["name"], room["topic"], room["join_policy"], room["member_count"], room["last_seq"]) == (
        "reunion", "2010", "open", 1, 0)
    assert room["owner"] == alice.user
    members = (await http("GET", room_path(room, "/members"), token=alice.token)).body["items"]
    assert [(m["user"], m["role"]) for m in members] == [(alice.user, "owner")]


async def test_join_policy_defaults_to_invite(make_account, http):
    alice = await make_account()
    room = (await http("POST", "/api/rooms", token=alice.token, json={"name": "private"})).body
    assert room["join_policy"] == "invite"


async def test_create_room_with_wrong_fields_is_422_naming_the_field(make_account, http):
    alice = await make_account()
    for body, field in (
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "g", "join_policy": "public"}, "join_policy"),
        ({"name": "g", "topic": 5}, "topic"),
    ):
        (await http("POST", "/api/rooms", token=alice.token, json=body)).error(422, "invalid", field)
    assert (await http("GET", "/api/rooms", token=alice.token)).body == {"items": []}


async def test_list_rooms_is_mine_only(group, http):
    room, alice, bob, carol = group
    other = (await http("POST", "/api/rooms", token=carol.token, json={"name": "carol's"})).body
    mine = await http("GET", "/api/rooms", token=bob.token)
    assert mine.status == 200 and [r["id"] for r in mine.body["items"]] == [room["id"]]
    assert mine.body["items"][0]["member_count"] == 2 and mine.body["items"][0]["last_seq"] == 1
    assert [r["id"] for r in (await http("GET", "/api/rooms", token=carol.token)).body["items"]] == [other["id"]]


async def test_get_room(group, http):
    room, alice, bob, carol = group
    reply = await http("GET", room_path(room), token=bob.token)
    assert reply.status == 200
    assert reply.body == {**room, "member_count": 2, "last_seq": 1}
    (await http("GET", room_path(room), token=carol.token)).error(403, "forbidden")
    (await http("GET", "/api/rooms/no-such-room", token=bob.token)).error(404, "not_found")


async def test_non_member_may_get_an_open_room_and_nothing_else(make_account, http):
    alice = await make_account()
    carol = await make_account()
    room = (await http("POST", "/api/rooms", token=alice.token, json={"name": "open", "join_policy": "open"})).body
    reply = await http("GET", room_path(room), token=carol.token)
    assert reply.status == 200 and reply.body["id"] == room["id"]
    (await http("GET", room_path(room, "/members"), token=carol.token)).error(403, "forbidden")
    (await http("GET", room_path(room, "/messages"), token=carol.token)).error(403, "forbidden")
    (await http("GET", room_path(room, "/online"), token=carol.token)).error(403, "forbidden")
    (await http("POST", room_path(room, "/messages"), token=carol.token, json={"text": "hi", "cid": "c"})).error(
        403, "forbidden")
    (await http("PATCH", room_path(room), token=carol.token, json={"topic": "mine"})).error(403, "forbidden")
    (await http("PUT", room_path(room, f"/members/{alice.id}/role"), token=carol.token, json={"role": "member"})
     ).error(403, "forbidden")
    (await http("DELETE", room_path(room, f"/members/{alice.id}"), token=carol.token)).error(403, "forbidden")
    assert [r["id"] for r in (await http("GET", "/api/rooms", token=carol.token)).body["items"]] == []


async def test_unknown_room_is_404_and_no_token_is_401_on_every_route(make_account, http):
    alice = await make_account()
    for method, suffix, body in (
        ("GET", "", None),
        ("PATCH", "", {"topic": "t"}),
        ("GET", "/members", None),
        ("POST", "/members", {"user_id": alice.id}),
        ("DELETE", f"/members/{alice.id}", None),
        ("PUT", f"/members/{alice.id}/role", {"role": "admin"}),
        ("GET", "/messages", None),
        ("POST", "/messages", {"text": "t", "cid": "c"}),
        ("GET", "/online", None),
    ):
        path = f"/api/rooms/no-such-room{suffix}"
        (await http(method, path, token=alice.token, json=body)).error(404, "not_found")
        (await http(method, path, json=body)).error(401, "unauthorized")


# ---------------------------------------------------------------------------- update


async def test_owner_or_admin_updates_the_room_and_room_updated_is_posted(group, http, connect):
    room, alice, bob, carol = group
    b = await connect(bob)
    reply = await http("PATCH", room_path(room), token=alice.token, json={"name": "renamed", "topic": "new"})
    assert reply.status == 200
    assert (reply.body["name"], reply.body["topic"], reply.body["join_policy"]) == ("renamed", "new", "invite")
    assert reply.body["last_seq"] == 2
    event = await b.expect("message", room=room["id"])
    assert (event["seq"], event["system"]["type"]) == (2, "room.updated")
    assert event["system"]["data"]["by"] == alice.user
    assert event["system"]["data"]["changes"] == {"name": "renamed", "topic": "new"}

    (await http("PATCH", room_path(room), token=bob.token, json={"topic": "mine"})).error(403, "forbidden")
    await http("PUT", room_path(room, f"/members/{bob.id}/role"), token=alice.token, json={"role": "admin"})
    reply = await http("PATCH", room_path(room), token=bob.token, json={"join_policy": "open"})
    assert reply.status == 200 and reply.body["join_policy"] == "open"
    (await http("PATCH", room_path(room), token=bob.token, json={"join_policy": "closed"})).error(
        422, "invalid", "join_policy")


# ---------------------------------------------------------------------------- members


async def test_members_list_has_user_role_joined(group, http):
    room, alice, bob, carol = group
    reply = await http("GET", room_path(room, "/members"), token=bob.token)
    assert reply.status == 200
    items = reply.body["items"]
    assert {m["user"]["id"]: m["role"] for m in items} == {alice.id: "owner", bob.id: "member"}
    for member in items:
        assert set(member) == {"user", "role", "joined", "nickname", "muted_until"} and isinstance(member["joined"], int)
    (await http("GET", room_path(room, "/members"), token=carol.token)).error(403, "forbidden")


async def test_owner_adds_anyone_with_member_joined(group, http, connect):
    room, alice, bob, carol = group
    b = await connect(bob)
    reply = await http("POST", room_path(room, "/members"), token=alice.token, json={"user_id": carol.id})
    assert reply.status == 201
    assert (reply.body["user"], reply.body["role"]) == (carol.user, "member")
    event = await b.expect("message", room=room["id"])
    assert event["system"] == {"type": "member.joined", "data": {"user": carol.user, "by": alice.user}}
    (await http("POST", room_path(room, "/members"), token=alice.token, json={"user_id": carol.id})).error(
        409, "conflict")
    (await http("POST", room_path(room, "/members"), token=alice.token, json={"user_id": "no-such-user"})).error(
        404, "not_found")
    (await http("POST", room_path(room, "/members"), token=alice.token, json={})).error(422, "invalid", "user_id")


async def test_plain_member_may_not_add_others_and_nobody_adds_themselves_to_invite_rooms(group, make_account,
                                                                                          http):
    room, alice, bob, carol = group
    (await http("POST", room_path(room, "/members"), token=bob.token, json={"user_id": carol.id})).error(
        403, "forbidden")
    (await http("POST", room_path(room, "/members"), token=carol.token, json={"user_id": carol.id})).error(
        403, "forbidden")
    assert (await http("GET", room_path(room), token=alice.token)).body["member_count"] == 2


async def test_anyone_adds_themselves_to_an_open_room(make_account, http, connect):
    alice = await make_account()
    carol = await make_account()
    dave = await make_account()
    room = (await http("POST", "/api/rooms", token=alice.token, json={"name": "open", "join_policy": "open"})).body
    a = await connect(alice)
    reply = await http("POST", room_path(room, "/members"), token=carol.token, json={"user_id": carol.id})
    assert reply.status == 201 and reply.body["role"] == "member"
    event = await a.expect("message", room=room["id"])
    assert event["system"] == {"type": "member.joined", "data": {"user": carol.user}}
    # ... but only themselves.
    (await http("POST", room_path(room, "/members"), token=carol.token, json={"user_id": dave.id})).error(
        403, "forbidden")


@pytest.mark.parametrize("by_owner", [False, True], ids=["leave", "kick"])
async def test_leave_or_kick_is_204_with_member_left_or_kicked(group, http, connect, by_owner):
    room, alice, bob, carol = group
    a = await connect(alice)
    actor = alice if by_owner else bob
    reply = await http("DELETE", room_path(room, f"/members/{bob.id}"), token=actor.token)
    assert (reply.status, reply.body) == (204, None)
    event = await a.expect("message", room=room["id"])
    if by_owner:
        assert event["system"] == {"type": "member.kicked", "data": {"user": bob.user, "by": alice.user}}
    else:
        assert event["system"] == {"type": "member.left", "data": {"user": bob.user}}
    (await http("GET", room_path(room, "/messages"), token=bob.token)).error(403, "forbidden")
    (await http("DELETE", room_path(room, f"/members/{bob.id}"), token=bob.token)).error(403, "forbidden")
    (await http("DELETE", room_path(room, f"/members/{carol.id}"), token=alice.token)).error(404, "not_found")


async def test_plain_member_may_not_kick(group, http):
    room, alice, bob, carol = group
    (await http("DELETE", room_path(room, f"/members/{alice.id}"), token=bob.token)).error(403, "forbidden")
    await http("POST", room_path(room, "/members"), token=alice.token, json={"user_id": carol.id})
    (await http("DELETE", room_path(room, f"/members/{carol.id}"), token=bob.token)).error(403, "forbidden")


async def test_admin_kicks_members_but_not_the_owner_or_admins(group, http):
    room, alice, bob, carol = group
    await http("POST", room_path(room, "/members"), token=alice.token, json={"user_id": carol.id})
    await http("PUT", room_path(room, f"/members/{bob.id}/role"), token=alice.token, json={"role": "admin"})
    await http("PUT", room_path(room, f"/members/{carol.id}/role"), token=alice.token, json={"role": "admin"})
    (await http("DELETE", room_path(room, f"/members/{alice.id}"), token=bob.token)).error(403, "forbidden")
    (await http("DELETE", room_path(room, f"/members/{carol.id}"), token=bob.token)).error(403, "forbidden")
    await http("PUT", room_path(room, f"/members/{carol.id}/role"), token=alice.token, json={"role": "member"})
    assert (await http("DELETE", room_path(room, f"/members/{carol.id}"), token=bob.token)).status == 204


async def test_owner_cannot_leave(group, http):
    room, alice, bob, carol = group
    (await http("DELETE", room_path(room, f"/members/{alice.id}"), token=alice.token)).error(409, "conflict")


# ---------------------------------------------------------------------------- roles


async def test_owner_sets_roles_with_200_member(group, http):
    room, alice, bob, carol = group
    reply = await http("PUT", room_path(room, f"/members/{bob.id}/role"), token=alice.token, json={"role": "admin"})
    assert reply.status == 200
    assert set(reply.body) == {"user", "role", "joined", "nickname", "muted_until"}
    assert (reply.body["user"], reply.body["role"]) == (bob.user, "admin")
    # Only the owner: an admin may not set roles.
    await http("POST", room_path(room, "/members"), token=alice.token, json={"user_id": carol.id})
    (await http("PUT", room_path(room, f"/members/{carol.id}/role"), token=bob.token, json={"role": "admin"})
     ).error(403, "forbidden")
    (await http("PUT", room_path(room, f"/members/{bob.id}/role"), token=alice.token, json={"role": "king"})
     ).error(422, "invalid", "role")
    (await http("PUT", room_path(room, "/members/no-such-user/role"), token=alice.token, json={"role": "admin"})
     ).error(404, "not_found")


async def test_making_someone_owner_hands_the_group_over(group, http):
    room, alice, bob, carol = group
    reply = await http("PUT", room_path(room, f"/members/{bob.id}/role"), token=alice.token, json={"role": "owner"})
    assert reply.status == 200 and reply.body["role"] == "owner"
    assert (await http("GET", room_path(room), token=alice.token)).body["owner"] == bob.user
    roles = {m["user"]["id"]: m["role"] for m in (await http("GET", room_path(room, "/members"), token=alice.token)
                                                    ).body["items"]}
    assert roles == {alice.id: "admin", bob.id: "owner"}


# ---------------------------------------------------------------------------- messages


async def test_post_message_is_201_then_200_dup_for_a_repeated_cid(group, http, connect):
    room, alice, bob, carol = group
    b = await connect(bob)
    path = room_path(room, "/messages")
    reply = await http("POST", path, token=alice.token, json={"text": "hello", "cid": "c-1"})
    assert reply.status == 201
    assert set(reply.body) == {"seq", "id", "ts", "dup"} and reply.body["seq"] == 2 and reply.body["dup"] is False
    event = await b.expect("message", room=room["id"])
    assert (event["seq"], event["id"], event["text"], event["cid"], event["from"]) == (
        2, reply.body["id"], "hello", "c-1", alice.user)
    again = await http("POST", path, token=alice.token, json={"text": "hello?", "cid": "c-1"})
    assert again.status == 200 and again.body == {**reply.body, "dup": True}
    assert [f for f in await b.drain() if f["op"] == "message"] == []
    history = (await http("GET", path, token=bob.token)).body
    assert seqs(history["messages"]) == [1, 2]


async def test_post_message_with_wrong_fields(group, http):
    room, alice, bob, carol = group
    for body, status, field in (
        ({"text": "no cid"}, 422, "cid"),
        ({"cid": "no text"}, 422, "text"),
        ({"text": "x", "cid": ""}, 422, "cid"),
        ({"text": "x", "cid": "c" * 65}, 422, "cid"),
        ({"text": "", "cid": "empty"}, 422, "text"),
        ({"text": "x" * 4001, "cid": "long"}, 413, "text"),  # like `too_large` over WebSocket
    ):
        code = "too_large" if status == 413 else "invalid"
        (await http("POST", room_path(room, "/messages"), token=alice.token, json=body)).error(status, code, field)
    assert (await http("GET", room_path(room), token=alice.token)).body["last_seq"] == 1


async def test_history_over_http_pages_both_ways(group, http):
    room, alice, bob, carol = group
    path = room_path(room, "/messages")
    for i in range(9):  # seqs 2..10
        await http("POST", path, token=alice.token, json={"text": f"m{i}", "cid": f"c{i}"})
    page = (await http("GET", f"{path}?limit=3", token=bob.token)).body
    assert set(page) == {"messages", "more", "last_seq"}
    assert (seqs(page["messages"]), page["more"], page["last_seq"]) == ([8, 9, 10], True, 10)
    page = (await http("GET", f"{path}?before=8&limit=3", token=bob.token)).body
    assert (seqs(page["messages"]), page["more"]) == ([5, 6, 7], True)
    page = (await http("GET", f"{path}?after=8&limit=5", token=bob.token)).body
    assert (seqs(page["messages"]), page["more"]) == ([9, 10], False)
    page = (await http("GET", path, token=bob.token)).body
    assert (seqs(page["messages"]), page["more"]) == (list(range(1, 11)), False)
    message = page["messages"][1]
    assert (message["room"], message["text"], message["kind"], message["from"]) == (
        room["id"], "m0", "text", alice.user)


async def test_history_query_out_of_bounds_is_422(group, http):
    room, alice, bob, carol = group
    for query, field in (("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"), ("before=x", "before"),
                         ("after=-1", "after")):
        (await http("GET", room_path(room, f"/messages?{query}"), token=bob.token)).error(422, "invalid", field)


async def test_online_counts_distinct_users(group, http, connect):
    room, alice, bob, carol = group
    await connect(bob)
    await connect(bob)
    reply = await http("GET", room_path(room, "/online"), token=alice.token)
    assert reply.status == 200 and reply.body == {"online": [bob.id], "count": 1}
    await connect(alice)
    reply = await http("GET", room_path(room, "/online"), token=alice.token)
    assert sorted(reply.body["online"]) == sorted([alice.id, bob.id]) and reply.body["count"] == 2
