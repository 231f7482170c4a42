"""Use cases of files (docs/protocol.md §12.10): upload, who may download, avatars, the garbage sweep.

An upload streams from the request into the blob store (never whole in memory), cut at the
size limit or at what is left of the uploader's quota; its type is sniffed from its first bytes.
An image is measured and thumbnailed once, in a worker thread; an identical earlier upload's
measurements and thumbnail serve again. A refused upload (413, 422) keeps nothing: no blob that
no file uses, no row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from storage import files as file_store
from storage import posts as post_store
from storage import users as user_store
from storage.blobs import BlobStore, BlobTooLarge
from storage.db import Database, now_ms
from storage.locks import NamedLocks
from storage.models import Room as RoomRow, User as UserRow
from storage.records import FileMeta, User

from ..bus.base import Bus
from ..bus.events import UserChanged
from ..config import Settings
from ..errors import files_refused, forbidden, invalid, not_found, too_large, unavailable
from ..media import images, sniff
from .posts import may_read

log = logging.getLogger(__name__)

UNATTACHED_TTL_MS = 24 * 3600 * 1000  # an upload never attached within a day is garbage
PARTIAL_TTL_MS = 3600 * 1000  # what a crashed upload left behind, after an hour
MAX_NAME = 255
IMAGE_WORKERS = 2


class FileService:
    def __init__(self, db: Database, blobs: BlobStore, settings: Settings, bus: Bus):
        self._db = db
        self._bus = bus
        self.blobs = blobs
        self._settings = settings
        self._pool = ThreadPoolExecutor(max_workers=IMAGE_WORKERS, thread_name_prefix="images")
        self._locks = NamedLocks(db)

    # ------------------------------------------------------------------ upload

    async def upload(
        self, user: User, chunks: AsyncIterable[bytes], *, name: str | None, declared_type: str | None,
        length: int | None = None,
    ) -> FileMeta:
        """Store an upload and its metadata. 413 past the size limit or the quota, 422 for a bad
        name or an image Pillow refuses; nothing is kept then."""
        name = _clean_name(name)
        async with self._db.read() as db:
            used = await file_store.usage(db, user.id)
        room = self._settings.file_quota - used
        if room <= 0:
            raise too_large(f"your files fill your quota of {self._settings.file_quota} bytes")
        limit = min(self._settings.max_file, room)
        if length is not None and length > limit:
            raise self._too_large(limit)
        head = bytearray()

        async def watched() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                if len(head) < sniff.HEAD:
                    head.extend(chunk[: sniff.HEAD - len(head)])
                yield chunk

        try:
            blob = await self.blobs.put(watched(), limit=limit)
        except BlobTooLarge:
            raise self._too_large(limit) from None
        content_type = sniff.sniff(bytes(head), declared_type)
        kept = [blob.key]
        try:
            width = height = thumb = None
            if content_type in sniff.IMAGES:
                width, height, thumb = await self._measure(blob.key)
                kept.append(thumb)
            # The sweep may be deleting an identical file's bytes, unused until this row: the
            # blobs' locks order the two, and under them the bytes are either still there (and
            # this row keeps them) or gone already (and this upload must be sent again).
            async with self._locks.hold(*map(_blob_lock, kept)):
                for key in kept:
                    if not await self.blobs.exists(key):
                        raise unavailable("an identical file was being removed as you uploaded; upload it again")
                async with self._db.transaction() as db:
                    if await file_store.usage(db, user.id) + blob.size > self._settings.file_quota:
                        raise too_large(f"your files fill your quota of {self._settings.file_quota} bytes")
                    return await file_store.create(
                        db, owner_id=user.id, name=name, size=blob.size, content_type=content_type,
                        sha256=blob.key, width=width, height=height, thumb=thumb,
                    )
        except BaseException:
            await self._drop_unused(kept)
            raise

    def _too_large(self, limit: int):
        if limit < self._settings.max_file:
            return too_large(f"this file would pass your quota of {self._settings.file_quota} bytes")
        return too_large(f"a file may have at most {self._settings.max_file} bytes")

    async def _measure(self, key: str) -> tuple[int, int, str]:
        """Width, height and the thumbnail's blob key: from an identical earlier upload, or Pillow."""
        async with self._db.read() as db:
            twin = await file_store.image_twin(db, key)
        if twin is not None and twin.thumb and await self.blobs.exists(twin.thumb):
            return twin.width, twin.height, twin.thumb
        async with self._local_copy(key) as path:
            loop = asyncio.get_running_loop()
            try:
                info = await loop.run_in_executor(self._pool, images.describe, path)
            except images.ImageRefused as exc:
                raise invalid(f"file: {exc}") from None
        thumb = await self.blobs.put(_one(info.thumbnail), limit=len(info.thumbnail))
        return info.width, info.height, thumb.key

    @contextlib.asynccontextmanager
    async def _local_copy(self, key: str) -> AsyncIterator[Path]:
        """The blob as a file here: the store's own when it has one, else a temporary copy."""
        path = self.blobs.local_path(key)
        if path is not None:
            yield path
            return
        loop = asyncio.get_running_loop()
        fd, name = tempfile.mkstemp(prefix="chat-image-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in self.blobs.get(key):
                    await loop.run_in_executor(None, out.write, chunk)
            yield Path(name)
        finally:
            os.unlink(name)

    # ------------------------------------------------------------------ reading

    async def readable(self, user: User, file_id: str) -> FileMeta:
        """The file if the user may read it (docs/protocol.md §12.10), checked on every request."""
        async with self._db.inline_read() as db:
            found = await file_store.get_for_reader(db, file_id, user.id)
        if found is None:
            raise not_found("file")
        meta, allowed = found
        if allowed:
            return meta
        async with self._db.read() as db:
            for post_id in await file_store.posts_carrying(db, file_id):
                post = await post_store.get(db, post_id)
                if post is not None and await may_read(db, user, post):
                    return meta
        raise forbidden("this file is shared with its rooms and posts only")

    async def own(self, db, user: User, file_ids: list[str]) -> list[FileMeta]:
        """The user's own files, in the caller's transaction (for posts and avatars)."""
        try:
            return await file_store.own_files(db, user.id, file_ids)
        except file_store.FilesRefused as exc:
            raise files_refused(exc) from None

    # ------------------------------------------------------------------ avatars

    async def set_user_avatar(self, user: User, file_id: str | None) -> User:
        """Set (or clear) the user's avatar; the user as they are now, which every node's live
        connections of theirs take (their next messages carry the new avatar)."""
        async with self._db.transaction() as db:
            await self.check_avatar(db, user, file_id)
            await file_store.set_avatar(db, UserRow, user.id, file_id)
            user = await user_store.get(db, user.id)
        self._bus.publish_control(UserChanged(user=user))
        return user

    async def check_avatar(self, db, user: User, file_id: str | None) -> None:
        """An avatar is one of the user's own images (or null)."""
        if file_id is None:
            return
        (meta,) = await self.own(db, user, [file_id])
        if meta.width is None:
            raise invalid("avatar: must be an image")

    async def set_room_avatar(self, db, room_id: str, file_id: str | None) -> None:
        await file_store.set_avatar(db, RoomRow, room_id, file_id)

    # ------------------------------------------------------------------ garbage

    async def sweep(self, now: int | None = None) -> int:
        """Remove files nothing uses (see `storage.files.garbage`) and blobs no file uses; how many files."""
        now = now_ms() if now is None else now
        removed = 0
        while True:
            async with self._db.read() as db:
                candidates = await file_store.garbage(db, unattached_before=now - UNATTACHED_TTL_MS)
            if not candidates:
                break
            async with self._db.transaction() as db:
                deleted = set(await file_store.delete_garbage(
                    db, [f.id for f in candidates], unattached_before=now - UNATTACHED_TTL_MS))
            gone = [f for f in candidates if f.id in deleted]
            for f in gone:
                await self._drop_unused([f.sha256, f.thumb])
            removed += len(gone)
            if len(deleted) < len(candidates):
                break  # some were attached meanwhile: the next sweep looks again
        await self.blobs.sweep_partial(now - PARTIAL_TTL_MS)
        return removed

    async def _drop_unused(self, keys: list[str | None]) -> None:
        """Delete those of one file's blobs (its bytes, its thumbnail) that no file uses, holding
        their locks: an upload of the same bytes is then not between storing them and adding
        the row that uses them (see `upload`)."""
        keys = [key for key in dict.fromkeys(keys) if key]
        async with self._locks.hold(*map(_blob_lock, keys)):
            async with self._db.read() as db:
                used = await file_store.referenced(db, keys)
            for key in keys:
                if key not in used:
                    await self.blobs.delete(key)

    async def sweeper(self) -> None:
        """Sweep every `file_sweep` seconds until cancelled (a task of the app's lifetime)."""
        while True:
            await asyncio.sleep(self._settings.file_sweep)
            try:
                removed = await self.sweep()
                if removed:
                    log.info("file sweep removed %d files", removed)
            except Exception:  # an outage or a bug: the next round tries again
                log.exception("file sweep failed")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _blob_lock(key: str) -> str:
    return f"blob:{key}"


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _clean_name(name: str | None) -> str:
    """The file name without any path, 1-255 characters; `file` when none is given."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if "\x00" in name or any(ord(c) < 32 for c in name):
        raise invalid("name: must not contain control characters")
    if len(name) > MAX_NAME:
        raise invalid(f"name: at most {MAX_NAME} characters")
    return name or "file"
