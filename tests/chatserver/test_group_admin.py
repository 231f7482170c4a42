"""Running a group (docs/protocol.md §12.14) on one node: mutes and mute-all and their enforcement on
`send` (WebSocket and HTTP), bans, join approval, announcements, group cards, dissolving, the size limit.

SQLite by default; CHAT_TEST_DATABASE=postgresql runs the same on PostgreSQL.
The cross-node rules are in tests/test_cluster.py.
"""

from __future__ import annotations

import uuid

import pytest

from .conftest import with_settings


@pytest.fixture
async def group(make_account, make_room, connect):
    """alice owns an invite-only group with admin ann and members bob and cat; bob is connected.

    Returns (room_id, alice, ann, bob, cat, bob_wire)."""
    alice, ann, bob, cat = [await make_account(n) for n in ("alice", "ann", "bob", "cat")]
    room, _ = await make_room(owner=alice, members=[ann, bob, cat])
    await alice.api.put(f"/api/rooms/{room['id']}/members/{ann.id}/role", {"role": "admin"})
    return room["id"], alice, ann, bob, cat, await connect(bob)


def send(room: str, text: str = "hi") -> dict:
    return {"op": "send", "room": room, "text": text, "cid": uuid.uuid4().hex}


async def system_of(wire, room: str, type_: str) -> dict:
    """Skip to the room's next system message of this type."""
    while True:
        frame = await wire.expect("message", room=room, kind="system")
        if frame["system"]["type"] == type_:
            return frame


# ---------------------------------------------------------------------------- mute one member


async def test_a_muted_member_cannot_send_until_unmuted(group, http):
    room, alice, ann, bob, cat, wire = group
    reply = await http("PUT", f"/api/rooms/{room}/members/{bob.id}/mute", token=alice.token, json={"seconds": 600})
    assert reply.status == 200, reply.body
    assert reply.body["user"] == bob.user and reply.body["muted_until"] > 0
    muted = await system_of(wire, room, "member.muted")
    assert muted["system"]["data"] == {"user": bob.user, "by": alice.user, "until": reply.body["muted_until"]}
    assert muted["text"] == f"{alice.user['display']} muted {bob.user['display']} for 10 minutes"
    refused = await wire.request(send(room))
    assert (refused["op"], refused["code"]) == ("error", "forbidden")
    assert 590_000 < refused["retry_after"] <= 600_000
    (await http("POST", f"/api/rooms/{room}/messages", token=bob.token,
                json={"text": "hi", "cid": "h1"})).error(403, "forbidden")
    members = (await http("GET", f"/api/rooms/{room}/members", token=cat.token)).body["items"]
    assert {m["user"]["id"]: m["muted_until"] for m in members}[bob.id] == reply.body["muted_until"]
    assert (await http("DELETE", f"/api/rooms/{room}/members/{bob.id}/mute", token=ann.token)).status == 204
    unmuted = await system_of(wire, room, "member.unmuted")
    assert unmuted["system"]["data"] == {"user": bob.user, "by": ann.user}
    assert (await wire.request(send(room)))["op"] == "ack"


async def test_a_mute_outlives_leaving_and_rejoining(make_account, make_room, connect, http):
    alice, bob = await make_account("alice"), await make_account("bob")
    room, _ = await make_room(owner=alice, members=[bob], join_policy="open")
    room = room["id"]
    await alice.api.put(f"/api/rooms/{room}/members/{bob.id}/mute", {"seconds": 3600})
    await bob.api.delete(f"/api/rooms/{room}/members/{bob.id}")
    await bob.api.add_member(room, bob.id)
    wire = await connect(bob)
    refused = await wire.request(send(room))
    assert refused["code"] == "forbidden" and refused["retry_after"] > 3_500_000
    (await http("POST", f"/api/rooms/{room}/messages", token=bob.token,
                json={"text": "hi", "cid": "c"})).error(403, "forbidden")


async def test_who_may_mute_whom(group, http):
    room, alice, ann, bob, cat, wire = group
    path = f"/api/rooms/{room}/members/{{}}/mute"
    body = {"seconds": 60}
    (await http("PUT", path.format(alice.id), token=ann.token, json=body)).error(403, "forbidden")
    (await http("PUT", path.format(ann.id), token=ann.token, json=body)).error(403, "forbidden")
    (await http("PUT", path.format(alice.id), token=alice.token, json=body)).error(403, "forbidden")
    (await http("PUT", path.format(cat.id), token=bob.token, json=body)).error(403, "forbidden")
    assert (await http("PUT", path.format(ann.id), token=alice.token, json=body)).status == 200
    assert (await http("PUT", path.format(cat.id), token=ann.token, json=body)).status == 200
    for seconds in (59, 2_592_001, "60"):
        (await http("PUT", path.format(bob.id), token=alice.token, json={"seconds": seconds})).error(
            422, "invalid", "seconds")
    (await http("PUT", path.format("u_nobody"), token=alice.token, json=body)).error(404, "not_found")
    (await http("PUT", f"/api/rooms/r_nothing/members/{bob.id}/mute", token=alice.token, json=body)).error(
        404, "not_found")


async def test_mute_all_lets_only_the_owner_and_admins_send(group, connect, http):
    room, alice, ann, bob, cat, wire = group
    reply = await http("PATCH", f"/api/rooms/{room}", token=ann.token, json={"muted": True})
    assert reply.status == 200 and reply.body["muted"] is True
    updated = await system_of(wire, room, "room.updated")
    assert updated["system"]["data"]["changes"] == {"muted": True}
    refused = await wire.request(send(room))
    assert refused["code"] == "forbidden" and "retry_after" not in refused
    (await http("POST", f"/api/rooms/{room}/messages", token=bob.token, json={"text": "x", "cid": "1"})).error(
        403, "forbidden")
    for admin in (alice, ann):
        assert (await (await connect(admin)).request(send(room)))["op"] == "ack"
    # A member made admin may send at once; an admin made member no longer may.
    await alice.api.put(f"/api/rooms/{room}/members/{bob.id}/role", {"role": "admin"})
    await system_of(wire, room, "room.updated")
    assert (await wire.request(send(room)))["op"] == "ack"
    await alice.api.put(f"/api/rooms/{room}/members/{bob.id}/role", {"role": "member"})
    await system_of(wire, room, "room.updated")
    assert (await wire.request(send(room)))["code"] == "forbidden"
    await alice.api.patch(f"/api/rooms/{room}", {"muted": False})
    await system_of(wire, room, "room.updated")
    assert (await wire.request(send(room)))["op"] == "ack"
    (await http("PATCH", f"/api/rooms/{room}", token=bob.token, json={"muted": True})).error(403, "forbidden")


async def test_a_restarted_server_still_knows_the_mute(database_url, make_account, make_room):
    """State lives in storage: a fresh app on the same database loads it when the room is set up."""
    from aiohttp.test_utils import TestServer

    from chatserver.app import create_app
    from chatserver.config import Settings
    from client_proto.client import ChatClient, ChatError
    from tests.conftest import free_port

    alice, bob = await make_account("alice"), await make_account("bob")
    room, _ = await make_room(owner=alice, members=[bob])
    await alice.api.put(f"/api/rooms/{room['id']}/members/{bob.id}/mute", {"seconds": 600})
    second = TestServer(create_app(Settings(database_url=database_url)), host="127.0.0.1", port=free_port())
    await second.start_server()
    try:
        async with ChatClient(str(second.make_url("/ws")).replace("http", "ws", 1), bob.token) as client:
            with pytest.raises(ChatError) as refused:
                await client.send(room["id"], "hi")
        assert refused.value.code == "forbidden"
    finally:
        await second.close()


# ---------------------------------------------------------------------------- bans


async def test_a_ban_removes_the_member_and_keeps_them_out_until_lifted(make_account, make_room, connect, http):
    alice, ann, bob = await make_account("alice"), await make_account("ann"), await make_account("bob")
    room, _ = await make_room(owner=alice, members=[ann, bob], join_policy="open")
    room = room["id"]
    await alice.api.put(f"/api/rooms/{room}/members/{ann.id}/role", {"role": "admin"})
    watcher = await connect(alice)
    reply = await http("PUT", f"/api/rooms/{room}/bans/{bob.id}", token=ann.token, json={"reason": "spam"})
    assert reply.status == 200, reply.body
    assert {k: reply.body[k] for k in ("user", "by", "reason")} == {"user": bob.user, "by": ann.user, "reason": "spam"}
    kicked = await system_of(watcher, room, "member.kicked")
    assert kicked["system"]["data"] == {"user": bob.user, "by": ann.user}
    (await http("POST", f"/api/rooms/{room}/members", token=bob.token, json={"user_id": bob.id})).error(403, "forbidden")
    (await http("POST", f"/api/rooms/{room}/members", token=alice.token, json={"user_id": bob.id})).error(
        403, "forbidden")
    bob_wire = await connect(bob)
    assert (await bob_wire.request({"op": "join", "room": room}))["code"] == "forbidden"
    bans = (await http("GET", f"/api/rooms/{room}/bans", token=alice.token)).body["items"]
    assert [b["user"]["id"] for b in bans] == [bob.id]
    (await http("GET", f"/api/rooms/{room}/bans", token=bob.token)).error(403, "forbidden")
    assert (await http("DELETE", f"/api/rooms/{room}/bans/{bob.id}", token=alice.token)).status == 204
    (await http("DELETE", f"/api/rooms/{room}/bans/{bob.id}", token=alice.token)).error(404, "not_found")
    assert (await bob_wire.request({"op": "join", "room": room}))["op"] == "ok"


async def test_a_kicked_user_of_an_open_group_may_rejoin_but_a_banned_one_not(make_account, make_room, http):
    alice, bob = await make_account("alice"), await make_account("bob")
    room, _ = await make_room(owner=alice, members=[bob], join_policy="open")
    path = f"/api/rooms/{room['id']}/members"
    await alice.api.delete(f"{path}/{bob.id}")
    assert (await http("POST", path, token=bob.token, json={"user_id": bob.id})).status == 201
    await alice.api.put(f"/api/rooms/{room['id']}/bans/{bob.id}", {})
    (await http("POST", path, token=bob.token, json={"user_id": bob.id})).error(403, "forbidden")


async def test_who_may_ban_whom(group, http):
    room, alice, ann, bob, cat, wire = group
    (await http("PUT", f"/api/rooms/{room}/bans/{alice.id}", token=ann.token, json={})).error(403, "forbidden")
    (await http("PUT", f"/api/rooms/{room}/bans/{alice.id}", token=alice.token, json={})).error(403, "forbidden")
    (await http("PUT", f"/api/rooms/{room}/bans/{ann.id}", token=ann.token, json={})).error(403, "forbidden")
    (await http("PUT", f"/api/rooms/{room}/bans/{cat.id}", token=bob.token, json={})).error(403, "forbidden")
    (await http("PUT", f"/api/rooms/{room}/bans/u_nobody", token=alice.token, json={})).error(404, "not_found")
    stranger = (await http("POST", "/api/users", json={"name": f"s{uuid.uuid4().hex[:8]}", "password": "pw"})).body
    reply = await http("PUT", f"/api/rooms/{room}/bans/{stranger['id']}", token=ann.token)  # no body: no reason
    assert reply.status == 200 and reply.body["reason"] == ""
    assert (await http("PUT", f"/api/rooms/{room}/bans/{ann.id}", token=alice.token, json={})).status == 200


# ---------------------------------------------------------------------------- join approval


async def test_join_approval(make_account, make_room, connect, http):
    alice, ann, dan = await make_account("alice"), await make_account("ann"), await make_account("dan")
    room, _ = await make_room(owner=alice, members=[ann], join_policy="approval")
    room = room["id"]
    await alice.api.put(f"/api/rooms/{room}/members/{ann.id}/role", {"role": "admin"})
    owner_wire, admin_wire, dan_wire = await connect(alice), await connect(ann), await connect(dan)
    assert (await dan_wire.request({"op": "join", "room": room}))["code"] == "forbidden"
    await alice.api.post(f"/api/rooms/{room}/announcements", {"text": "members only"})
    seen = await http("GET", f"/api/rooms/{room}", token=dan.token)  # he may see what he asks to join ...
    assert seen.status == 200 and seen.body["announcement"] is None  # ... but not what only members read
    reply = await http("POST", f"/api/rooms/{room}/members", token=dan.token, json={"user_id": dan.id, "note": "hi"})
    assert reply.status == 202, reply.body
    request = reply.body
    assert set(request) == {"id", "room", "user", "note", "status", "created"}
    assert (request["room"], request["user"], request["note"], request["status"]) == (room, dan.user, "hi", "pending")
    for wire in (owner_wire, admin_wire):
        notify = await wire.expect("notify", type="join_request")
        assert notify["request"] == request
    (await http("POST", f"/api/rooms/{room}/members", token=dan.token, json={"user_id": dan.id})).error(
        409, "conflict")
    (await http("GET", f"/api/rooms/{room}/requests", token=dan.token)).error(403, "forbidden")
    (await http("GET", f"/api/rooms/{room}/requests?status=maybe", token=alice.token)).error(422, "invalid", "status")
    listed = (await http("GET", f"/api/rooms/{room}/requests?status=pending", token=ann.token)).body["items"]
    assert listed == [request]
    (await http("POST", f"/api/room-requests/{request['id']}/approve", token=dan.token)).error(403, "forbidden")
    approved = await http("POST", f"/api/room-requests/{request['id']}/approve", token=ann.token)
    assert approved.status == 200 and approved.body["status"] == "approved"
    joined = await system_of(owner_wire, room, "member.joined")
    assert (await http("GET", f"/api/rooms/{room}", token=dan.token)).body["announcement"]["text"] == "members only"
    assert joined["system"]["data"] == {"user": dan.user, "by": ann.user}
    assert (await dan_wire.expect("message", room=room))["seq"] == joined["seq"]  # he hears the room at once
    (await http("POST", f"/api/room-requests/{request['id']}/decline", token=alice.token)).error(409, "conflict")
    (await http("POST", "/api/room-requests/jr_nothing/approve", token=alice.token)).error(404, "not_found")
    assert (await http("GET", f"/api/rooms/{room}/requests?status=pending", token=ann.token)).body["items"] == []


async def test_a_declined_requester_may_ask_again_and_a_banned_one_may_not(make_account, make_room, http):
    alice, dan = await make_account("alice"), await make_account("dan")
    room, _ = await make_room(owner=alice, join_policy="approval")
    path = f"/api/rooms/{room['id']}/members"
    first = (await http("POST", path, token=dan.token, json={"user_id": dan.id})).body
    declined = await http("POST", f"/api/room-requests/{first['id']}/decline", token=alice.token)
    assert declined.status == 200 and declined.body["status"] == "declined"
    assert (await http("POST", path, token=dan.token, json={"user_id": dan.id})).status == 202
    await alice.api.put(f"/api/rooms/{room['id']}/bans/{dan.id}", {})
    statuses = {r["status"] for r in (await alice.api.get(f"/api/rooms/{room['id']}/requests"))["items"]}
    assert statuses == {"declined"}  # the ban declined his pending request
    (await http("POST", path, token=dan.token, json={"user_id": dan.id})).error(403, "forbidden")


# ---------------------------------------------------------------------------- announcements


async def test_announcements(group, http):
    room, alice, ann, bob, cat, wire = group
    path = f"/api/rooms/{room}/announcements"
    (await http("POST", path, token=bob.token, json={"text": "hi"})).error(403, "forbidden")
    for text in ("", "x" * 2001):
        (await http("POST", path, token=alice.token, json={"text": text})).error(422, "invalid", "text")
    first = await http("POST", path, token=alice.token, json={"text": "picnic on Sunday"})
    assert first.status == 201 and set(first.body) == {"id", "text", "by", "ts"}
    assert (first.body["text"], first.body["by"]) == ("picnic on Sunday", alice.user)
    said = await system_of(wire, room, "room.announcement")
    assert said["system"]["data"] == {"announcement": first.body}
    second = (await http("POST", path, token=ann.token, json={"text": "bring food"})).body
    assert [a["id"] for a in (await http("GET", path, token=bob.token)).body["items"]] == [second["id"], first.body["id"]]
    assert (await http("GET", f"/api/rooms/{room}", token=bob.token)).body["announcement"] == second
    (await http("DELETE", f"{path}/{second['id']}", token=bob.token)).error(403, "forbidden")
    assert (await http("DELETE", f"{path}/{second['id']}", token=ann.token)).status == 204
    (await http("DELETE", f"{path}/{second['id']}", token=ann.token)).error(404, "not_found")
    withdrawn = await system_of(wire, room, "room.updated")
    assert withdrawn["system"]["data"]["changes"] == {"announcement": first.body}
    assert (await http("GET", f"/api/rooms/{room}", token=bob.token)).body["announcement"] == first.body


# ---------------------------------------------------------------------------- group cards


async def test_group_cards(group, http):
    room, alice, ann, bob, cat, wire = group
    path = f"/api/rooms/{room}/members/{{}}/nickname"
    reply = await http("PUT", path.format(bob.id), token=bob.token, json={"nickname": "Bobby"})
    assert reply.status == 200 and reply.body["nickname"] == "Bobby"
    changed = await system_of(wire, room, "room.updated")
    assert changed["system"]["data"]["changes"] == {"nickname": {"user": bob.user, "nickname": "Bobby"}}
    (await http("PUT", path.format(cat.id), token=bob.token, json={"nickname": "Kitty"})).error(403, "forbidden")
    assert (await http("PUT", path.format(cat.id), token=ann.token, json={"nickname": "Kitty"})).status == 200
    (await http("PUT", path.format(cat.id), token=ann.token, json={"nickname": "x" * 33})).error(
        422, "invalid", "nickname")
    members = (await http("GET", f"/api/rooms/{room}/members", token=bob.token)).body["items"]
    assert {m["user"]["id"]: m["nickname"] for m in members} == {alice.id: None, ann.id: None, bob.id: "Bobby",
                                                                 cat.id: "Kitty"}
    cleared = await http("PUT", path.format(bob.id), token=alice.token, json={"nickname": ""})
    assert cleared.status == 200 and cleared.body["nickname"] is None


# ---------------------------------------------------------------------------- dissolve


async def test_dissolving_tells_members_and_makes_the_room_404(group, connect, http):
    room, alice, ann, bob, cat, wire = group
    await wire.drain()
    (await http("DELETE", f"/api/rooms/{room}", token=ann.token)).error(403, "forbidden")
    assert (await http("DELETE", f"/api/rooms/{room}", token=alice.token)).status == 204
    assert await wire.recv() == {"op": "room_deleted", "room": room}
    # Nothing more of it: the connection's own answers are all that follow.
    assert await wire.drain() == []
    (await http("GET", f"/api/rooms/{room}", token=alice.token)).error(404, "not_found")
    (await http("GET", f"/api/rooms/{room}/messages", token=bob.token)).error(404, "not_found")
    (await http("POST", f"/api/rooms/{room}/messages", token=bob.token, json={"text": "x", "cid": "y"})).error(
        404, "not_found")
    assert (await wire.request(send(room)))["code"] == "not_found"
    assert (await http("GET", "/api/rooms", token=bob.token)).body["items"] == []
    (await http("DELETE", f"/api/rooms/{room}", token=alice.token)).error(404, "not_found")


async def test_dissolving_unbinds_the_record(make_account, make_room, http):
    alice = await make_account("alice")
    room, _ = await make_room(owner=alice)
    record = await alice.api.post("/api/alumni", {"name": "class", "school": "school"})
    await alice.api.put(f"/api/alumni/{record['id']}/room", {"room_id": room["id"]})
    await alice.api.delete(f"/api/rooms/{room['id']}")
    assert (await alice.api.get(f"/api/alumni/{record['id']}"))["room"] is None
    feed = await alice.api.get(f"/api/alumni/{record['id']}/feed")
    assert "bound" in {entry["type"] for entry in feed["items"]}  # the feed keeps its history


# ---------------------------------------------------------------------------- size


@with_settings(room_max_members=3)
async def test_adding_or_approving_past_the_size_limit_is_409(make_account, make_room, http):
    alice, bob, cat, dan = [await make_account(n) for n in ("alice", "bob", "cat", "dan")]
    room, _ = await make_room(owner=alice, members=[bob], join_policy="approval")
    path = f"/api/rooms/{room['id']}/members"
    request = (await http("POST", path, token=dan.token, json={"user_id": dan.id})).body
    assert (await http("POST", path, token=alice.token, json={"user_id": cat.id})).status == 201
    (await http("POST", f"/api/room-requests/{request['id']}/approve", token=alice.token)).error(409, "conflict")
    assert (await alice.api.get(f"/api/rooms/{room['id']}/requests"))["items"][0]["status"] == "pending"
    await alice.api.delete(f"{path}/{cat.id}")
    assert (await http("POST", f"/api/room-requests/{request['id']}/approve", token=alice.token)).status == 200


async def test_a_muted_member_may_not_edit_or_react_either(group, http):
    room, alice, ann, bob, cat, wire = group
    mine = await wire.request(send(room, "before the mute"))
    await alice.api.put(f"/api/rooms/{room}/members/{bob.id}/mute", {"seconds": 300})
    await system_of(wire, room, "member.muted")
    for frame in ({"op": "edit", "room": room, "seq": mine["seq"], "text": "after"},
                  {"op": "react", "room": room, "seq": mine["seq"], "emoji": "👍"}):
        refused = await wire.request(frame)
        assert refused["code"] == "forbidden" and 0 < refused["retry_after"] <= 300_000, refused
    (await http("PATCH", f"/api/rooms/{room}/messages/{mine['seq']}", token=bob.token, json={"text": "x"})).error(
        403, "forbidden")


# ---------------------------------------------------------------------------- pins


async def test_pins_are_timeline_updates_listed_newest_first(group, http):
    room, alice, ann, bob, cat, wire = group
    first = (await wire.request(send(room, "first")))["seq"]
    second = (await wire.request(send(room, "second")))["seq"]
    path = f"/api/rooms/{room}/pins"
    (await http("PUT", f"{path}/{first}", token=bob.token)).error(403, "forbidden")
    reply = await http("PUT", f"{path}/{first}", token=alice.token)
    assert reply.status == 200, reply.body
    assert (reply.body["message"]["seq"], reply.body["message"]["pinned"], reply.body["by"]) == (first, True, alice.user)
    update = await wire.expect("message", room=room, kind="update")
    assert update["update"] == {"type": "pinned", "target": first} and update["from"] == alice.user
    assert (await http("PUT", f"{path}/{first}", token=ann.token)).status == 200  # pinned already: no entry
    assert (await http("PUT", f"{path}/{second}", token=ann.token)).status == 200
    assert (await wire.expect("message", room=room, kind="update"))["update"] == {"type": "pinned", "target": second}
    listed = (await http("GET", path, token=cat.token)).body["items"]
    assert [(p["message"]["seq"], p["by"]["id"]) for p in listed] == [(second, ann.id), (first, alice.id)]
    assert (await http("DELETE", f"{path}/{first}", token=ann.token)).status == 204
    assert (await wire.expect("message", room=room, kind="update"))["update"] == {"type": "unpinned", "target": first}
    assert [p["message"]["seq"] for p in (await http("GET", path, token=bob.token)).body["items"]] == [second]
    (await http("PUT", f"{path}/99999", token=alice.token)).error(404, "not_found")
    (await http("PUT", f"{path}/1", token=alice.token)).error(422, "invalid", "seq")  # seq 1: a system message


async def test_at_most_fifty_pins(group, http, monkeypatch):
    from chatserver.services import moderation

    monkeypatch.setattr(moderation, "MAX_PINS", 2)  # the rule, at a size a test can reach
    room, alice, ann, bob, cat, wire = group
    seqs = [(await wire.request(send(room, f"m{i}")))["seq"] for i in range(3)]
    for seq in seqs[:2]:
        assert (await http("PUT", f"/api/rooms/{room}/pins/{seq}", token=alice.token)).status == 200
    (await http("PUT", f"/api/rooms/{room}/pins/{seqs[2]}", token=alice.token)).error(409, "conflict")
    assert (await http("PUT", f"/api/rooms/{room}/pins/{seqs[0]}", token=alice.token)).status == 200  # already in
