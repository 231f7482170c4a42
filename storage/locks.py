"""Locks by name, for work that spans the database and something outside its transactions.

A blob's bytes live outside the `files` rows that use them (on disk, or in rows written by
transactions of their own), so "no row uses this blob: delete it" and "the blob is stored: add
a row that uses it" must not interleave; a lock on the blob's key orders them. On PostgreSQL it
is an advisory lock, so it holds across every node that shares the database (and goes with its
connection if the node dies); SQLite is served by one process, so an asyncio lock of that
process is enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator

from sqlalchemy import bindparam, func, select

from .db import Database

# Held by a transaction of its own: its end (the body done, failed, or the connection lost)
# releases it, so a lock never outlives its holder.
_LOCK = select(func.pg_advisory_xact_lock(bindparam("id")))


def lock_id(name: str) -> int:
    """The 64-bit advisory lock id of a name (two names sharing one only wait for each other)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class NamedLocks:
    def __init__(self, db: Database):
        self._db = db
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}  # name → (lock, holders and waiters)

    @contextlib.asynccontextmanager
    async def hold(self, *names: str) -> AsyncIterator[None]:
        """Hold every one of `names` (taken in sorted order, so two holders never deadlock)."""
        ordered = sorted(set(names))
        if self._db.is_sqlite:
            async with contextlib.AsyncExitStack() as stack:
                for name in ordered:
                    await stack.enter_async_context(self._local_lock(name))
                yield
            return
        async with self._db.read() as conn:
            for name in ordered:
                await conn.execute(_LOCK, {"id": lock_id(name)})
            yield

    @contextlib.asynccontextmanager
    async def _local_lock(self, name: str) -> AsyncIterator[None]:
        lock, users = self._local.get(name) or (asyncio.Lock(), 0)
        self._local[name] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._local[name]
            if users == 1:
                del self._local[name]
            else:
                self._local[name] = (lock, users - 1)
