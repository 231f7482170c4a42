"""The hub (docs/protocol.md §4.3, §6): who receives what, system messages, membership taking effect at once."""

from __future__ import annotations

import asyncio

from .conftest import MSGPACK, post_messages, seqs


async def test_creating_a_room_posts_nothing(make_account, connect):
    alice = await make_account()
    room = await alice.api.create_room("quiet")
    assert room["last_seq"] == 0
    wire = await connect(alice)
    assert (await wire.call("history", room=room["id"]))["messages"] == []
    assert wire.welcome["rooms"][0]["last_seq"] == 0


async def test_system_messages_are_durable_with_seqs(make_account, connect):
    alice = await make_account("alice")
    bob = await make_account("bob")
    carol = await make_account("carol")
    room = await alice.api.create_room("g", join_policy="invite")
    room_id = room["id"]
    a = await connect(alice)
    await alice.api.add_member(room_id, bob.id)  # 1 member.joined (by alice)
    await alice.api.add_member(room_id, carol.id)  # 2 member.joined
    await alice.api.patch(f"/api/rooms/{room_id}", {"topic": "reunion"})  # 3 room.updated
    await bob.api.delete(f"/api/rooms/{room_id}/members/{bob.id}")  # 4 member.left
    await alice.api.delete(f"/api/rooms/{room_id}/members/{carol.id}")  # 5 member.kicked

    live = await a.messages(room_id, 5)
    history = (await a.call("history", room=room_id))["messages"]
    assert history == live  # what was delivered is what was stored
    assert seqs(history) == [1, 2, 3, 4, 5]
    assert [m["system"]["type"] for m in history] == [
        "member.joined", "member.joined", "room.updated", "member.left", "member.kicked"]
    for message in history:
        assert message["kind"] == "system" and message["from"] is None
        assert isinstance(message["text"], str) and message["text"]
        assert isinstance(message["id"], str) and isinstance(message["ts"], int)
    data = [m["system"]["data"] for m in history]
    assert data[0]["user"]["id"] == bob.id and data[0]["by"]["id"] == alice.id
    assert data[0]["user"] == {"id": bob.id, "name": bob.user["name"], "display": bob.user["display"], "bot": False, "avatar": None}
    assert data[2]["by"]["id"] == alice.id and data[2]["changes"] == {"topic": "reunion"}
    assert data[3]["user"]["id"] == bob.id
    assert data[4]["user"]["id"] == carol.id and data[4]["by"]["id"] == alice.id
    assert (await alice.api.get(f"/api/rooms/{room_id}"))["last_seq"] == 5


async def test_system_and_chat_messages_share_one_seq_sequence(make_account, make_room, connect):
    alice = await make_account()
    bob = await make_account()
    room, _ = await make_room(owner=alice)
    a = await connect(alice)
    await a.call("send", room=room["id"], text="one", cid="1")
    await alice.api.add_member(room["id"], bob.id)
    await a.call("send", room=room["id"], text="two", cid="2")
    got = await a.messages(room["id"], 3)
    assert [(m["seq"], m["kind"]) for m in got] == [(1, "text"), (2, "system"), (3, "text")]


async def test_added_member_is_subscribed_on_every_connection_at_once(make_account, make_room, connect):
    alice = await make_account()
    bob = await make_account()
    room, _ = await make_room(owner=alice)
    b1 = await connect(bob)
    b2 = await connect(bob)
    assert b1.welcome["rooms"] == []
    await alice.api.add_member(room["id"], bob.id)
    await alice.api.post(f"/api/rooms/{room['id']}/messages", {"text": "hi bob", "cid": "hi"})
    for conn in (b1, b2):
        got = await conn.messages(room["id"], 2)
        assert seqs(got) == [1, 2]
        assert got[0]["system"]["type"] == "member.joined" and got[1]["text"] == "hi bob"
    b3 = await connect(bob)
    assert [r["id"] for r in b3.welcome["rooms"]] == [room["id"]]


async def test_every_member_connection_gets_each_message_once_in_both_codecs(make_account, make_room, connect):
    alice = await make_account()
    bob = await make_account()
    room, _ = await make_room(owner=alice, members=[bob])
    json_conn = await connect(bob)
    msgpack_conn = await connect(bob, protocol=MSGPACK)
    await post_messages(alice, room["id"], 5)
    from_json = await json_conn.messages(room["id"], 5)
    from_msgpack = await msgpack_conn.messages(room["id"], 5)
    assert from_json == from_msgpack
    assert seqs(from_json) == [2, 3, 4, 5, 6]
    for conn in (json_conn, msgpack_conn):
        assert [f for f in await conn.drain() if f["op"] == "message"] == []


async def test_non_member_receives_nothing_of_a_room(make_account, make_room, connect):
    alice = await make_account()
    eve = await make_account("eve")
    room, _ = await make_room(owner=alice, join_policy="open")
    e = await connect(eve)
    await post_messages(alice, room["id"], 3)
    await alice.api.patch(f"/api/rooms/{room['id']}", {"name": "renamed"})
    assert [f for f in await e.drain() if f.get("room") == room["id"]] == []


async def test_kicked_member_stops_receiving_at_once(make_account, make_room, connect):
    alice = await make_account("alice")
    bob = await make_account("bob")
    room, _ = await make_room(owner=alice, members=[bob])
    room_id = room["id"]
    a = await connect(alice)
    bobs = [await connect(bob), await connect(bob)]

    kicked = asyncio.Event()
    chatting = asyncio.Event()

    async def chatter():  # messages keep coming before, while and after bob is removed
        i = after_kick = 0
        while after_kick < 5:
            await a.call("send", room=room_id, text=f"t{i}", cid=f"t{i}")
            i += 1
            if i == 3:
                chatting.set()
            after_kick += kicked.is_set()

    sender = asyncio.create_task(chatter())
    await chatting.wait()
    await alice.api.delete(f"/api/rooms/{room_id}/members/{bob.id}")
    kicked.set()
    await sender
    kick = next(m for m in (await a.call("history", room=room_id, limit=100))["messages"]
                if m.get("system", {}).get("type") == "member.kicked")
    for conn in bobs:
        received = [f for f in await conn.drain() if f.get("room") == room_id]
        assert received, "bob heard the room until he was removed"
        assert all(f["op"] == "message" and f["seq"] <= kick["seq"] for f in received), received[-3:]
        assert seqs(received) == list(range(received[0]["seq"], received[-1]["seq"] + 1))
    # And nothing later either.
    await a.call("send", room=room_id, text="after", cid="after")
    await a.send({"op": "typing", "room": room_id})
    for conn in bobs:
        assert [f for f in await conn.drain() if f.get("room") == room_id] == []
        reply = await conn.request({"op": "history", "room": room_id})
        assert reply["code"] == "forbidden"


async def test_removed_member_added_again_hears_the_room_again(make_account, make_room, connect):
    alice = await make_account()
    bob = await make_account()
    room, _ = await make_room(owner=alice, members=[bob])
    b = await connect(bob)
    await alice.api.delete(f"/api/rooms/{room['id']}/members/{bob.id}")  # seq 2
    await alice.api.post(f"/api/rooms/{room['id']}/messages", {"text": "while away", "cid": "away"})  # 3
    await alice.api.add_member(room["id"], bob.id)  # 4
    await alice.api.post(f"/api/rooms/{room['id']}/messages", {"text": "back", "cid": "back"})  # 5
    got = [f for f in await b.drain() if f.get("room") == room["id"]]
    # Being added again starts the catch-up in a task of its own, which the drain's pong can overtake.
    while not got or got[-1].get("seq") != 5:
        got.append(await b.expect("message", room=room["id"]))
    got += [f for f in await b.drain() if f.get("room") == room["id"]]  # and nothing after it
    assert "while away" not in [f.get("text") for f in got]
    assert seqs(got)[-2:] == [4, 5] and got[-1]["text"] == "back"


async def test_leaving_from_one_connection_unsubscribes_the_others(make_account, make_room, connect):
    alice = await make_account()
    bob = await make_account()
    room, _ = await make_room(owner=alice, members=[bob])
    b1 = await connect(bob)
    b2 = await connect(bob)
    await b1.call("leave", room=room["id"])
    await alice.api.post(f"/api/rooms/{room['id']}/messages", {"text": "gone", "cid": "gone"})
    for conn in (b1, b2):
        assert "gone" not in [f.get("text") for f in await conn.drain()]
