"""Alumni records: create, membership, binding to one group, profiles."""

import pytest
from sqlalchemy.exc import IntegrityError

from storage import alumni


async def _record(db, owner, **fields):
    fields.setdefault("name", "Class of 2010")
    fields.setdefault("school", "No. 1 High")
    async with db.transaction() as conn:
        return await alumni.create_record(conn, owner_id=owner.id, **fields)


async def test_creator_owns_the_record_and_is_its_first_member(db, make_user):
    alice = await make_user("alice")
    record = await _record(db, alice, year=2010, class_name="3B", description="we met in 2007")
    assert (record.owner_id, record.member_count, record.room_id) == (alice.id, 1, None)
    assert (record.year, record.class_name, record.description) == (2010, "3B", "we met in 2007")
    async with db.read() as conn:
        assert await alumni.get_record(conn, record.id) == record
        assert await alumni.is_member(conn, record.id, alice.id)
        assert await alumni.record_ids_for_user(conn, alice.id) == [record.id]
        assert await alumni.get_record(conn, "a_missing") is None


async def test_members_join_once_and_are_listed_in_joining_order(db, make_user):
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    record = await _record(db, alice)
    async with db.transaction() as conn:
        assert await alumni.add_member(conn, record.id, bob.id)
        assert not await alumni.add_member(conn, record.id, bob.id)
    async with db.read() as conn:
        assert [m.user.id for m in await alumni.members(conn, record.id)] == [alice.id, bob.id]
        assert await alumni.members_among(conn, record.id, [bob.id, carol.id]) == {bob.id}
        assert not await alumni.is_member(conn, record.id, carol.id)
        assert (await alumni.get_record(conn, record.id)).member_count == 2
        assert [r.id for r in await alumni.records_for_user(conn, bob.id)] == [record.id]
        assert await alumni.record_ids_for_user(conn, carol.id) == []


async def test_a_group_has_at_most_one_record(db, make_user, make_room):
    alice = await make_user("alice")
    room = await make_room(alice)
    one, two = await _record(db, alice), await _record(db, alice)
    async with db.transaction() as conn:
        bound = await alumni.set_room(conn, one.id, room.id)
    assert bound.room_id == room.id
    async with db.read() as conn:
        assert (await alumni.record_for_room(conn, room.id)).id == one.id
    with pytest.raises(IntegrityError):
        async with db.transaction() as conn:
            await alumni.set_room(conn, two.id, room.id)
    async with db.transaction() as conn:
        assert (await alumni.set_room(conn, one.id, None)).room_id is None
        assert await alumni.record_for_room(conn, room.id) is None
        assert (await alumni.set_room(conn, two.id, room.id)).room_id == room.id


async def test_profile_and_visibility_are_stored_whole(db, make_user):
    alice = await make_user("alice")
    record = await _record(db, alice)
    async with db.transaction() as conn:
        member = await alumni.set_profile(
            conn, record.id, alice.id, {"city": "Oslo", "employer": "Acme"}, {"city": "public"}
        )
    assert member.profile == {"city": "Oslo", "employer": "Acme"}
    assert member.visibility == {"city": "public"}
    async with db.read() as conn:
        assert await alumni.get_member(conn, record.id, alice.id) == member
        assert await alumni.get_member(conn, record.id, "u_nobody") is None
