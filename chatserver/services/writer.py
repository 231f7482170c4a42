"""Group commit: many messages stored per transaction, each acked only once durable.

Senders `submit()` with two callbacks. One writer task takes everything queued,
stores it in one transaction (storage assigns seqs there), then, in order,
lets each sender write its ack (`on_stored`, synchronously, so the ack is
queued before the message event) and publishes the new messages (`Announcer.publish`).
When idle, a message is committed at once; under load (messages arriving
while a commit runs), batches grow to what arrives until `COMMIT_INTERVAL`
(10 ms) after the previous commit started: a commit costs milliseconds of CPU
however few messages it holds, and the messages of one batch reach each
member in one write, so pacing bounds both costs per message, at a latency
of at most that interval (see docs/performance.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from storage import messages as message_store
from storage.db import Database, StorageUnavailable
from storage.files import FilesRefused
from storage.messages import NotMember
from storage.records import NewMessage, Stored
from storage.timeline import Refused

from ..announcements import Announcer
from ..bus.base import Bus
from ..errors import ServiceError, files_refused, forbidden, invalid, unavailable
from ..metrics import Metrics

log = logging.getLogger(__name__)

# Under overload a commit takes everything queued up to this: a commit's round trips cost the
# same however many rows it carries, so bigger batches are what keeps up (at 15,000 messages a
# second offered, 500 held PostgreSQL to ~8,900 a second and SQLite to ~8,400; 2,000 gives
# ~10,000 and ~11,500: see docs/performance.md).
MAX_BATCH = 2000
COMMIT_INTERVAL = 0.010  # seconds: under load, commits start at most this often (see `_run`)


@dataclass(slots=True)
class _Pending:
    message: NewMessage
    on_stored: Callable[[Stored], None]
    on_failed: Callable[[BaseException], None]


class MessageWriter:
    """The node's single writer of messages. Start with `start()`, stop with `close()`."""

    def __init__(
        self, db: Database, bus: Bus, announcer: Announcer, metrics: Metrics, *,
        commit_interval: float = COMMIT_INTERVAL,
    ):
        self._db = db
        self._bus = bus
        self._announcer = announcer
        self._metrics = metrics
        self._queue: list[_Pending] = []
        self._committing = False
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False
        self._commit_interval = commit_interval
        self.active_at = 0.0  # loop time the last commit ended: how long the writer has been idle
        self.stored = 0  # messages stored since start (new rows; the search indexer's tally)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="message-writer")

    def submit(
        self,
        message: NewMessage,
        on_stored: Callable[[Stored], None],
        on_failed: Callable[[BaseException], None],
    ) -> None:
        """Queue a message without waiting: exactly one of the callbacks runs after the commit.

        Messages are stored in the order they are submitted, so one sender's
        messages get increasing seqs.
        """
        if self._closing:
            on_failed(unavailable("the server is shutting down"))
            return
        if not self._bus.can_publish(message.room_id):
            # Other nodes could not hear of it; the sender retries with the same cid.
            on_failed(unavailable("the message bus is unavailable; retry shortly"))
            return
        edited = message.update.get("text") if message.update is not None else None
        for field, value in (("text", message.text or edited), ("cid", message.cid)):
            if value and "\x00" in value:
                # PostgreSQL refuses NUL in text, and SQLite's JSON functions cut strings at it: one
                # such message would fail the whole batch it shares with others.
                on_failed(invalid(f"{field}: must not contain NUL characters"))
                return
        self._queue.append(_Pending(message, on_stored, on_failed))
        self._wakeup.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                started = loop.time()
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                await self._commit(batch)
                # Messages came in during that commit: under such load the next batch gathers
                # until `commit_interval` after this one started. A commit costs milliseconds of
                # CPU however few messages it holds, and one batch's messages reach each member
                # in one write. A sender that waits for each ack (nothing came in meanwhile) is
                # never held back.
                if self._queue and len(self._queue) < MAX_BATCH and not self._closing:
                    wait = started + self._commit_interval - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
            if self._closing:
                return

    @property
    def idle(self) -> bool:
        """Nothing queued and no commit under way."""
        return not self._queue and not self._committing

    async def _commit(self, batch: list[_Pending]) -> None:
        self._committing = True
        try:
            await self._store(batch)
        finally:
            self._committing = False
            self.active_at = asyncio.get_running_loop().time()

    async def _store(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            async with self._db.inline_transaction() as db:
                results = await message_store.append_batch(db, [p.message for p in batch])
        except StorageUnavailable:
            for pending in batch:
                pending.on_failed(unavailable())
            return
        except Exception as exc:  # a bug, not an outage: never a false ack
            log.exception("storing a batch of %d messages failed", len(batch))
            for pending in batch:
                pending.on_failed(exc)
            return
        self._metrics.storage_seconds.observe(time.perf_counter() - started)
        self._metrics.commit_batch.observe(len(batch))
        fresh: list[Stored] = []
        for pending, result in zip(batch, results):
            if isinstance(result, NotMember):
                pending.on_failed(forbidden("you are not a member of this room"))
                continue
            if isinstance(result, FilesRefused):
                pending.on_failed(files_refused(result))
                continue
            if isinstance(result, Refused):  # an update, reply or mention the rules refuse
                pending.on_failed(ServiceError(result.code, result.message))
                continue
            pending.on_stored(result)  # a `Stored`, or `Unchanged` for an update that changes nothing
            if isinstance(result, Stored) and not result.dup:
                fresh.append(result)
        self._metrics.messages_in.inc(len(fresh))
        self.stored += len(fresh)
        fresh.sort(key=lambda s: (s.message.room_id, s.message.seq))
        for stored in fresh:
            self._announcer.publish(stored.message)
            if stored.mentioned:
                self._announcer.mentioned(stored.message, stored.mentioned)

    async def close(self) -> None:
        """Finish what is queued (nothing acked is lost), then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except asyncio.TimeoutError:
                self._task.cancel()
        for pending in self._queue:
            pending.on_failed(unavailable("the server is shutting down"))

