"""CPU of the message writer's group commit: through aiosqlite's thread against inline on the loop.

At a low send rate every message is a commit of its own, so the commit's CPU is a
per-message cost that a broadcast without storage does not pay; at 1,000 members a
millisecond of it is a microsecond of every delivery (docs/performance.md). This
stores messages with `append_batch`, one commit per batch, and reports the process's
CPU (every thread) and wall time per commit for each way of running the transaction.

    .venv/bin/python scripts/bench_commit.py [--batch 1] [--commits 2000] [--postgres]

Run it pinned to one core (`taskset -c 0`) to count the thread hops' context switches
as a deployment with a core per process pays them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Callable

from storage import messages, rooms, users
from storage.db import Database
from storage.records import NewMessage

from .bench_db import scratch_pg_database

PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


async def measure(db: Database, transaction: Callable, *, batch: int, commits: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per commit of `batch` new messages, the median of three rounds."""
    async with db.transaction() as conn:
        user = await users.create(conn, name=f"u{time.monotonic_ns()}", display="U", password_hash=None)
        room = await rooms.create(conn, name="bench", topic="", join_policy="open", owner_id=user.id)
    counter = iter(range(10**9))

    async def commit_one() -> None:
        new = [NewMessage(room_id=room.id, sender=user, text=f"hello {n}", cid=f"c{n}")
               for n in (next(counter) for _ in range(batch))]
        async with transaction() as conn:
            await messages.append_batch(conn, new)

    for _ in range(min(200, commits)):  # warm the statement caches and the file
        await commit_one()
    rounds = []
    for _ in range(3):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(commits):
            await commit_one()
        rounds.append(((time.process_time() - cpu) / commits * 1e6, (time.perf_counter() - wall) / commits * 1e6))
    rounds.sort()
    return rounds[1]


@contextlib.asynccontextmanager
async def sqlite_database() -> AsyncIterator[Database]:
    with tempfile.TemporaryDirectory() as workdir:
        db = Database(f"sqlite+aiosqlite:///{workdir}/bench.db")
        try:
            await db.migrate()
            yield db
        finally:
            await db.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=1, help="messages per commit (default 1)")
    parser.add_argument("--commits", type=int, default=2000, help="commits per round (default 2,000)")
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL (a scratch database)")
    args = parser.parse_args()
    rows = []
    async with sqlite_database() as db:
        for name, transaction in (("SQLite, aiosqlite thread", db.transaction),
                                  ("SQLite, inline on the loop", db.inline_transaction)):
            rows.append((name, *await measure(db, transaction, batch=args.batch, commits=args.commits)))
    if args.postgres:
        async with scratch_pg_database(PG_ADMIN, "bench_commit") as url:
            db = Database(url)
            try:
                await db.migrate()
                rows.append(("PostgreSQL (asyncpg)",
                             *await measure(db, db.inline_transaction, batch=args.batch, commits=args.commits)))
            finally:
                await db.close()
    print(f"{args.batch} message(s) per commit, median of 3 rounds of {args.commits:,} commits")
    print(f"{'engine':<30} {'CPU µs/commit':>14} {'wall µs/commit':>15}")
    for name, cpu, wall in rows:
        print(f"{name:<30} {cpu:>14,.0f} {wall:>15,.0f}")


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
