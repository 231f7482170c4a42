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
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .prepared import plan_for

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
        self._inline_conn: Connection | None = None
        self._inline_reader: Engine | None = None
        self._checkpointer: asyncio.Task | None = None
        self._wal_dirty = False
        self._closed = asyncio.Event()
        if self.is_sqlite:
            self._configure_sqlite()
            database = self.url.database
            if database and database != ":memory:":  # one file both engines open
                self._inline_engine = self._make_inline_engine()
                # Overflow: a reader whose body wrongly waits costs a connection, never a deadlock.
                self._inline_reader = self._make_inline_engine(max_overflow=-1)

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

    def _make_inline_engine(self, max_overflow: int = 0) -> Engine:
        """The standard-library driver on the same file, for `inline_transaction()` and
        `inline_read()` (loop thread only)."""
        engine = create_engine(
            self.url.set(drivername="sqlite+pysqlite"), hide_parameters=True, pool_size=1,
            max_overflow=max_overflow,
            connect_args={"isolation_level": None, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):  # pragma: no cover - driver hook
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                           f"busy_timeout={_INLINE_BUSY_TIMEOUT_MS}",
                           f"wal_autocheckpoint={_INLINE_AUTOCHECKPOINT}"):
                dbapi_connection.execute(f"PRAGMA {pragma}")

        return engine

    def _inline_connection(self) -> Connection:
        """The inline engine's one connection, kept open, in SQLAlchemy's AUTOCOMMIT mode: the
        transaction is the driver's, begun and ended by `inline_transaction()` itself."""
        if self._inline_conn is None:
            assert self._inline_engine is not None
            self._inline_conn = self._inline_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._inline_conn

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
        cost more CPU than the statements: ~1,110 µs against ~360 µs inline through SQLAlchemy,
        ~110 µs with the hot statements, BEGIN and COMMIT straight on the driver
        (storage/prepared.py; `scripts/bench_commit.py`, pinned to one core); at 1,000 members,
        ~1 µs of every delivery at low rates. While it
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
            # BEGIN and COMMIT straight on the driver, on a connection kept open: SQLAlchemy's
            # checkout, transaction and commit objects were a third of a one-message commit's
            # instructions once its statements ran on the driver (callgrind).
            conn = self._inline_connection()
            driver = conn.connection.driver_connection
            try:
                driver.execute("BEGIN")
                yield _InlineConnection(conn)  # type: ignore[misc]
                driver.execute("COMMIT")
            except BaseException:
                self._inline_conn = None  # start afresh: whatever failed may have left it unusable
                with contextlib.suppress(Exception):
                    if driver.in_transaction:
                        driver.execute("ROLLBACK")
                    conn.invalidate()
                raise
            if conn.in_transaction():  # SQLAlchemy's own bookkeeping, after a statement it ran
                conn.rollback()  # nothing to undo at the driver: the transaction is committed
        self._wal_dirty = True
        if self._checkpointer is None:
            self._checkpointer = asyncio.get_running_loop().create_task(self._checkpoints(), name="wal-checkpoint")

    async def _checkpoints(self) -> None:
        """Checkpoint the WAL from aiosqlite's thread while inline commits come in (see CHECKPOINT_INTERVAL).

        Ends when `close()` sets `_closed`, never by cancellation: a checkpoint cancelled
        mid-statement leaves aiosqlite's thread answering a loop that may be gone.
        """
        while not self._closed.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closed.wait(), CHECKPOINT_INTERVAL)
            if not self._wal_dirty or self._closed.is_set():
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
    async def inline_read(self) -> AsyncIterator[AsyncConnection]:
        """A read of a few statements that find rows by key, for hot paths (a download's access
        check, a token's user). On SQLite it runs on the event loop's thread, like
        `inline_transaction()`: through aiosqlite one such read is about five hops to its thread
        and back, which cost more CPU than the statement and, with many at once, crowd its
        threads (`scripts/bench_files.py`: a 1 MiB download at 20 at once, ~2.1 ms of server
        CPU through aiosqlite against ~0.9 ms inline). The body must not wait for anything but
        its own statements, each of which reads its own snapshot (a statement marked
        `prepared()` runs straight on the driver). On PostgreSQL it is `read()`."""
        if self._inline_reader is None:
            async with self.read() as conn:
                yield conn
            return
        async with _outages_as_unavailable():
            with self._inline_reader.connect() as conn:
                yield _InlineConnection(conn)  # type: ignore[misc]

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only snapshot; never blocks on writers."""
        async with _outages_as_unavailable(), self.engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """A read whose statements all see one committed state, for answers pieced together
        from several queries (a history page folded up to the room's last seq).

        SQLite's read transaction is one snapshot already; PostgreSQL's default (READ
        COMMITTED) gives each statement its own, so this asks for REPEATABLE READ, read only
        (such a transaction never fails to serialize).
        """
        async with self.read() as conn:
            if not self.is_sqlite:
                await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
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
        self._closed.set()
        if self._checkpointer is not None:
            await self._checkpointer
            self._checkpointer = None
        if self._inline_conn is not None:
            self._inline_conn.close()
            self._inline_conn = None
        for inline in (self._inline_engine, self._inline_reader):
            if inline is not None:
                inline.dispose()
        await self.engine.dispose()


class _InlineConnection:
    """A synchronous connection behind the `execute` of `AsyncConnection`: the awaits never suspend.

    Statements marked `prepared()` run straight on the driver (storage/prepared.py says why).
    """

    __slots__ = ("_conn", "_driver", "dialect")

    def __init__(self, conn: Connection):
        self._conn = conn
        self._driver = conn.connection.driver_connection
        self.dialect = conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        plan = plan_for(statement, parameters, self.dialect)
        if plan is not None:
            return plan.run(self._driver, parameters)
        if parameters is None:
            return self._conn.execute(statement)
        return self._conn.execute(statement, parameters)


@contextlib.asynccontextmanager
async def _outages_as_unavailable() -> AsyncIterator[None]:
    """Connection-level failures become `StorageUnavailable`; bad SQL stays what it is."""
    try:
        yield
    except (OperationalError, DBAPIError, OSError, sqlite3.OperationalError) as exc:
        # sqlite3's own error: from a statement run straight on the driver (storage/prepared.py).
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
