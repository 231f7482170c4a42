"""storage.db: migrations, transactions, health, unavailability."""

import asyncio
import time

import pytest
from sqlalchemy import inspect, text

from storage import users
from storage.db import MIGRATIONS_DIR, Database, StorageUnavailable, now_ms

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
