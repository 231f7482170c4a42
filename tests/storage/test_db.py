"""storage.db: migrations, transactions, health, unavailability."""

import asyncio
import time

import pytest
from sqlalchemy import inspect, text

from storage import messages, rooms, users
from storage.db import MIGRATIONS_DIR, Database, StorageUnavailable, now_ms
from storage.records import NewMessage

TABLES = {"users", "tokens", "rooms", "memberships", "messages"}

# Nothing listens on port 1: connecting is refused at once.
CLOSED_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:1/test"


async def _tables(db: Database) -> set[str]:
    async with db.read() as conn:
        return set(await conn.run_sync(lambda sync_conn: inspect(sync_conn).get_table_names()))


def _head() -> str:
    """The newest migration shipped with the package."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


async def _revision(db: Database) -> str:
    async with db.read() as conn:
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()


async def test_migrate_creates_the_tables(db):
    assert TABLES <= await _tables(db)
    assert await _revision(db) == _head()


async def test_migrate_twice_is_a_no_op_and_keeps_data(db, make_user):
    alice = await make_user("alice")
    await db.migrate()
    await db.migrate()
    assert TABLES <= await _tables(db)
    assert await _revision(db) == _head()
    async with db.read() as conn:
        assert await users.get(conn, alice.id) == alice


async def test_nodes_migrating_at_once_both_succeed(open_node):
    nodes = [open_node(), open_node()]
    await asyncio.gather(*(node.migrate() for node in nodes))
    for node in nodes:
        assert TABLES <= await _tables(node)
        assert await _revision(node) == _head()


async def test_transaction_commits_on_success(db):
    async with db.transaction() as conn:
        alice = await users.create(conn, name="alice", display="Alice", password_hash="h")
    async with db.read() as conn:
        assert await users.get(conn, alice.id) == alice


async def test_transaction_rolls_back_on_error(db):
    with pytest.raises(LookupError):
        async with db.transaction() as conn:
            alice = await users.create(conn, name="alice", display="Alice", password_hash="h")
            raise LookupError("caller failed")
    async with db.read() as conn:
        assert await users.get(conn, alice.id) is None
        assert await users.by_name(conn, "alice") is None


async def test_ping_answers(db):
    assert await db.ping() is True


async def test_now_ms_is_epoch_milliseconds():
    before = int(time.time() * 1000)
    assert before - 1 <= now_ms() <= int(time.time() * 1000) + 1


async def test_unreachable_database_raises_storage_unavailable():
    db = Database(CLOSED_PG_URL)
    try:
        with pytest.raises(StorageUnavailable):
            async with db.transaction() as conn:
                await conn.execute(text("SELECT 1"))
        with pytest.raises(StorageUnavailable):
            async with db.read() as conn:
                await conn.execute(text("SELECT 1"))
        assert await db.ping() is False
    finally:
        await db.close()


async def test_bad_sql_is_not_reported_as_unavailable(db):
    with pytest.raises(Exception) as caught:
        async with db.transaction() as conn:
            await conn.execute(text("SELECT * FROM no_such_table"))
    assert not isinstance(caught.value, StorageUnavailable)


async def test_inline_transaction_commits_and_rolls_back(db, alice, room):
    """The writer's transaction (inline on the loop on SQLite): what it commits every reader sees,
    what fails inside it leaves nothing."""
    async with db.inline_transaction() as conn:
        stored = (await messages.append_batch(conn, [NewMessage(room_id=room.id, sender=alice, text="kept")]))[0]
    with pytest.raises(RuntimeError):
        async with db.inline_transaction() as conn:
            await messages.append_batch(conn, [NewMessage(room_id=room.id, sender=alice, text="dropped")])
            raise RuntimeError("fails after the insert")
    async with db.inline_transaction() as conn:  # the next one starts clean
        after = (await messages.append_batch(conn, [NewMessage(room_id=room.id, sender=alice, text="after")]))[0]
    async with db.read() as conn:
        page, _ = await messages.history(conn, room.id)
    assert [(m.seq, m.text) for m in page] == [(stored.message.seq, "kept"), (after.message.seq, "after")]
    assert after.message.seq == stored.message.seq + 1  # the rolled-back seq is not a gap


@pytest.fixture
async def sqlite_room(tmp_path):
    """A migrated SQLite file (`tmp_path / "chat.db"`) with a user and their room: (db, user, room)."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
    try:
        await db.migrate()
        async with db.transaction() as conn:
            user = await users.create(conn, name="walt", display="Walt", password_hash=None)
            room = await rooms.create(conn, name="r", topic="", join_policy="open", owner_id=user.id)
        yield db, user, room
    finally:
        await db.close()


async def test_inline_commits_are_checkpointed_from_a_thread(sqlite_room, tmp_path):
    """SQLite: inline commits never checkpoint the WAL themselves (that would stall the loop); the
    database's task does, so the main file takes in what the WAL holds within a few seconds."""
    db, user, room = sqlite_room
    async with db.engine.connect() as conn:  # start from a WAL that holds nothing new
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    main_file = tmp_path / "chat.db"
    before = main_file.stat().st_size
    async with db.inline_transaction() as conn:
        await messages.append_batch(conn, [
            NewMessage(room_id=room.id, sender=user, text="x" * 2000, cid=f"c{i}") for i in range(500)])
    assert main_file.stat().st_size == before  # committed to the WAL only
    deadline = time.monotonic() + 10  # the task looks every CHECKPOINT_INTERVAL (1 s)
    while main_file.stat().st_size == before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert main_file.stat().st_size > before


async def test_inline_transaction_fails_fast_when_another_process_holds_the_lock(sqlite_room, tmp_path):
    """An inline write waits only a moment for a lock another process holds (the loop waits with
    it), then reports the storage unavailable, as any write does."""
    import sqlite3

    db, user, room = sqlite_room
    other = sqlite3.connect(tmp_path / "chat.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a writer elsewhere: e.g. a `sqlite3` shell
    try:
        for write in (  # through SQLAlchemy, and straight on the driver (storage/prepared.py)
            lambda conn: conn.execute(text("UPDATE rooms SET topic = 'x'")),
            lambda conn: messages.append_batch(conn, [NewMessage(room_id=room.id, sender=user, text="hi")]),
        ):
            started = time.monotonic()
            with pytest.raises(StorageUnavailable):
                async with db.inline_transaction() as conn:
                    await write(conn)
            assert time.monotonic() - started < 5  # busy_timeout 200 ms, not the 10 s of the others
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_inline_read_sees_what_is_committed_and_a_body_that_waits_never_deadlocks(db, alice, bob):
    """`inline_read` (on the loop's thread on SQLite) reads committed rows; two reads at once,
    one of whose bodies wrongly waits, both finish (the second gets a connection of its own)."""
    entered = asyncio.Event()

    async def waits() -> str:
        async with db.inline_read() as conn:
            entered.set()
            await asyncio.sleep(0.05)  # not what a body should do: still no deadlock
            return (await users.get(conn, alice.id)).name

    async def reads() -> str:
        await entered.wait()
        async with db.inline_read() as conn:
            return (await users.get(conn, bob.id)).name

    async with asyncio.timeout(10):
        assert await asyncio.gather(waits(), reads()) == ["alice", "bob"]


async def test_inline_read_never_waits_for_a_writer_elsewhere(sqlite_room, tmp_path):
    """SQLite: while another process holds the write lock with a row not yet committed, an inline
    read answers at once (WAL: readers do not wait) and does not see that row."""
    import sqlite3

    db, user, _ = sqlite_room
    other = sqlite3.connect(tmp_path / "chat.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE users SET display = 'Not yet'")
    try:
        async with asyncio.timeout(5), db.inline_read() as conn:
            found = await users.by_name(conn, user.name)
        assert found[0].display == "Walt"
    finally:
        other.execute("ROLLBACK")
        other.close()
