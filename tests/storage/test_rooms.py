"""storage.rooms: rooms, memberships and roles, read markers, unread counts."""

import dataclasses
import itertools

import pytest

from storage import rooms
from storage.records import Room, RoomState


async def test_create_makes_the_owner_its_first_member(db, make_user):
    alice = await make_user("alice")
    async with db.transaction() as conn:
        room = await rooms.create(conn, name="Class of 2010", topic="hi", join_policy="open", owner_id=alice.id)
    assert room == Room(room.id, "Class of 2010", "hi", "open", alice.id, last_seq=0, member_count=1)
    async with db.read() as conn:
        assert await rooms.get(conn, room.id) == room
        assert await rooms.get(conn, "r_missing") is None
        owner = await rooms.get_member(conn, room.id, alice.id)
    assert (owner.user, owner.role, owner.read_seq) == (alice, "owner", 0)


async def test_member_count_follows_adds_and_removes(db, make_user, make_room):
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    room = await make_room(alice, bob, carol)
    assert room.member_count == 3
    async with db.transaction() as conn:
        assert await rooms.remove_member(conn, room.id, bob.id) is True
        assert (await rooms.get(conn, room.id)).member_count == 2


async def test_update_room(db, make_user, make_room):
    room = await make_room(await make_user("alice"))
    async with db.transaction() as conn:
        updated = await rooms.update_room(conn, room.id, name="New", topic="t", join_policy="open")
        assert await rooms.update_room(conn, room.id) == updated
    assert (updated.name, updated.topic, updated.join_policy) == ("New", "t", "open")
    async with db.read() as conn:
        assert await rooms.get(conn, room.id) == updated


async def test_add_and_remove_member(db, make_user, make_room):
    alice, bob = await make_user("alice"), await make_user("bob")
    room = await make_room(alice)
    async with db.transaction() as conn:
        assert await rooms.add_member(conn, room.id, bob.id) is True
        assert await rooms.add_member(conn, room.id, bob.id) is False
        member = await rooms.get_member(conn, room.id, bob.id)
    assert (member.user, member.role) == (bob, "member")
    async with db.transaction() as conn:
        assert await rooms.remove_member(conn, room.id, bob.id) is True
        assert await rooms.remove_member(conn, room.id, bob.id) is False
        assert await rooms.get_member(conn, room.id, bob.id) is None
        assert await rooms.member_ids(conn, room.id) == [alice.id]


async def test_add_member_with_a_role(db, make_user, make_room):
    alice, bob = await make_user("alice"), await make_user("bob")
    room = await make_room(alice)
    async with db.transaction() as conn:
        await rooms.add_member(conn, room.id, bob.id, role="admin")
        assert (await rooms.get_member(conn, room.id, bob.id)).role == "admin"


async def test_set_role(db, make_user, make_room):
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    room = await make_room(alice, bob)
    async with db.transaction() as conn:
        member = await rooms.set_role(conn, room.id, bob.id, "admin")
        assert (member.user, member.role) == (bob, "admin")
        assert await rooms.set_role(conn, room.id, carol.id, "admin") is None
    async with db.read() as conn:
        assert (await rooms.get_member(conn, room.id, bob.id)).role == "admin"
        assert await rooms.get_member(conn, room.id, carol.id) is None


async def test_members_in_join_order_then_by_name(db, make_user, monkeypatch):
    clock = itertools.count(1_000)
    monkeypatch.setattr(rooms, "now_ms", lambda: next(clock) // 2 * 2)  # two joins per "ms"
    zed = await make_user("zed")
    amy, bob, cat = await make_user("amy"), await make_user("bob"), await make_user("cat")
    async with db.transaction() as conn:
        room = await rooms.create(conn, name="r", topic="", join_policy="open", owner_id=zed.id)  # joined 1000
        await rooms.add_member(conn, room.id, cat.id)  # 1000: same ms as zed
        await rooms.add_member(conn, room.id, bob.id)  # 1002
        await rooms.add_member(conn, room.id, amy.id)  # 1002
    async with db.read() as conn:
        members = await rooms.members(conn, room.id)
    assert [m.user.name for m in members] == ["cat", "zed", "amy", "bob"]
    assert [m.joined for m in members] == [1000, 1000, 1002, 1002]
    assert [m.role for m in members] == ["member", "owner", "member", "member"]


async def test_members_among(db, make_user, make_room):
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    one = await make_room(alice, bob)
    two = await make_room(carol)
    asked = {(one.id, alice.id), (one.id, carol.id), (two.id, bob.id), (two.id, carol.id), ("r_missing", alice.id)}
    async with db.read() as conn:
        assert await rooms.members_among(conn, asked) == {(one.id, alice.id), (two.id, carol.id)}
        assert await rooms.members_among(conn, set()) == set()


async def test_list_for_user_and_room_ids(db, make_user, make_room):
    alice, bob = await make_user("alice"), await make_user("bob")
    first = await make_room(alice, bob, name="first")
    second = await make_room(bob, name="second")
    await make_room(alice, name="third")
    async with db.read() as conn:
        assert [r.id for r in await rooms.list_for_user(conn, bob.id)] == [first.id, second.id]
        # Listed for bob, each room also tells how many unread messages mention him.
        assert await rooms.list_for_user(conn, bob.id) == [
            dataclasses.replace(first, mentions=0), dataclasses.replace(second, mentions=0)
        ]
        assert await rooms.room_ids_for_user(conn, bob.id) == {first.id, second.id}
        assert await rooms.room_ids_for_user(conn, "u_missing") == set()


async def _read_seq(db, room_id, user_id):
    async with db.read() as conn:
        return (await rooms.get_member(conn, room_id, user_id)).read_seq


async def test_set_read_moves_forward_only_and_stops_at_last_seq(db, make_user, make_room, send_message):
    alice, bob = await make_user("alice"), await make_user("bob")
    room = await make_room(alice, bob)
    for n in range(5):
        await send_message(room.id, alice, f"m{n}")
    async with db.transaction() as conn:
        assert await rooms.set_read(conn, room.id, bob.id, 3) == 3
        assert await rooms.set_read(conn, room.id, bob.id, 2) == 3  # never back
        assert await rooms.set_read(conn, room.id, bob.id, 99) == 5  # capped at last_seq
    assert await _read_seq(db, room.id, bob.id) == 5


async def test_set_read_for_a_non_member_or_unknown_room(db, make_user, make_room, send_message):
    alice, bob = await make_user("alice"), await make_user("bob")
    room = await make_room(alice)
    await send_message(room.id, alice)
    async with db.transaction() as conn:
        assert await rooms.set_read(conn, room.id, bob.id, 1) is None
        assert await rooms.set_read(conn, "r_missing", alice.id, 1) is None


async def test_a_new_member_has_read_everything_before_joining(db, make_user, make_room, send_message):
    # docs/protocol.md §4.6: read_seq starts at the room's last seq once the user has joined.
    alice, bob = await make_user("alice"), await make_user("bob")
    room = await make_room(alice)
    for _ in range(3):
        await send_message(room.id, alice)
    async with db.transaction() as conn:
        await rooms.add_member(conn, room.id, bob.id)
    assert await _read_seq(db, room.id, bob.id) == 3
    async with db.read() as conn:
        [state] = await rooms.states_for_user(conn, bob.id)
    assert (state.last_seq, state.read_seq, state.unread) == (3, 3, 0)


async def test_states_for_user_counts_unread_of_others(db, make_user, make_room, send_message):
    alice, bob = await make_user("alice"), await make_user("bob")
    room = await make_room(alice, bob, name="talk")
    quiet = await make_room(bob, name="quiet")
    await send_message(room.id, alice, "1")
    await send_message(room.id, None, None, system_type="room.updated", system_data={"name": "talk"})
    await send_message(room.id, alice, "3")
    async with db.read() as conn:
        assert await rooms.states_for_user(conn, bob.id) == [
            RoomState(room.id, "talk", last_seq=3, read_seq=0, unread=3, role="member"),
            RoomState(quiet.id, "quiet", last_seq=0, read_seq=0, unread=0, role="owner"),
        ]
        # Alice's own messages are not unread to her; the system one is.
        [alices] = await rooms.states_for_user(conn, alice.id)
    assert (alices.last_seq, alices.read_seq, alices.unread, alices.role) == (3, 3, 0, "owner")

    async with db.transaction() as conn:
        await rooms.set_read(conn, room.id, bob.id, 1)
    async with db.read() as conn:
        assert (await rooms.states_for_user(conn, bob.id))[0].unread == 2


async def test_own_messages_past_the_read_marker_are_not_unread(db, make_user, make_room, send_message):
    alice, bob = await make_user("alice"), await make_user("bob")
    room = await make_room(alice, bob)
    await send_message(room.id, alice, "1")
    await send_message(room.id, bob, "2")  # moves bob's marker to 2
    await send_message(room.id, bob, "3")
    await send_message(room.id, alice, "4")
    async with db.read() as conn:
        [state] = await rooms.states_for_user(conn, bob.id)
    assert (state.last_seq, state.read_seq, state.unread) == (4, 3, 1)


async def test_states_for_user_with_no_rooms(db, make_user):
    alice = await make_user("alice")
    async with db.read() as conn:
        assert await rooms.states_for_user(conn, alice.id) == []


async def test_one_direct_room_per_pair(db, make_user):
    from sqlalchemy.exc import IntegrityError

    alice, bob = await make_user("alice"), await make_user("bob")
    async with db.transaction() as conn:
        room = await rooms.create_direct(conn, name="a, b", creator_id=alice.id, other_id=bob.id)
    async with db.read() as conn:
        assert await rooms.get_direct(conn, bob.id, alice.id) == room
        assert (await rooms.get(conn, room.id)).kind == "direct"
        assert [m.role for m in await rooms.members(conn, room.id)] == ["member", "member"]
    with pytest.raises(IntegrityError):
        async with db.transaction() as conn:
            await rooms.create_direct(conn, name="b, a", creator_id=bob.id, other_id=alice.id)
