"""The commands a Redis bus engine sends without waiting (publishes, presence), in order.

Publishing must never wait on Redis: callers queue a command and return, and
one task per engine sends what piled up in batches. The queue is bounded: while
Redis is slow or down the oldest commands are dropped past `OUTBOX_LIMIT`
(storage has every message, and peers catch up when the bus is back).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

OUTBOX_LIMIT = 100_000  # queued commands while Redis is slow or down; oldest dropped past it
PUBLISH_BATCH = 512


class Outbox:
    __slots__ = ("_commands", "_ready")

    def __init__(self, limit: int = OUTBOX_LIMIT):
        self._commands: deque[tuple] = deque(maxlen=limit)
        self._ready = asyncio.Event()

    def put(self, *command) -> None:
        self._commands.append(command)
        self._ready.set()

    async def batches(self, closing: Callable[[], bool]) -> AsyncIterator[list[tuple]]:
        """Batches of at most `PUBLISH_BATCH` commands, oldest first, until `closing()`."""
        commands = self._commands
        while not closing():
            await self._ready.wait()
            self._ready.clear()
            while commands:
                yield [commands.popleft() for _ in range(min(PUBLISH_BATCH, len(commands)))]
