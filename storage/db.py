"""The database handle: engine, transactions, migrations, health.

SQLite (the embedded default) allows one writer at a time, so on SQLite
`transaction()` serializes writers of this process with a lock and runs in
WAL mode with `synchronous=NORMAL`: a committed transaction survives the
process being killed (the WAL is in the OS's hands), which is what an ack
promises. PostgreSQL needs no lock: row locks order concurrent writers.

The message writer's group commit takes `inline_transaction()`: on SQLite it
runs on the event loop's own thread (see there why); everything else goes
through aiosqlite's thread, so a long read never blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 7_345_001  # advisory lock id: one node migrates at a time

# The inline SQLite connection never checkpoints the WAL itself (a checkpoint writes and fsyncs
# the database file: milliseconds the loop would stand still); a task does it from a thread
# this often while inline commits come in. The connection's own auto-checkpoint stays as a
# backstop, at a size the task keeps the WAL far below.
CHECKPOINT_INTERVAL = 1.0  # seconds
_INLINE_AUTOCHECKPOINT = 20_000  # pages (~80 MiB)
# How long an inline write waits for another process's lock (an external `sqlite3` shell, a
# backup) before failing as unavailable: the whole loop waits with it, so not long.
_INLINE_BUSY_TIMEOUT_MS = 200


class StorageUnavailable(RuntimeError):
    """The database did not answer; the caller should report `unavailable`."""


def now_ms() -> int:
    """Server time as integer milliseconds since the epoch (docs/protocol.md §2 `ts`)."""
    return time.time_ns() // 1_000_000


class Database:
    """One engine and the rules for using it. Create with `Database(url)`, end with `close()`."""

    def __init__(self, url: str, *, echo: bool = False, connect_args: dict | None = None):
        """`connect_args` go to the driver (e.g. asyncpg `server_settings`)."""
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        # hide_parameters: SQL errors in logs never carry message texts or token hashes.
        kwargs: dict = {"echo": echo, "hide_parameters": True}
        if connect_args:
            kwargs["connect_args"] = connect_args
        if self.is_sqlite:
            self._ensure_sqlite_dir()
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True, pool_timeout=5)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._inline_engine: Engine | None = None
        self._checkpointer: asyncio.Task | None = None
        self._wal_dirty = False
        if self.is_sqlite:
            self._configure_sqlite()
            database = self.url.database
            if database and database != ":memory:":  # one file both engines open
                self._inline_engine = self._make_inline_engine()

    def _ensure_sqlite_dir(self) -> None:
        database = self.url.database
        if database and database != ":memory:":
            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)

    def _configure_sqlite(self) -> None:
        sync_engine = self.engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection, _record):  # pragma: no cover - driver hook
            # Let SQLAlchemy, not the driver, decide when transactions begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(conn):  # pragma: no cover - driver hook
            conn.exec_driver_sql("BEGIN")

    def _make_inline_engine(self) -> Engine:
        """The standard-library driver on the same file, for `inline_transaction()` (loop thread only)."""
        engine = create_engine(
            self.url.set(drivername="sqlite+pysqlite"), hide_parameters=True, pool_size=1, max_overflow=0,
            connect_args={"isolation_level": None, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):  # pragma: no cover - driver hook
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                           f"busy_timeout={_INLINE_BUSY_TIMEOUT_MS}",
                           f"wal_autocheckpoint={_INLINE_AUTOCHECKPOINT}"):
                dbapi_connection.execute(f"PRAGMA {pragma}")

        @event.listens_for(engine, "begin")
        def _on_begin(conn):  # pragma: no cover - driver hook
            # Straight to the driver: through `exec_driver_sql` this BEGIN cost 6 % of the
            # instructions of a one-message commit (callgrind, scripts/bench_commit.py's path).
            conn.connection.driver_connection.execute("BEGIN")

        return engine

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction: commits on success, rolls back on error.

        Raises `StorageUnavailable` when the database cannot be reached.
        """
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, _outages_as_unavailable(), self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def inline_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction for short, frequent writes: the message writer's group commit.

        On SQLite it runs on the event loop's thread through the standard-library driver. Through
        aiosqlite, one message's commit is seven statements and about 25 hops to its thread and
        back (cursor, execute, fetch, close each a hop); the hops and SQLAlchemy's async adapter
        cost more CPU than the statements: ~960 µs against ~390 µs inline
        (`scripts/bench_commit.py`), which at 1,000 members is ~0.6 µs of every delivery. While it
        runs the loop stands still, so it is only for writes of a few milliseconds at most (a
        batch is at most the writer's `MAX_BATCH` rows); reads and everything else use
        `transaction()` / `read()`. The connection it yields offers `execute` and `dialect`, the
        part of `AsyncConnection` the message path uses (anything else fails loudly in the SQLite
        tests). On PostgreSQL (asyncpg already runs on the loop) it is `transaction()`.
        """
        if self._inline_engine is None:
            async with self.transaction() as conn:
                yield conn
            return
        async with self._write_lock, _outages_as_unavailable():
            with self._inline_engine.begin() as conn:
                yield _InlineConnection(conn)  # type: ignore[misc]
        self._wal_dirty = True
        if self._checkpointer is None:
            self._checkpointer = asyncio.get_running_loop().create_task(self._checkpoints(), name="wal-checkpoint")

    async def _checkpoints(self) -> None:
        """Checkpoint the WAL from aiosqlite's thread while inline commits come in (see CHECKPOINT_INTERVAL)."""
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL)
            if not self._wal_dirty:
                continue
            self._wal_dirty = False
            try:
                async with self.engine.connect() as conn:
                    # PASSIVE: copies what it can without waiting for readers or the writer.
                    await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception as exc:  # the backstop auto-checkpoint still bounds the WAL
                self._wal_dirty = True
                log.warning("WAL checkpoint failed: %s", exc)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only snapshot; never blocks on writers."""
        async with _outages_as_unavailable(), self.engine.connect() as conn:
            yield conn

    async def ping(self) -> bool:
        """True when the database answers a trivial query within 2 s."""
        try:
            async with asyncio.timeout(2):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (safe with many nodes)."""
        from alembic import command
        from alembic.config import Config

        def upgrade(sync_conn) -> None:
            if self.dialect == "postgresql":
                sync_conn.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = sync_conn
            command.upgrade(cfg, "head")

        lock = self._write_lock or contextlib.nullcontext()
        async with lock:
            async with self.engine.begin() as conn:
                await conn.run_sync(upgrade)

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        if self._inline_engine is not None:
            self._inline_engine.dispose()
        await self.engine.dispose()


class _InlineConnection:
    """A synchronous connection behind the `execute` of `AsyncConnection`: the awaits never suspend."""

    __slots__ = ("_conn", "dialect")

    def __init__(self, conn: Connection):
        self._conn = conn
        self.dialect = conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if parameters is None:
            return self._conn.execute(statement)
        return self._conn.execute(statement, parameters)


@contextlib.asynccontextmanager
async def _outages_as_unavailable() -> AsyncIterator[None]:
    """Connection-level failures become `StorageUnavailable`; bad SQL stays what it is."""
    try:
        yield
    except (OperationalError, DBAPIError, OSError) as exc:
        if _is_unavailable(exc):
            raise StorageUnavailable(str(exc)) from exc
        raise


def _is_unavailable(exc: BaseException) -> bool:
    """Connection-level failures (server gone, refused) as opposed to bad SQL."""
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    message = str(exc).lower()
    return any(
        needle in message
        for needle in (
            "connection refused",
            "connection was closed",
            "connection is closed",
            "connect call failed",
            "terminating connection",
            "server closed the connection",
            "cannot connect",
            "timeout",
            "the database system is",
            "database is locked",
            "connectionreset",
            "broken pipe",
        )
    )
