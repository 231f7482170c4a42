"""A node starting to serve a room while messages keep coming: nothing the bus brings in the meantime
is lost. On PostgreSQL whatever CHAT_TEST_DATABASE says: a table lock holds the room's setup at a
chosen point."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest

from tests.conftest import drop_pg_database, fresh_pg_database, pg_available, require


@pytest.fixture
async def database_url():
    require(pg_available(), "CHAT_REQUIRE_PG")
    url = await fresh_pg_database()
    yield url
    await drop_pg_database(url)


@contextlib.asynccontextmanager
async def room_setup_held(database_url: str, hello_coro, table: str = "room_mutes"):
    """Lock `table` (`room_mutes`: read while a room is set up), start `hello_coro` as a task and yield
    `(locker, hello)` once the hello waits on the lock: the body runs in the locker's transaction,
    committed (and the lock released) on leaving; then `await hello`."""
    plain = database_url.replace("postgresql+asyncpg", "postgresql")
    locker, watcher = await asyncpg.connect(plain), await asyncpg.connect(plain)
    try:
        async with locker.transaction():
            await locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            hello = asyncio.create_task(hello_coro)
            async with asyncio.timeout(10):
                while not await watcher.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                                 " AND query LIKE $1", f"%{table}%"):
                    await asyncio.sleep(0.01)
            yield locker, hello
    finally:
        await locker.close()
        await watcher.close()


async def test_a_message_heard_while_the_room_is_set_up_is_delivered(
        server, database_url, make_account, make_room, connect):
    """The node subscribes to the room, then reads its last seq, then registers it. A message stored by
    another node after that read reaches this node by the bus before the room is registered: it must
    be delivered all the same (the bus brings it once; it was dropped, and the room stood still until
    its next message; the cluster test of a shard outage found it).

    The setup is held by a lock on `room_mutes`, read after the last seq (the test waits until the
    setup's query waits on it); the message is stored and handed to the hub as the bus would."""
    from chatserver import keys
    from chatserver.bus.events import Posted
    from storage import messages as message_store
    from storage.records import NewMessage, User

    alice, bob = await make_account(), await make_account()
    room, _ = await make_room(owner=alice, members=[bob])
    hub, db = server.app[keys.HUB], server.app[keys.DB]
    async with room_setup_held(database_url, connect(bob)) as (_, hello):  # the room's first connection here
        sender = User(id=alice.id, name=alice.user["name"], display=alice.user["display"])
        async with db.transaction() as conn:
            (stored,) = await message_store.append_batch(
                conn, [NewMessage(room_id=room["id"], sender=sender, text="meanwhile", cid="meanwhile")])
        hub.on_room_event(room["id"], Posted(stored.message))
    b = await hello
    got = await b.expect("message", room=room["id"])
    assert (got["seq"], got["text"]) == (stored.message.seq, "meanwhile")


async def test_a_room_dissolved_while_a_hello_sets_it_up_is_reported_and_let_go(
        server, database_url, make_account, make_room, connect):
    """A hello reads the user's rooms, then attaches them one after another. A room dissolved in
    between is in the `welcome`, and the `RoomDeleted` news finds the connection holding nothing of
    it yet (it is still setting up another room): the client must still be told (`room_deleted`)
    and the node must not serve it to them.

    The hello is held by a lock on `room_mutes` (read while its first room is set up); the same
    transaction deletes the other room (its cascade needs that table), and the news reaches the
    hub while the hello waits, as it would from the node where the dissolve answered first."""
    from chatserver import keys
    from chatserver.bus.events import RoomDeleted

    alice, bob = await make_account(), await make_account()
    rooms = [(await make_room(owner=alice, members=[bob], name=f"group {n}"))[0]["id"] for n in range(2)]
    hub = server.app[keys.HUB]
    async with room_setup_held(database_url, connect(bob)) as (locker, hello):
        (held,) = hub.user_connections(bob.id)
        (first,) = held.holding  # being set up; the other is not reached yet
        dissolved = next(room_id for room_id in rooms if room_id != first)
        await locker.execute("DELETE FROM rooms WHERE id = $1", dissolved)
        assert not held.resumed and dissolved not in held.rooms
        hub.on_control_event(RoomDeleted(room_id=dissolved, user_ids=[alice.id, bob.id]))
    b = await hello
    assert dissolved in [r["id"] for r in b.welcome["rooms"]]
    await b.expect("room_deleted", room=dissolved)
    async with asyncio.timeout(5):
        while dissolved in held.rooms or dissolved in held.holding:
            await asyncio.sleep(0.01)


async def test_a_notify_heard_during_a_hello_comes_after_its_welcome(
        server, database_url, make_account, make_room, connect):
    """A connection hears its user's events from its registration on, before its welcome can be built
    (the rooms' states are read after it, so none is missed): a `notify` heard meanwhile must not be
    written before the welcome (the fuzz test saw one come first). The hello is held on its read of the
    rooms' states by a lock on `message_mentions`; the notify reaches the hub as the bus would bring it."""
    from chatserver import keys
    from chatserver.bus.events import Notified

    alice, bob = await make_account(), await make_account()
    room, _ = await make_room(owner=alice, members=[bob])
    hub = server.app[keys.HUB]
    async with room_setup_held(database_url, connect(bob), table="message_mentions") as (_, hello):
        (held,) = hub.user_connections(bob.id)
        assert not held.ready.is_set()  # registered, its welcome not built yet
        sender = {"id": alice.id, "name": alice.user["name"], "display": alice.user["display"]}
        hub.on_control_event(Notified([bob.id], "mention", {"room": room["id"], "seq": 7, "from_": sender}))
        # The flusher writes a queued frame at the end of its loop turn: 50 ms is many turns, enough for
        # the notify to go out before the welcome if anything let it.
        await asyncio.sleep(0.05)
    b = await hello
    assert list(b._queued) == []  # nothing arrived before the welcome
    notice = await b.expect("notify")
    assert (notice["type"], notice["room"], notice["seq"]) == ("mention", room["id"], 7)
