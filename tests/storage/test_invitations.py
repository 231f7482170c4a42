"""Invitations: one pending per (record, invitee), decisions once, lazy expiry, the quota window."""

import asyncio

import pytest
from sqlalchemy.exc import IntegrityError

from storage import alumni, invitations
from storage.db import now_ms


async def _setup(db, make_user):
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    async with db.transaction() as conn:
        record = await alumni.create_record(conn, name="Class", school="School", owner_id=alice.id)
    return alice, bob, carol, record


async def test_create_many_in_order_with_people(db, make_user):
    alice, bob, carol, record = await _setup(db, make_user)
    async with db.transaction() as conn:
        made = await invitations.create_many(
            conn, record_id=record.id, inviter_id=alice.id, invitee_ids=[carol.id, bob.id], note="hi"
        )
        assert await invitations.create_many(conn, record_id=record.id, inviter_id=alice.id, invitee_ids=[]) == []
    assert [(i.invitee.id, i.inviter.id, i.status, i.note) for i in made] == [
        (carol.id, alice.id, "pending", "hi"), (bob.id, alice.id, "pending", "hi")
    ]
    async with db.read() as conn:
        assert await invitations.get(conn, made[0].id) == made[0]
        assert await invitations.get(conn, "i_missing") is None
        assert await invitations.pending_among(conn, record.id, [bob.id, alice.id]) == {bob.id}
        assert [i.id for i in await invitations.for_invitee(conn, bob.id)] == [made[1].id]


async def test_a_second_pending_invitation_is_refused_by_the_index(db, make_user):
    alice, bob, _, record = await _setup(db, make_user)
    async with db.transaction() as conn:
        await invitations.create_many(conn, record_id=record.id, inviter_id=alice.id, invitee_ids=[bob.id])
    with pytest.raises(IntegrityError):
        async with db.transaction() as conn:
            await invitations.create_many(conn, record_id=record.id, inviter_id=alice.id, invitee_ids=[bob.id])


async def test_decide_once_then_a_new_invitation_is_allowed(db, make_user):
    alice, bob, _, record = await _setup(db, make_user)
    async with db.transaction() as conn:
        [first] = await invitations.create_many(conn, record_id=record.id, inviter_id=alice.id, invitee_ids=[bob.id])
        declined = await invitations.decide(conn, first.id, "declined")
        assert declined.status == "declined"
        assert await invitations.decide(conn, first.id, "accepted") is None
        [second] = await invitations.create_many(conn, record_id=record.id, inviter_id=alice.id, invitee_ids=[bob.id])
    async with db.read() as conn:
        assert [i.status for i in await invitations.for_invitee(conn, bob.id, "pending")] == ["pending"]
        assert [i.id for i in await invitations.for_invitee(conn, bob.id, "declined")] == [first.id]
        assert second.id != first.id


async def test_expire_stale_touches_only_old_pending_ones_in_scope(db, make_user):
    alice, bob, carol, record = await _setup(db, make_user)
    async with db.transaction() as conn:
        made = await invitations.create_many(
            conn, record_id=record.id, inviter_id=alice.id, invitee_ids=[bob.id, carol.id]
        )
        assert await invitations.expire_stale(conn, made[0].created) == 0  # not older than that
        assert await invitations.expire_stale(conn, now_ms() + 1, invitee_id=bob.id) == 1
        assert await invitations.expire_stale(conn, now_ms() + 1, record_id="a_other") == 0
    async with db.read() as conn:
        assert (await invitations.get(conn, made[0].id)).status == "expired"
        assert (await invitations.get(conn, made[1].id)).status == "pending"


async def test_created_since_is_the_inviters_window(db, make_user):
    alice, bob, carol, record = await _setup(db, make_user)
    start = now_ms()
    async with db.transaction() as conn:
        await invitations.create_many(conn, record_id=record.id, inviter_id=alice.id, invitee_ids=[bob.id, carol.id])
        await invitations.create_many(conn, record_id=record.id, inviter_id=bob.id, invitee_ids=[alice.id])
    async with db.read() as conn:
        assert len(await invitations.created_since(conn, alice.id, start)) == 2
        assert await invitations.created_since(conn, alice.id, now_ms() + 1) == []


async def test_lock_inviter_holds_another_nodes_batch_until_the_first_ends(db, make_user, open_node):
    alice = await make_user("alice")
    other = open_node()
    order = []
    async with db.transaction() as first:
        await invitations.lock_inviter(first, alice.id)

        async def second():
            async with other.transaction() as conn:
                await invitations.lock_inviter(conn, alice.id)
                order.append("second")

        task = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        order.append("first")
    await task
    assert order == ["first", "second"]
