"""The garbage sweep never deletes the bytes of an upload that is storing the same bytes: blobs
are content-addressed, so an upload identical to a file the sweep is removing lands on that
file's blob, and the sweep must not delete it between the upload storing it and adding the row
that uses it (chatserver/services/files.py, storage/locks.py). Both blob engines.

PostgreSQL only, for a reason the test needs: it holds the upload between those two steps with
a row lock (its new row's owner), which stops the upload and nothing the sweep does, and sees
who waits for what in `pg_stat_activity`. SQLite runs every write of its one process in turn,
so there the upload cannot be held without holding the sweep too.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from sqlalchemy import func, select, text, update

from chatserver.bus.memory import MemoryBus
from chatserver.config import Settings
from chatserver.services.files import UNATTACHED_TTL_MS, FileService
from storage import users as user_store
from storage.blobs import DatabaseBlobStore, FilesystemBlobStore
from storage.db import Database, now_ms
from storage.models import File as FileRow, User as UserRow
from tests.conftest import drop_pg_database, fresh_pg_database, pg_available, require

DEADLINE = 10.0  # seconds for each step to reach its waiting point (it takes milliseconds)


@pytest.fixture(params=["filesystem", "database"])
async def service(request, tmp_path):
    require(pg_available(), "CHAT_REQUIRE_PG")
    url = await fresh_pg_database()
    db = Database(url)
    await db.migrate()
    blobs = FilesystemBlobStore(tmp_path / "files") if request.param == "filesystem" else DatabaseBlobStore(db)
    files = FileService(db, blobs, Settings(), MemoryBus())
    yield files, db
    files.close()
    await db.close()
    await drop_pg_database(url)


async def one(data: bytes):
    yield data


async def waiting(db: Database, *, advisory: bool) -> int:
    """Sessions of this database waiting for a lock: advisory ones, or any other kind."""
    async with db.read() as conn:
        return (await conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND (wait_event = 'advisory') = :advisory"),
            {"advisory": advisory})).scalar()


async def until(check, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await check():
        assert time.monotonic() < deadline, f"never {what}"
        await asyncio.sleep(0.01)


async def test_the_sweep_never_deletes_the_bytes_an_identical_upload_is_storing(service):
    files, db = service
    async with db.transaction() as conn:
        alice = await user_store.create(conn, name="alice", display="Alice", password_hash=None)
        bob = await user_store.create(conn, name="bob", display="Bob", password_hash=None)
    data = os.urandom(300_000)
    old = await files.upload(alice, one(data), name="old.bin", declared_type=None)
    async with db.transaction() as conn:  # uploaded two days ago and never attached: garbage
        await conn.execute(update(FileRow).where(FileRow.id == old.id).values(created=now_ms() - 2 * UNATTACHED_TTL_MS))

    async with db.transaction() as hold:
        # Bob's row cannot be added while his user row is locked (its foreign key waits): his
        # upload stores the bytes, which are the old file's blob, and waits to add its row.
        await hold.execute(select(UserRow.id).where(UserRow.id == bob.id).with_for_update())
        upload = asyncio.create_task(files.upload(bob, one(data), name="new.bin", declared_type=None))
        await until(lambda: waiting(db, advisory=False), "did the upload wait to add its row")
        sweep = asyncio.create_task(files.sweep())

        async def old_row_gone_and_blob_step_reached() -> bool:
            async with db.read() as conn:
                rows = (await conn.execute(select(func.count()).where(FileRow.id == old.id))).scalar()
            return rows == 0 and (sweep.done() or await waiting(db, advisory=True) > 0)

        # The sweep removes the old row, then comes to its blob: it either waits for the upload
        # (the blob's lock) or, were nothing ordering the two, deletes the bytes now.
        await until(old_row_gone_and_blob_step_reached, "did the sweep reach the old file's blob")
    new = await asyncio.wait_for(upload, DEADLINE)
    assert await asyncio.wait_for(sweep, DEADLINE) == 1
    assert new.sha256 == old.sha256
    stored = b"".join([chunk async for chunk in files.blobs.get(new.sha256)])
    assert stored == data
    assert await files.sweep(now=now_ms() + 2 * UNATTACHED_TTL_MS) == 1  # later, bob's too: its bytes go with it
    assert not await files.blobs.exists(new.sha256)
