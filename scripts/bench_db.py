"""What the storage benchmarks share: bulk inserts in chunks, a scratch PostgreSQL database, CPU time."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterable

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from storage.db import Database

CHUNK = 5_000  # rows per INSERT


async def insert_in_chunks(db: Database, table, rows: Iterable[dict], chunk: int = CHUNK) -> None:
    """Insert `rows` into `table`, `chunk` rows a transaction (one executemany each)."""
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == chunk:
            async with db.transaction() as conn:
                await conn.execute(insert(table), batch)
            batch = []
    if batch:
        async with db.transaction() as conn:
            await conn.execute(insert(table), batch)


@contextlib.asynccontextmanager
async def scratch_pg_database(admin: str, prefix: str) -> AsyncIterator[str]:
    """A new database on the server of `admin` (a SQLAlchemy URL), dropped afterwards: its URL."""
    import asyncpg

    admin_url = make_url(admin)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class CpuMeter:
    """CPU seconds spent by this process and, on PostgreSQL, by the server processes serving
    the database (read from /proc, so only for a server on this host).

    On a shared host wall-clock latencies move with the other work; the CPU a query costs
    hardly does, so benchmarks print both. `attach()` again after the pool opens connections."""

    def __init__(self, db: Database):
        self._db = db
        self._pids: list[int] = []
        self.sees_server = not db.is_sqlite  # until attach() finds the backends unreadable

    async def attach(self) -> None:
        if self._db.is_sqlite:
            return
        async with self._db.read() as conn:
            rows = await conn.execute(text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_type = 'client backend'"
            ))
            pids = [row.pid for row in rows]
        self._pids = [pid for pid in pids if _cpu_ns(pid) is not None]
        self.sees_server = bool(self._pids)

    def seconds(self) -> float:
        server = sum(_cpu_ns(pid) or 0 for pid in self._pids)
        return time.process_time() + server / 1e9


def _cpu_ns(pid: int) -> int | None:
    """Nanoseconds process `pid` has run on a CPU (its /proc/<pid>/schedstat), None when unreadable."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
