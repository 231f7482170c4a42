"""The search indexer while the writer never rests (chatserver/services/search_indexer.py): it
leaves new messages to search's scan until the backlog passes its bound, then indexes them even
under load. On SQLite and PostgreSQL, with a small bound."""

from __future__ import annotations

import asyncio

from chatserver.services.search_indexer import MAX_BACKLOG, SearchIndexer
from storage import search as search_store


class BusyWriter:
    """The writer's tally as the indexer reads it, for a writer that is never idle."""

    idle = False
    active_at = 0.0

    def __init__(self) -> None:
        self.stored = 0


async def _unindexed(db) -> int:
    async with db.read() as conn:
        return await search_store.unindexed(conn)


async def test_under_load_it_indexes_only_past_the_bound(db, room, alice, send_message):
    writer = BusyWriter()
    indexer = SearchIndexer(db, writer, interval=0.01, max_backlog=5)
    indexer.start()
    try:
        for i in range(3):
            await send_message(room.id, alice, f"busy words {i}")
        writer.stored = 3
        # Within the bound nothing is indexed while the writer is busy: 0.5 s is 50 of the
        # indexer's looks at this interval, each of which would have indexed had it been due.
        await asyncio.sleep(0.5)
        assert await _unindexed(db) == 3
        for i in range(3, 7):
            await send_message(room.id, alice, f"busy words {i}")
        writer.stored = 7  # past the bound: indexed although the writer is still busy
        async with asyncio.timeout(10):
            while await _unindexed(db):
                await asyncio.sleep(0.02)
    finally:
        await indexer.close()


def test_the_bound_follows_what_a_search_scans(db):
    """SQLite's search scans every message past the index, PostgreSQL's only its rooms' share."""
    dialect = "sqlite" if db.is_sqlite else "postgresql"
    assert SearchIndexer(db, BusyWriter())._max_backlog == MAX_BACKLOG[dialect]
    assert MAX_BACKLOG["postgresql"] > MAX_BACKLOG["sqlite"]
