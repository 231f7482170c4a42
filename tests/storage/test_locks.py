"""Named locks (storage/locks.py) on SQLite and PostgreSQL: one holder of a name at a time, across
`Database` handles on PostgreSQL (two nodes); different names never wait for each other; held in
sorted order, so two holders of the same names never deadlock."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text

from storage.locks import NamedLocks

DEADLINE = 10.0  # seconds any step here may take (each takes milliseconds)


async def someone_waits(locks: NamedLocks, db, name: str) -> bool:
    """PostgreSQL: a session of the database waits for an advisory lock; SQLite: the process's
    lock of `name` has a holder and a waiter."""
    if db.is_sqlite:
        return locks._local.get(name, (None, 0))[1] == 2
    async with db.read() as conn:
        return (await conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND wait_event = 'advisory'"))).scalar() > 0


async def test_one_holder_of_a_name_at_a_time_and_other_names_pass(db, open_database, store):
    here = NamedLocks(db)
    # Another node's handle on PostgreSQL; on SQLite, which one process serves, the same one.
    there = NamedLocks(open_database()) if store.backend == "postgresql" else here
    order: list[str] = []
    released = asyncio.Event()

    async def first() -> None:
        async with here.hold("blob:a"):
            order.append("first in")
            await released.wait()
            order.append("first out")

    async def second() -> None:
        async with there.hold("blob:a"):
            order.append("second in")

    holder = asyncio.create_task(first())
    while order != ["first in"]:
        await asyncio.sleep(0.01)
    waiter = asyncio.create_task(second())
    deadline = time.monotonic() + DEADLINE
    while not await someone_waits(there, db, "blob:a"):
        assert time.monotonic() < deadline, "the second holder never waited"
        await asyncio.sleep(0.01)
    async with asyncio.timeout(DEADLINE):
        async with there.hold("blob:b"):  # another name: not held up
            pass
    assert order == ["first in"]
    released.set()
    async with asyncio.timeout(DEADLINE):
        await asyncio.gather(holder, waiter)
    assert order == ["first in", "first out", "second in"]


async def test_names_taken_in_any_order_never_deadlock(db):
    locks = NamedLocks(db)

    async def hold(*names: str) -> None:
        async with locks.hold(*names):
            await asyncio.sleep(0.01)

    async with asyncio.timeout(DEADLINE):
        await asyncio.gather(*(hold("x", "y") if n % 2 else hold("y", "x") for n in range(10)))
