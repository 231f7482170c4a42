"""The same membership change requested many times at once (double clicks, retries, two tabs), on SQLite
and on PostgreSQL: one wins, the others get a clear 4xx, and the room announces it once."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import drop_pg_database, fresh_pg_database, pg_available, require

from .conftest import seqs

TIMES = 8


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request, database_url):
    """This module's server runs once on SQLite and once on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield database_url
        return
    require(pg_available(), "CHAT_REQUIRE_PG")
    url = await fresh_pg_database()
    yield url
    await drop_pg_database(url)


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
