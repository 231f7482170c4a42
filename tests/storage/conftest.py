"""Fixtures for repository tests: every test that asks for `db` runs on SQLite and on PostgreSQL.

- `store`: where the data lives, parametrized `[sqlite]` / `[postgresql]`. SQLite is a fresh
  file in `tmp_path`; PostgreSQL is a fresh schema, unique to the test, that the engine's
  `search_path` points at and that is dropped afterwards. When PostgreSQL cannot be reached
  its variants are skipped with the reason, unless `CHAT_REQUIRE_PG=1` (then they fail).
  `CHAT_TEST_PG_URL` overrides the PostgreSQL URL.
- `open_database`: `open_database()` gives another `Database` on the same store (a second
  node, say); not migrated; closed after the test.
- `open_node`: the same, for tests of several server nodes; skips on SQLite, which serves one.
- `db`: a migrated `Database` on the store. Most tests need only this.
- `make_user`, `make_room`, `send_message`: each does one thing in its own transaction.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from storage import messages, rooms, users
from storage.db import Database
from storage.records import NewMessage, Room, Stored, User

PG_URL = os.environ.get("CHAT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("CHAT_REQUIRE_PG") == "1"

PG_SHOWN = make_url(PG_URL).render_as_string(hide_password=True)
# The first failure to reach PostgreSQL, so later tests skip at once instead of waiting again.
_pg_unreachable: str | None = None


@dataclass(frozen=True)
class Store:
    backend: str  # "sqlite" | "postgresql"
    url: str
    connect_args: dict | None = None

    def open(self) -> Database:
        return Database(self.url, connect_args=self.connect_args)


def _pg_unavailable(reason: str) -> None:
    global _pg_unreachable
    _pg_unreachable = reason
    message = f"PostgreSQL not reachable at {PG_SHOWN}: {reason}"
    if REQUIRE_PG:
        pytest.fail(f"{message} (CHAT_REQUIRE_PG=1)", pytrace=False)
    pytest.skip(f"{message} (set CHAT_REQUIRE_PG=1 to fail instead)")


async def _pg_admin(statement: str) -> None:
    engine = create_async_engine(PG_URL, poolclass=NullPool, connect_args={"timeout": 5})
    try:
        async with asyncio.timeout(10):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        yield Store("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
        return
    if _pg_unreachable is not None:
        _pg_unavailable(_pg_unreachable)
    schema = f"test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    try:
        await _pg_admin(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "not reachable"
        _pg_unavailable(f"{type(exc).__name__}: {exc}")
    try:
        yield Store("postgresql", PG_URL, {"server_settings": {"search_path": schema}})
    finally:
        await _pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
async def open_database(store: Store) -> AsyncIterator[Callable[[], Database]]:
    opened: list[Database] = []

    def open_() -> Database:
        database = store.open()
        opened.append(database)
        return database

    yield open_
    for database in opened:
        await database.close()


@pytest.fixture
def open_node(store: Store, open_database: Callable[[], Database]) -> Callable[[], Database]:
    """`open_database` for tests of several server nodes sharing one store: PostgreSQL only."""
    if store.backend == "sqlite":
        pytest.skip("several nodes share PostgreSQL; a SQLite file serves one node (one Database)")
    return open_database


@pytest.fixture
async def db(open_database: Callable[[], Database]) -> Database:
    database = open_database()
    await database.migrate()
    return database


@pytest.fixture
def make_user(db: Database) -> Callable[..., Awaitable[User]]:
    """`await make_user()` or `make_user("alice", bot=True, owner_id=...)`: a stored user."""
    counter = itertools.count(1)

    async def make(name: str | None = None, *, bot: bool = False, owner_id: str | None = None) -> User:
        name = name or f"user{next(counter)}"
        async with db.transaction() as conn:
            return await users.create(
                conn,
                name=name,
                display=name.title(),
                password_hash=None if bot else "argon2-hash",
                bot=bot,
                owner_id=owner_id,
            )

    return make


@pytest.fixture
def make_room(db: Database) -> Callable[..., Awaitable[Room]]:
    """`await make_room(owner, *members, name=..., join_policy=...)`: a room with these members."""

    async def make(owner: User, *members: User, name: str = "room", join_policy: str = "invite") -> Room:
        async with db.transaction() as conn:
            room = await rooms.create(conn, name=name, topic="", join_policy=join_policy, owner_id=owner.id)
            for member in members:
                await rooms.add_member(conn, room.id, member.id)
            return await rooms.get(conn, room.id)

    return make


@pytest.fixture
def send_message(db: Database) -> Callable[..., Awaitable[Stored]]:
    """`await send_message(room_id, sender, "text", cid=...)`: one message in its own transaction.

    A `sender` of None with `system_type=` stores a system message. Raises `NotMember`.
    """

    async def send(room_id: str, sender: User | None, body: str | None = "hi", **fields) -> Stored:
        async with db.transaction() as conn:
            [result] = await messages.append_batch(conn, [NewMessage(room_id, sender, body, **fields)])
        if isinstance(result, Exception):
            raise result
        return result

    return send


def pytest_terminal_summary(terminalreporter) -> None:
    if _pg_unreachable is not None:
        terminalreporter.write_sep(
            "!", f"PostgreSQL variants SKIPPED: not reachable at {PG_SHOWN}: {_pg_unreachable}", red=True
        )


@pytest.fixture
async def alice(make_user):
    return await make_user("alice")


@pytest.fixture
async def bob(make_user):
    return await make_user("bob")


@pytest.fixture
async def room(make_room, alice, bob):
    """A room of alice (owner) and bob."""
    return await make_room(alice, bob)
