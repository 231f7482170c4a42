"""What the storage benchmarks share: bulk inserts in chunks, and a scratch PostgreSQL database."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable

from sqlalchemy import insert
from sqlalchemy.engine import make_url

from storage.db import Database

CHUNK = 5_000  # rows per INSERT


async def insert_in_chunks(db: Database, table, rows: Iterable[dict], chunk: int = CHUNK) -> None:
    """Insert `rows` into `table`, `chunk` rows a transaction (one executemany each)."""
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == chunk:
            async with db.transaction() as conn:
                await conn.execute(insert(table), batch)
            batch = []
    if batch:
        async with db.transaction() as conn:
            await conn.execute(insert(table), batch)


@contextlib.asynccontextmanager
async def scratch_pg_database(admin: str, prefix: str) -> AsyncIterator[str]:
    """A new database on the server of `admin` (a SQLAlchemy URL), dropped afterwards: its URL."""
    import asyncpg

    admin_url = make_url(admin)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
