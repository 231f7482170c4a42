"""Index new messages for search just after they are stored, when the writer is idle.

Indexing a message costs more than storing it (SQLite's trigram index,
PostgreSQL's word index), and one writer does all the storing: indexing
inside the commit would take ingest below its target. So the writer commits,
and this task adds what it stored to the index while the writer has nothing
to do (search reads the rows not yet indexed by scanning them: nothing is
ever missing from a result). Under sustained load it still indexes a chunk
each `interval` once the backlog passes `max_backlog`, so that scan stays
short. (PostgreSQL's trigram index takes new messages in the commit.)
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
QUIET = 0.05  # seconds the writer must have been idle
MAX_BACKLOG = 50_000  # messages not indexed before chunks go in even under load


class SearchIndexer:
    def __init__(self, db: Database, writer: MessageWriter, *, interval: float = INTERVAL,
                 max_backlog: int = MAX_BACKLOG):
        self._db = db
        self._writer = writer
        self._interval = interval
        self._max_backlog = max_backlog
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
        caught_up_at: float | None = None  # the writer's `active_at` when the index last caught up
        checked = 0.0
        while True:
            await asyncio.sleep(QUIET)
            if self._writer.active_at == caught_up_at:
                continue  # nothing stored since
            if not (self._writer.idle and loop.time() - self._writer.active_at >= QUIET):
                # Busy: only keep the backlog (what search scans) from growing past its bound.
                if loop.time() - checked >= self._interval:
                    checked = loop.time()
                    if await self._backlog() > self._max_backlog:
                        await self._index_chunk()
                continue
            mark = self._writer.active_at
            while self._writer.idle:
                if not await self._index_chunk():
                    caught_up_at = mark
                    break
                await asyncio.sleep(0)  # the writer goes first between chunks

    async def _backlog(self) -> int:
        try:
            async with self._db.read() as conn:
                return await search_store.unindexed(conn)
        except StorageUnavailable:
            return 0

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
