"""Blobs as files under one directory: `<root>/ab/cd/<sha256>`, written to `<root>/tmp` first.

A blob appears under its name only complete and synced (written, fsynced, renamed), so a crash
never leaves a partial blob where a reader could find it; the sweep removes stale temp files.
Disk writes run in the default thread pool, 256 KiB at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

from .base import Blob, Digest, check_key

WRITE_SIZE = 256 * 1024  # bytes gathered before one write in the thread pool
READ_SIZE = 256 * 1024


class FilesystemBlobStore:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key[2:4] / key

    async def put(self, chunks: AsyncIterable[bytes], *, limit: int) -> Blob:
        loop = asyncio.get_running_loop()
        digest = Digest(limit)
        tmp = self._tmp / f"{int(time.time() * 1000)}-{secrets.token_hex(8)}"
        handle = await loop.run_in_executor(None, open, tmp, "wb")
        try:
            pending = bytearray()
            async for chunk in chunks:
                digest.add(chunk)
                pending += chunk
                if len(pending) >= WRITE_SIZE:
                    await loop.run_in_executor(None, handle.write, bytes(pending))
                    pending.clear()
            if pending:
                await loop.run_in_executor(None, handle.write, bytes(pending))
            await loop.run_in_executor(None, _sync_and_close, handle)
            await loop.run_in_executor(None, _publish, tmp, self._path(digest.key))
        except BaseException:
            handle.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return Blob(digest.key, digest.size)

    async def get(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        path = self._path(key)
        try:
            handle = await loop.run_in_executor(None, open, path, "rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        try:
            handle.seek(start)
            left = None if end is None else max(0, end - start)
            while left is None or left > 0:
                size = READ_SIZE if left is None else min(READ_SIZE, left)
                chunk = await loop.run_in_executor(None, handle.read, size)
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    async def exists(self, key: str) -> bool:
        return self._path(key).exists()

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    async def sweep_partial(self, older_than_ms: int) -> int:
        removed = 0
        for tmp in list(self._tmp.iterdir()):
            started = tmp.name.partition("-")[0]
            if started.isdigit() and int(started) < older_than_ms:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                    removed += 1
        return removed


def _sync_and_close(handle) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def _publish(tmp: Path, final: Path) -> None:
    """Move a complete temp file to its name; identical bytes already there are kept instead."""
    if final.exists():
        tmp.unlink()
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
