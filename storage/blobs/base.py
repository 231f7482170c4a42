"""The interface every blob engine implements, and what they share."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class BlobTooLarge(Exception):
    """The stream passed the limit given to `put`; nothing of it was kept."""


@dataclass(frozen=True, slots=True)
class Blob:
    """A stored blob: its key is the SHA-256 (hex) of its bytes, so identical bytes share one."""

    key: str
    size: int


class BlobStore(Protocol):
    """Content-addressed blobs. Keys are SHA-256 hex digests of the bytes."""

    async def put(self, chunks: AsyncIterable[bytes], *, limit: int) -> Blob:
        """Store a stream, never holding it whole in memory. Past `limit` bytes: `BlobTooLarge`,
        and nothing is kept. Bytes already stored under the same digest are stored once."""
        ...

    def get(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes `start`..`end` (exclusive; None: to the end), in chunks. `KeyError` if absent."""
        ...

    async def size(self, key: str) -> int | None:
        """The blob's size, or None when there is no such blob."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove the blob (nothing happens if there is none)."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A file holding the blob on this machine, for zero-copy sending; None if the engine has none."""
        ...

    async def sweep_partial(self, older_than_ms: int) -> int:
        """Remove what uploads cut off by a crash left behind, started before `older_than_ms`."""
        ...


class Digest:
    """Counts and hashes a stream as it passes, and enforces the limit."""

    def __init__(self, limit: int):
        self.limit = limit
        self.size = 0
        self._sha = hashlib.sha256()

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise BlobTooLarge(f"more than {self.limit} bytes")
        self._sha.update(chunk)

    @property
    def key(self) -> str:
        return self._sha.hexdigest()


def check_key(key: str) -> str:
    """A key is a SHA-256 hex digest; anything else (a path, say) is refused."""
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise ValueError(f"not a blob key: {key!r}")
    return key
