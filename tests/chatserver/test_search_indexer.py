"""The search indexer (chatserver/services/search_indexer.py) in a real server, on SQLite and on
PostgreSQL: new messages are found at once, and once the writer is idle the indexer has read them
into the index (SQLite's FTS5 index, PostgreSQL's word index)."""

from __future__ import annotations

import pytest

from chatserver import keys
from storage import search as search_store

from .conftest import eventually
from .test_http_search import _say, _search


@pytest.fixture
def database_url(sqlite_then_postgresql):
    return sqlite_then_postgresql


async def test_new_messages_are_found_at_once_and_indexed_soon_after(server, http, make_account, make_room):
    alice = await make_account()
    room, _ = await make_room(owner=alice)
    for i in range(3):
        await _say(alice, room["id"], f"indexed soon {i}")
    assert len((await _search(http, alice, "indexed soon"))["items"]) == 3
    db = server.app[keys.DB]

    async def caught_up():
        async with db.read() as conn:
            return await search_store.unindexed(conn) == 0

    await eventually(caught_up)
    assert [i["text"] for i in (await _search(http, alice, "indexed soon"))["items"]] == [
        f"indexed soon {i}" for i in (2, 1, 0)]
