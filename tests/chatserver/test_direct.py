"""Direct rooms (docs/protocol.md §12.11): one per pair, two plain members, closed to every membership change."""

from __future__ import annotations

import asyncio


async def test_open_a_direct_room_then_find_it_again(make_account, http, connect):
    alice = await make_account("alice")
    bob = await make_account("bob")
    b = await connect(bob)
    first = await http("POST", "/api/dms", token=alice.token, json={"user_id": bob.id})
    assert first.status == 201, first.body
    room = first.body
    assert room["kind"] == "direct" and room["last_seq"] == 0 and room["member_count"] == 2
    again = await http("POST", "/api/dms", token=bob.token, json={"user_id": alice.id})
    assert again.status == 200 and again.body["id"] == room["id"]
    members = await http("GET", f"/api/rooms/{room['id']}/members", token=bob.token)
    assert sorted((m["user"]["id"], m["role"]) for m in members.body["items"]) == sorted(
        [(alice.id, "member"), (bob.id, "member")]
    )
    # Bob's open connection hears the new room at once.
    a = await connect(alice)
    ack = await a.call("send", room=room["id"], text="psst", cid="p")
    assert (await b.expect("message", room=room["id"]))["seq"] == ack["seq"]
    listed = await http("GET", "/api/rooms", token=bob.token)
    assert [r["kind"] for r in listed.body["items"] if r["id"] == room["id"]] == ["direct"]
    assert [r["kind"] for r in a.welcome["rooms"] if r["id"] == room["id"]] == ["direct"]


async def test_concurrent_opens_make_one_room(make_account, http):
    alice = await make_account("alice")
    bob = await make_account("bob")
    replies = await asyncio.gather(
        *(http("POST", "/api/dms", token=t, json={"user_id": o}) for t, o in
          [(alice.token, bob.id), (bob.token, alice.id)] * 3)
    )
    assert {r.body["id"] for r in replies} and len({r.body["id"] for r in replies}) == 1
    assert sorted(r.status for r in replies) == [200] * 5 + [201]


async def test_bad_requests(make_account, http):
    alice = await make_account("alice")
    (await http("POST", "/api/dms", token=alice.token, json={"user_id": alice.id})).error(422, "invalid", "user_id")
    (await http("POST", "/api/dms", token=alice.token, json={"user_id": "u_nobody"})).error(404, "not_found")
    (await http("POST", "/api/dms", token=alice.token, json={})).error(422, "invalid", "user_id")
    assert (await http("POST", "/api/dms", json={"user_id": alice.id})).status == 401


async def test_no_membership_change_and_no_binding(make_account, http, connect, api):
    alice = await make_account("alice")
    bob = await make_account("bob")
    carol = await make_account("carol")
    room = (await http("POST", "/api/dms", token=alice.token, json={"user_id": bob.id})).body["id"]
    path = f"/api/rooms/{room}"
    (await http("POST", f"{path}/members", token=alice.token, json={"user_id": carol.id})).error(403, "forbidden")
    (await http("POST", f"{path}/members", token=carol.token, json={"user_id": carol.id})).error(403, "forbidden")
    (await http("DELETE", f"{path}/members/{alice.id}", token=alice.token)).error(403, "forbidden")
    (await http("DELETE", f"{path}/members/{bob.id}", token=alice.token)).error(403, "forbidden")
    (await http("PUT", f"{path}/members/{bob.id}/role", token=alice.token, json={"role": "admin"})).error(
        403, "forbidden"
    )
    c = await connect(carol)
    assert (await c.request({"op": "join", "room": room}))["code"] == "forbidden"
    a = await connect(alice)
    assert (await a.request({"op": "leave", "room": room}))["code"] == "forbidden"
    record = await http("POST", "/api/alumni", token=alice.token, json={"name": "class", "school": "school"})
    (await http("PUT", f"/api/alumni/{record.body['id']}/room", token=alice.token, json={"room_id": room})).error(
        403, "forbidden"
    )
    # Carol, not a member, reads nothing of it.
    (await http("GET", f"{path}/messages", token=carol.token)).error(403, "forbidden")
