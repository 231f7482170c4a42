"""storage.moderation, storage.join_requests, storage.notices and dissolving a room (docs/protocol.md §12.14)."""

import asyncio

import pytest

from storage import join_requests, messages, moderation, notices, rooms
from storage.db import now_ms
from storage.models import AlumniRecord
from sqlalchemy import insert, select


async def test_a_mute_outlives_leaving_and_shows_on_the_member(db, make_user, make_room):
    alice, bob = await make_user("alice"), await make_user("bob")
    room = await make_room(alice, bob)
    until = now_ms() + 60_000
    async with db.transaction() as conn:
        await moderation.mute(conn, room.id, bob.id, until, alice.id)
        assert (await rooms.get_member(conn, room.id, bob.id)).muted_until == until
        await moderation.mute(conn, room.id, bob.id, until + 1000, alice.id)  # a re-mute replaces the end
        await rooms.remove_member(conn, room.id, bob.id)
        await rooms.add_member(conn, room.id, bob.id)
        assert (await rooms.get_member(conn, room.id, bob.id)).muted_until == until + 1000
        state = await moderation.policy_state(conn, room.id)
    assert state.mutes == {bob.id: until + 1000}
    assert state.admins == frozenset({alice.id}) and state.muted is False
    async with db.transaction() as conn:
        assert await moderation.unmute(conn, room.id, bob.id) is True
        assert await moderation.unmute(conn, room.id, bob.id) is False
        assert (await rooms.get_member(conn, room.id, bob.id)).muted_until is None


async def test_an_expired_mute_is_not_in_force(db, make_user, make_room):
    alice, bob = await make_user("alice"), await make_user("bob")
    room = await make_room(alice, bob)
    async with db.transaction() as conn:
        await moderation.mute(conn, room.id, bob.id, now_ms() - 1, alice.id)
        assert (await rooms.get_member(conn, room.id, bob.id)).muted_until is None
        assert (await moderation.policy_state(conn, room.id)).mutes == {}
        assert await moderation.unmute(conn, room.id, bob.id) is False


async def test_policy_state_follows_mute_all_and_roles(db, make_user, make_room):
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    room = await make_room(alice, bob, carol)
    async with db.transaction() as conn:
        await rooms.set_role(conn, room.id, bob.id, "admin")
        await rooms.update_room(conn, room.id, muted=True)
        state = await moderation.policy_state(conn, room.id)
        assert (await rooms.get(conn, room.id)).muted is True
        assert await moderation.policy_state(conn, "r_missing") is None
    assert state.muted is True and state.admins == frozenset({alice.id, bob.id})


async def test_bans(db, make_user, make_room):
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    room = await make_room(alice, bob)
    async with db.transaction() as conn:
        assert await moderation.ban(conn, room.id, carol.id, alice.id, "spam") is True
        assert await moderation.ban(conn, room.id, carol.id, alice.id, "again") is False
        assert await moderation.ban(conn, room.id, bob.id, alice.id, "") is True
        assert await moderation.is_banned(conn, room.id, carol.id)
        ban = await moderation.get_ban(conn, room.id, carol.id)
        assert (ban.user, ban.by, ban.reason) == (carol, alice, "spam")
        assert {b.user.id for b in await moderation.bans(conn, room.id)} == {bob.id, carol.id}
        assert await moderation.unban(conn, room.id, carol.id) is True
        assert await moderation.unban(conn, room.id, carol.id) is False
        assert not await moderation.is_banned(conn, room.id, carol.id)


async def test_one_pending_request_per_pair(db, make_user, make_room):
    alice, bob = await make_user("alice"), await make_user("bob")
    room = await make_room(alice, join_policy="approval")
    async with db.transaction() as conn:
        request = await join_requests.create(conn, room.id, bob, "let me in")
        with pytest.raises(join_requests.AlreadyPending):
            await join_requests.create(conn, room.id, bob, "again")
        assert await join_requests.get(conn, request.id) == request
        assert await join_requests.decide(conn, request.id, "declined") is True
        assert await join_requests.decide(conn, request.id, "approved") is False  # decided already
        again = await join_requests.create(conn, room.id, bob, "please")  # no pending one now
        assert [r.id for r in await join_requests.list_for_room(conn, room.id, "pending")] == [again.id]
        assert {r.id for r in await join_requests.list_for_room(conn, room.id)} == {request.id, again.id}
        assert (await join_requests.get(conn, request.id)).status == "declined"


async def test_notices_newest_first_and_on_the_room(db, make_user, make_room):
    alice = await make_user("alice")
    room, other = await make_room(alice), await make_room(alice)
    async with db.transaction() as conn:
        first = await notices.add(conn, room.id, "first", alice)
    await asyncio.sleep(0.002)  # distinct ms timestamps
    async with db.transaction() as conn:
        second = await notices.add(conn, room.id, "second", alice)
        assert await notices.list_for_room(conn, room.id) == [second, first]
        assert (await rooms.get(conn, room.id)).announcement == second
        assert (await rooms.get(conn, other.id)).announcement is None
        assert [r.announcement for r in await rooms.list_for_user(conn, alice.id)] == [second, None]
        assert await notices.remove(conn, room.id, second.id) is True
        assert await notices.remove(conn, other.id, first.id) is False  # not that room's
        assert (await rooms.get(conn, room.id)).announcement == first


async def test_nickname_and_member_count(db, make_user, make_room):
    alice, bob = await make_user("alice"), await make_user("bob")
    room = await make_room(alice, bob)
    async with db.transaction() as conn:
        assert (await rooms.set_nickname(conn, room.id, bob.id, "Bobby")).nickname == "Bobby"
        assert [m.nickname for m in await rooms.members(conn, room.id)] == [None, "Bobby"]
        assert await rooms.member_count(conn, room.id) == 2


async def test_deleting_a_room_takes_everything_in_it_and_unbinds_its_record(db, make_user, make_room, send_message):
    alice, bob = await make_user("alice"), await make_user("bob")
    room = await make_room(alice, bob)
    await send_message(room.id, bob, "hello")
    async with db.transaction() as conn:
        await moderation.mute(conn, room.id, bob.id, now_ms() + 60_000, alice.id)
        await notices.add(conn, room.id, "bye", alice)
        await conn.execute(insert(AlumniRecord).values(id="ar_1", name="r", school="s", owner_id=alice.id,
                                                       room_id=room.id, created=now_ms()))
        assert await rooms.delete_room(conn, room.id) is True
        assert await rooms.delete_room(conn, room.id) is False
    async with db.read() as conn:
        assert await rooms.get(conn, room.id) is None
        assert await messages.history(conn, room.id) == ([], False)
        assert await rooms.room_ids_for_user(conn, bob.id) == set()
        assert await moderation.policy_state(conn, room.id) is None
        assert (await conn.execute(select(AlumniRecord.room_id).where(AlumniRecord.id == "ar_1"))).scalar() is None


async def test_pins_say_who_pinned_newest_first(db, make_user, make_room, send_message):
    from sqlalchemy import update as sql_update

    from storage import pins
    from storage.models import Message as MessageRow

    alice = await make_user("alice")
    room = await make_room(alice)
    first = (await send_message(room.id, alice, "one")).message.seq
    second = (await send_message(room.id, alice, "two")).message.seq
    async with db.transaction() as conn:
        # `messages.pinned` is the timeline's to keep; set here as its commit would.
        await conn.execute(sql_update(MessageRow).where(MessageRow.room_id == room.id).values(pinned=True))
        await pins.record(conn, room.id, first, alice.id, 100)
        await pins.record(conn, room.id, second, alice.id, 200)
        assert await pins.count(conn, room.id) == 2
        assert await pins.pinned(conn, room.id) == [(second, alice, 200), (first, alice, 100)]
        await pins.forget(conn, room.id, second)
        await conn.execute(sql_update(MessageRow).where(MessageRow.seq == second).values(pinned=False))
        assert await pins.pinned(conn, room.id) == [(first, alice, 100)]
