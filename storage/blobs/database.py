"""Blobs in the database: a `blobs` row per blob and its bytes in `blob_chunks` of CHUNK_SIZE.

An upload writes its chunks under a temporary key (`tmp-<ms>-<random>`), one short transaction
per chunk (a slow client never holds a transaction or, on SQLite, the write lock); at the end
one transaction renames them to the digest and adds the `blobs` row, or drops them when the
digest is already stored. So readers only ever see complete blobs, and every node that shares
the database reads what any node wrote. A range read fetches one chunk per query.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from ..db import Database, now_ms
from ..models import Blob as BlobRow, BlobChunk
from .base import Blob, Digest, check_key

CHUNK_SIZE = 512 * 1024
_TMP = "tmp-"
_INSERT_CHUNK = insert(BlobChunk.__table__)
_ASYNC_COMMIT = text("SET LOCAL synchronous_commit = off")
_CHUNK = select(BlobChunk.data).where(BlobChunk.key == bindparam("key"), BlobChunk.n == bindparam("n"))


class DatabaseBlobStore:
    def __init__(self, db: Database, chunk_size: int = CHUNK_SIZE):
        self._db = db
        self._chunk_size = chunk_size

    async def put(self, chunks: AsyncIterable[bytes], *, limit: int) -> Blob:
        digest = Digest(limit)
        tmp = f"{_TMP}{int(time.time() * 1000)}-{secrets.token_hex(8)}"
        n = 0
        try:
            pending = bytearray()
            async for chunk in chunks:
                digest.add(chunk)
                pending += chunk
                while len(pending) >= self._chunk_size:
                    await self._write_chunk(tmp, n, bytes(pending[: self._chunk_size]))
                    del pending[: self._chunk_size]
                    n += 1
            if pending or n == 0:
                await self._write_chunk(tmp, n, bytes(pending))
            await self._publish(tmp, Blob(digest.key, digest.size))
        except BaseException:
            await self._drop_chunks(tmp)
            raise
        return Blob(digest.key, digest.size)

    async def _write_chunk(self, key: str, n: int, data: bytes) -> None:
        async with self._db.transaction() as conn:
            if not self._db.is_sqlite:
                # A temporary chunk needs no flush of its own: the commit that publishes the blob
                # is synchronous, and flushing the log up to it flushes every chunk before it.
                await conn.execute(_ASYNC_COMMIT)
            await conn.execute(_INSERT_CHUNK, {"key": key, "n": n, "data": data})

    async def _publish(self, tmp: str, blob: Blob) -> None:
        try:
            async with self._db.transaction() as conn:
                if (await conn.execute(select(BlobRow.key).where(BlobRow.key == blob.key))).first():
                    await conn.execute(delete(BlobChunk).where(BlobChunk.key == tmp))
                    return
                await conn.execute(update(BlobChunk).where(BlobChunk.key == tmp).values(key=blob.key))
                await conn.execute(
                    insert(BlobRow).values(
                        key=blob.key, size=blob.size, chunk_size=self._chunk_size, created=now_ms()
                    )
                )
        except IntegrityError:  # the same bytes were published by a concurrent upload just now
            await self._drop_chunks(tmp)

    async def _drop_chunks(self, key: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(delete(BlobChunk).where(BlobChunk.key == key))

    async def _meta(self, key: str) -> tuple[int, int] | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(BlobRow.size, BlobRow.chunk_size).where(BlobRow.key == check_key(key)))
            ).first()
        return (row.size, row.chunk_size) if row else None

    async def get(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        meta = await self._meta(key)
        if meta is None:
            raise KeyError(key)
        size, chunk_size = meta
        end = size if end is None else min(end, size)
        position = start
        while position < end:
            n = position // chunk_size
            async with self._db.read() as conn:
                data = (await conn.execute(_CHUNK, {"key": key, "n": n})).scalar()
            if data is None:  # deleted while being read
                return
            offset = position - n * chunk_size
            piece = bytes(data[offset : min(len(data), end - n * chunk_size)])
            if not piece:
                return
            position += len(piece)
            yield piece

    async def size(self, key: str) -> int | None:
        meta = await self._meta(key)
        return meta[0] if meta else None

    async def exists(self, key: str) -> bool:
        return await self._meta(key) is not None

    async def delete(self, key: str) -> None:
        check_key(key)
        async with self._db.transaction() as conn:
            await conn.execute(delete(BlobRow).where(BlobRow.key == key))
            await conn.execute(delete(BlobChunk).where(BlobChunk.key == key))

    def local_path(self, key: str) -> Path | None:
        return None

    async def sweep_partial(self, older_than_ms: int) -> int:
        async with self._db.read() as conn:
            keys = (
                await conn.execute(select(BlobChunk.key).where(BlobChunk.key.like(f"{_TMP}%")).distinct())
            ).scalars().all()
        stale = [k for k in keys if k[len(_TMP):].partition("-")[0].isdigit()
                 and int(k[len(_TMP):].partition("-")[0]) < older_than_ms]
        for key in stale:
            await self._drop_chunks(key)
        return len(stale)
