"""connection.Flag: the one-way event every connection holds twice (ready, done)."""

from __future__ import annotations

import asyncio

from chatserver.connection import Flag


async def test_set_wakes_every_waiter_and_later_waits_return_at_once():
    flag = Flag()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not flag.is_set() and not any(w.done() for w in waiters)
    flag.set()
    await asyncio.wait_for(asyncio.gather(*waiters), 1)
    assert flag.is_set()
    await asyncio.wait_for(flag.wait(), 1)


async def test_a_cancelled_waiter_leaves_the_others_waiting_and_woken():
    flag = Flag()
    gone, staying = asyncio.create_task(flag.wait()), asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    assert gone.cancelled() and not staying.done()
    flag.set()
    await asyncio.wait_for(staying, 1)


async def test_setting_twice_is_harmless():
    flag = Flag()
    flag.set()
    flag.set()
    assert flag.is_set()
