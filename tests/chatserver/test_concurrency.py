"""The same membership change requested many times at once (double clicks, retries, two tabs), on SQLite
and on PostgreSQL: one wins, the others get a clear 4xx, and the room announces it once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from .conftest import seqs

TIMES = 8


@pytest.fixture
def database_url(sqlite_then_postgresql):
    """This module's server runs once on SQLite and once on a fresh PostgreSQL database."""
    return sqlite_then_postgresql


def system_types(history: dict) -> list[str]:
    return [m["system"]["type"] for m in history["messages"] if m["kind"] == "system"]


async def test_concurrent_adds_of_one_user_make_one_member(make_account, make_room, http):
    alice = await make_account()
    bob = await make_account()
    room, _ = await make_room(owner=alice, join_policy="open")
    path = f"/api/rooms/{room['id']}/members"
    replies = await asyncio.gather(*(http("POST", path, token=token, json={"user_id": bob.id})
                                     for token in [bob.token, alice.token] * (TIMES // 2)))
    assert sorted(r.status for r in replies) == [201] + [409] * (TIMES - 1)
    for reply in replies:
        if reply.status == 409:
            reply.error(409, "conflict")
    history = (await http("GET", f"/api/rooms/{room['id']}/messages", token=alice.token)).body
    assert system_types(history) == ["member.joined"]
    assert (await http("GET", f"/api/rooms/{room['id']}", token=alice.token)).body["member_count"] == 2


async def test_concurrent_leaves_and_kicks_of_one_member_announce_it_once(make_account, make_room, http):
    alice = await make_account()
    bob = await make_account()
    room, _ = await make_room(owner=alice, members=[bob])
    path = f"/api/rooms/{room['id']}/members/{bob.id}"
    replies = await asyncio.gather(*(http("DELETE", path, token=token) for token in [bob.token, alice.token] * (TIMES // 2)))
    statuses = sorted(r.status for r in replies)
    assert statuses.count(204) == 1 and set(statuses) <= {204, 403, 404}, statuses
    history = (await http("GET", f"/api/rooms/{room['id']}/messages", token=alice.token)).body
    assert len(system_types(history)) == 2 and system_types(history)[0] == "member.joined"
    assert system_types(history)[1] in ("member.left", "member.kicked")
    assert seqs(history["messages"]) == [1, 2]


async def test_a_kick_takes_the_room_lock_before_the_members_row(database_url, make_account, make_room, http):
    """Lock order: room, then membership, as a commit of messages takes them (it locks the room and
    then moves its senders' read markers). A kick that locked the member's row first could deadlock
    with a commit of that member's messages."""
    if database_url.startswith("sqlite"):
        pytest.skip("row locks: SQLite locks the whole database")
    alice, bob = await make_account(), await make_account()
    room, _ = await make_room(owner=alice, members=[bob])
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as holder, engine.connect() as prober:
            await holder.begin()
            await holder.execute(text("SELECT id FROM rooms WHERE id = :r FOR NO KEY UPDATE"), {"r": room["id"]})
            kick = asyncio.create_task(http("DELETE", f"/api/rooms/{room['id']}/members/{bob.id}", token=alice.token))
            async with asyncio.timeout(10):  # until the kick is waiting for a lock
                while not (await prober.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                ))).scalar():
                    assert not kick.done(), "the kick did not wait for the room"
                    await asyncio.sleep(0.02)
            await prober.rollback()
            # It waits for the room, holding nothing of bob's membership yet.
            await prober.begin()
            free = await prober.execute(
                text("SELECT 1 FROM memberships WHERE room_id = :r AND user_id = :u FOR UPDATE NOWAIT"),
                {"r": room["id"], "u": bob.id},
            )
            assert free.first() is not None
            await prober.rollback()
            await holder.rollback()
            assert (await asyncio.wait_for(kick, 10)).status == 204
    finally:
        await engine.dispose()
