"""Index new messages for search just after they are stored, when the writer is idle.

Indexing a message costs more than storing it (SQLite's trigram index,
PostgreSQL's word index of migration 0008), and one writer does all the
storing: indexing inside the commit would take ingest below its target. So
the writer commits, and this task adds what it stored to the index while the
writer has nothing to do (search reads the rows not yet indexed by scanning
them: nothing is ever missing from a result). Under sustained load it still
indexes a chunk each `interval` once the backlog passes `max_backlog`, so
that scan stays short. The backlog is counted from the writer's own tally,
not asked of the database: a query each `interval` cost more CPU at 100
messages a second than the chunks do (two thread hops per statement); the
database is asked only every `RECOUNT` seconds, for the system messages
other transactions store (and, on PostgreSQL, what other nodes' writers
store: one node at a time indexes, `storage/pg_search.py`). PostgreSQL's
trigram index takes new messages in the commit (its GIN pending list makes
that cheap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from storage import search as search_store
from storage.db import Database, StorageUnavailable

from .writer import MessageWriter

log = logging.getLogger(__name__)

CHUNK = 500  # messages (SQLite) or rooms (PostgreSQL) a transaction: the writer waits for one at most
INTERVAL = 0.2  # seconds between looks while the writer is busy
QUIET = 0.05  # seconds the writer must have been idle to index a gathered backlog
# A chunk costs a transaction through aiosqlite's thread (about twenty hops) however few messages it
# holds: indexing at every short lull of a steady stream paid that for one or two messages at a time.
# So short lulls wait for this many; a lull of LONG_QUIET indexes whatever there is.
MIN_CHUNK = 100
LONG_QUIET = 1.0
# Messages not indexed before chunks go in even under load. The bound keeps short what a search
# scans besides the index: on SQLite every message past the index (one position for all rooms),
# on PostgreSQL only the caller's rooms' share (a position per room), so there it can be ten times
# higher. At 50,000 the word index's chunks went in a few seconds into a burst, each a
# transaction of every room's words: `bench_fanout.py --scenario ingest --targets ours-pg` peaked
# at 9,718 acked/s against 11,259 with no chunk during the run.
MAX_BACKLOG = {"sqlite": 50_000, "postgresql": 500_000}
RECOUNT = 30.0  # seconds between asking the database what is not indexed (see the module's docstring)


class SearchIndexer:
    def __init__(self, db: Database, writer: MessageWriter, *, interval: float = INTERVAL,
                 max_backlog: int | None = None):
        self._db = db
        self._writer = writer
        self._interval = interval
        self._max_backlog = MAX_BACKLOG[db.dialect] if max_backlog is None else max_backlog
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="search-indexer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backlog = 0  # messages stored and not indexed: the writer's tally, recounted now and then
        tallied = self._writer.stored
        checked = recounted = -RECOUNT
        while True:
            await asyncio.sleep(QUIET)
            backlog += self._writer.stored - tallied
            tallied = self._writer.stored
            if loop.time() - recounted >= RECOUNT:  # also what an earlier run left, at start
                recounted = loop.time()
                backlog = max(backlog, await self._backlog())
            if not backlog:
                continue
            quiet_for = loop.time() - self._writer.active_at if self._writer.idle else 0.0
            if not (quiet_for >= LONG_QUIET or (quiet_for >= QUIET and backlog >= MIN_CHUNK)):
                # Busy: only keep the backlog (what search scans) from growing past its bound.
                if backlog > self._max_backlog and loop.time() - checked >= self._interval:
                    checked = loop.time()
                    backlog = max(0, backlog - await self._index_chunk())
                continue
            while self._writer.idle:
                moved = await self._index_chunk()
                backlog = max(0, backlog - moved)
                if not moved:
                    backlog = 0 if not await self._backlog() else backlog
                    break
                await asyncio.sleep(0)  # the writer goes first between chunks

    async def _backlog(self) -> int:
        try:
            async with self._db.read() as conn:
                return await search_store.unindexed(conn)
        except StorageUnavailable:
            return 1  # unknown: look again when the writer is idle

    async def _index_chunk(self) -> int:
        """Index the next chunk; how many rowids it moved past (0: caught up, or it failed)."""
        try:
            async with self._db.transaction() as conn:
                return await search_store.index_messages(conn, CHUNK)
        except StorageUnavailable:
            await asyncio.sleep(1)
        except Exception:  # never stop for good: search scans what is not indexed meanwhile
            log.exception("indexing messages for search failed")
            await asyncio.sleep(5)
        return 0
