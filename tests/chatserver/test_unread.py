"""Read markers and unread counts as `welcome` reports them (docs/protocol.md §4.6)."""

from __future__ import annotations

import pytest

from .conftest import post_messages


@pytest.fixture
def state(connect):
    """`await state(account, room_id)` → (last_seq, read_seq, unread) from a fresh connection's `welcome`."""

    async def get(account, room_id: str) -> tuple[int, int, int]:
        wire = await connect(account)
        await wire.ws.close()
        (room,) = [r for r in wire.welcome["rooms"] if r["id"] == room_id]
        return room["last_seq"], room["read_seq"], room["unread"]

    return get


async def test_read_marker_starts_at_own_member_joined(make_account, make_room, state):
    alice = await make_account()
    bob = await make_account()
    room, _ = await make_room(owner=alice)
    await alice.api.post(f"/api/rooms/{room['id']}/messages", {"text": "before bob", "cid": "b"})  # 1
    await alice.api.add_member(room["id"], bob.id)  # 2: bob's own member.joined is read
    assert await state(bob, room["id"]) == (2, 2, 0)
    # The owner never joined by message: her marker starts at 0, and bob's join is news to her.
    assert await state(alice, room["id"]) == (2, 1, 1)


async def test_joining_an_open_room_over_websocket_reads_up_to_the_join(make_account, make_room, connect, state):
    alice = await make_account()
    carol = await make_account()
    room, _ = await make_room(owner=alice, join_policy="open")
    await alice.api.post(f"/api/rooms/{room['id']}/messages", {"text": "old", "cid": "old"})
    c = await connect(carol)
    await c.call("join", room=room["id"])
    assert await state(carol, room["id"]) == (2, 2, 0)


async def test_unread_counts_messages_of_others_system_ones_included(make_account, make_room, connect, state):
    alice = await make_account()
    bob = await make_account()
    carol = await make_account()
    room, _ = await make_room(owner=alice, members=[bob])  # 1
    room_id = room["id"]
    await post_messages(alice, room_id, 2)  # 2, 3
    await alice.api.add_member(room_id, carol.id)  # 4 (system)
    assert await state(bob, room_id) == (4, 1, 3)


async def test_sending_moves_the_read_marker_over_websocket_and_http(make_account, make_room, connect, state):
    alice = await make_account()
    bob = await make_account()
    room, _ = await make_room(owner=alice, members=[bob])  # 1
    room_id = room["id"]
    await post_messages(alice, room_id, 2)  # 2, 3
    b = await connect(bob)
    await b.call("send", room=room_id, text="caught up", cid="ws")  # 4
    assert await state(bob, room_id) == (4, 4, 0)
    await alice.api.post(f"/api/rooms/{room_id}/messages", {"text": "c", "cid": "c"})  # 5
    await bob.api.post(f"/api/rooms/{room_id}/messages", {"text": "http", "cid": "http"})  # 6
    assert await state(bob, room_id) == (6, 6, 0)
    assert await state(alice, room_id) == (6, 5, 1)
    # A repeated cid is not a new message: the marker stays where it is.
    await alice.api.post(f"/api/rooms/{room_id}/messages", {"text": "d", "cid": "d"})  # 7
    await bob.api.post(f"/api/rooms/{room_id}/messages", {"text": "http", "cid": "http"})
    assert await state(bob, room_id) == (7, 6, 1)


async def test_read_moves_forward_never_back_and_never_past_the_end(make_account, make_room, connect, state):
    alice = await make_account()
    bob = await make_account()
    room, _ = await make_room(owner=alice, members=[bob])
    room_id = room["id"]
    for i in range(4):  # 2..5
        await alice.api.post(f"/api/rooms/{room_id}/messages", {"text": f"m{i}", "cid": f"m{i}"})
    b = await connect(bob)
    await b.call("read", room=room_id, seq=4)
    assert await state(bob, room_id) == (5, 4, 1)
    await b.call("read", room=room_id, seq=2)
    assert await state(bob, room_id) == (5, 4, 1)
    await b.call("read", room=room_id, seq=1000)
    assert await state(bob, room_id) == (5, 5, 0)
