"""One contract, every blob engine: the filesystem and the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import os

import pytest

from storage.blobs import BlobTooLarge, DatabaseBlobStore, FilesystemBlobStore


@pytest.fixture(params=["filesystem", "database"])
async def blobs(request, store, db, tmp_path):
    if request.param == "filesystem":
        if store.backend != "sqlite":
            pytest.skip("the filesystem engine does not use the database: its run beside SQLite covers it")
        return FilesystemBlobStore(tmp_path / "files")
    return DatabaseBlobStore(db, chunk_size=1000)  # small chunks: ranges cross chunk borders


async def stream(data: bytes, piece: int = 333):
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


async def read(blobs, key, start=0, end=None) -> bytes:
    return b"".join([chunk async for chunk in blobs.get(key, start, end)])


async def test_put_get_exists_delete(blobs):
    data = os.urandom(5000)
    blob = await blobs.put(stream(data), limit=10_000)
    assert blob.key == hashlib.sha256(data).hexdigest() and blob.size == 5000
    assert await blobs.exists(blob.key) and await blobs.size(blob.key) == 5000
    assert await read(blobs, blob.key) == data
    await blobs.delete(blob.key)
    assert not await blobs.exists(blob.key) and await blobs.size(blob.key) is None
    with pytest.raises(KeyError):
        await read(blobs, blob.key)
    await blobs.delete(blob.key)  # deleting twice is no error


async def test_ranges(blobs):
    data = os.urandom(4321)
    key = (await blobs.put(stream(data), limit=10_000)).key
    for start, end in [(0, 1), (999, 1001), (1000, 2000), (1500, None), (4320, 4321), (0, 4321), (10, 10)]:
        assert await read(blobs, key, start, end) == data[start:end], (start, end)


async def test_identical_bytes_are_stored_once(blobs):
    data = b"same bytes " * 300
    first = await blobs.put(stream(data), limit=10_000)
    second = await blobs.put(stream(data, piece=7), limit=10_000)
    assert first == second
    assert await read(blobs, first.key) == data
    await blobs.delete(first.key)
    assert not await blobs.exists(first.key)


async def test_empty_blob(blobs):
    blob = await blobs.put(stream(b""), limit=10)
    assert blob.size == 0 and await blobs.exists(blob.key) and await read(blobs, blob.key) == b""


async def test_past_the_limit_nothing_is_kept(blobs, db, tmp_path):
    data = os.urandom(3001)
    with pytest.raises(BlobTooLarge):
        await blobs.put(stream(data), limit=3000)
    assert not await blobs.exists(hashlib.sha256(data).hexdigest())
    assert await _leftovers(blobs, db) == 0
    ok = await blobs.put(stream(data[:3000]), limit=3000)  # exactly at the limit is fine
    assert ok.size == 3000


async def test_an_interrupted_stream_leaves_nothing(blobs, db):
    async def broken():
        yield b"x" * 2500
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await blobs.put(broken(), limit=10_000)
    assert await _leftovers(blobs, db) == 0


async def test_sweep_partial_removes_only_stale_temporaries(blobs, db):
    """A crash mid-upload leaves a temporary; the sweep removes those older than its cut-off."""
    if isinstance(blobs, FilesystemBlobStore):
        (blobs.root / "tmp" / "1000-dead").write_bytes(b"partial")
    else:
        await blobs._write_chunk("tmp-1000-dead", 0, b"partial")
    kept = await blobs.put(stream(b"complete"), limit=100)
    assert await _leftovers(blobs, db) == 1
    assert await blobs.sweep_partial(older_than_ms=2000) == 1
    assert await _leftovers(blobs, db) == 0
    assert await blobs.exists(kept.key)


def test_keys_are_digests_not_paths(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    with pytest.raises(ValueError):
        store.local_path("../../etc/passwd")


async def _leftovers(blobs, db) -> int:
    """Temporaries left by uploads that did not complete."""
    if isinstance(blobs, FilesystemBlobStore):
        return len(list((blobs.root / "tmp").iterdir()))
    from sqlalchemy import func, select

    from storage.models import BlobChunk

    async with db.read() as conn:
        return (await conn.execute(
            select(func.count(func.distinct(BlobChunk.key))).where(BlobChunk.key.like("tmp-%"))
        )).scalar()
