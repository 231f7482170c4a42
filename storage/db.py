"""The database handle: engine, transactions, migrations, health.

SQLite (the embedded default) allows one writer at a time, so on SQLite
`transaction()` serializes writers of this process with a lock and runs in
WAL mode with `synchronous=NORMAL`: a committed transaction survives the
process being killed (the WAL is in the OS's hands), which is what an ack
promises. PostgreSQL needs no lock: row locks order concurrent writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 7_345_001  # advisory lock id: one node migrates at a time


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
        if self.is_sqlite:
            self._configure_sqlite()

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

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction: commits on success, rolls back on error.

        Raises `StorageUnavailable` when the database cannot be reached.
        """
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, _outages_as_unavailable(), self.engine.begin() as conn:
            yield conn

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
        await self.engine.dispose()


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
