"""The Redis bus: pub/sub between nodes, presence across nodes (redis-py's `redis.asyncio`).

- One channel per room (`chat:room:<id>`), subscribed while this node serves
  the room, and one control channel for user-level events. A node never
  receives traffic for rooms it does not serve.
- Events for this node are delivered to it directly (synchronously, in
  publish order); Redis carries them to the others, tagged with the origin
  node so the echo is ignored.
- Pub/sub is fire-and-forget: one publisher task pipelines everything in
  order; what is lost while Redis is down is recovered from storage, because
  after every reconnect the node resubscribes and calls `on_bus_restored`.
- Presence: `presence.RedisPresence` (each node's online set under a key that
  expires unless refreshed, so the users of a crashed node fade out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import msgspec
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import RedisError

from .base import BusHandler
from .events import BusEvent, ControlEvent, RoomEvent
from .outbox import Outbox
from .presence import RedisPresence

log = logging.getLogger(__name__)

ROOM_PREFIX = "chat:room:"
CONTROL = "chat:control"
PRESENCE_TTL = 30  # default seconds a node's presence survives without a refresh (refreshed at a third)
SUBSCRIBE_WAIT = 2.0  # seconds subscribe_room waits for Redis to confirm
# Reconnect waits are jittered up to 1.5 times the backoff: with this cap a node retries at least
# every 3 s, so it is back within 5 s of Redis returning, however long Redis was away.
BACKOFF_START, BACKOFF_CAP = 0.1, 2.0
_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class _Envelope(msgspec.Struct, array_like=True, frozen=True):
    node: str
    event: BusEvent


class RedisBus:
    """A `Bus` over Redis pub/sub. `start()` returns once connected (or after a short wait if Redis is down)."""

    def __init__(self, url: str, *, node_id: str, presence_ttl: float = PRESENCE_TTL):
        self.healthy = False
        self.reconnects = 0
        self._url = url
        self._node = node_id
        self._handler: BusHandler | None = None
        self._redis: Redis | None = None
        self._subscriber: Redis | None = None
        self._pubsub = None
        self._rooms: set[str] = set()
        self._confirmations: dict[str, asyncio.Future] = {}
        self._outbox = Outbox()
        self._presence = RedisPresence(node_id, presence_ttl, self._outbox.put)
        self._tasks: list[asyncio.Task] = []
        self._connected_once = asyncio.Event()
        self._closing = False
        self._encode = msgspec.msgpack.Encoder().encode
        self._decode = msgspec.msgpack.Decoder(_Envelope).decode

    # ------------------------------------------------------------------ lifetime

    async def start(self, handler: BusHandler) -> None:
        self._handler = handler
        # Subscriptions: no hidden retries, so a lost connection surfaces and we catch up.
        self._subscriber = Redis.from_url(
            self._url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2, socket_keepalive=True
        )
        # Commands: a stale pooled connection (Redis restarted) is retried on a fresh one.
        self._redis = Redis.from_url(
            self._url, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2), socket_connect_timeout=2,
            socket_timeout=5, socket_keepalive=True,
        )
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen_forever(), name="redis-bus-listen"),
            loop.create_task(self._publish_forever(), name="redis-bus-publish"),
            loop.create_task(self._presence.refresh_forever(self._redis), name="redis-bus-presence"),
        ]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._connected_once.wait(), timeout=5)

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._redis is not None:
            with contextlib.suppress(*_ERRORS):
                await self._presence.forget(self._redis)
            for client in (self._redis, self._subscriber):
                with contextlib.suppress(*_ERRORS):
                    await client.aclose()
        self.healthy = False

    # ------------------------------------------------------------------ subscriptions

    async def subscribe_room(self, room_id: str) -> None:
        if room_id in self._rooms:
            return
        self._rooms.add(room_id)
        channel = ROOM_PREFIX + room_id
        confirmed = self._confirmations.setdefault(channel, asyncio.get_running_loop().create_future())
        if self._pubsub is not None:
            with contextlib.suppress(*_ERRORS):
                await self._pubsub.subscribe(channel)
        # While Redis is down the room stays wanted: it is subscribed on reconnect,
        # and the hub then reads what it missed from storage.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_WAIT)

    async def unsubscribe_room(self, room_id: str) -> None:
        self._rooms.discard(room_id)
        self._confirmations.pop(ROOM_PREFIX + room_id, None)
        if self._pubsub is not None:
            with contextlib.suppress(*_ERRORS):
                await self._pubsub.unsubscribe(ROOM_PREFIX + room_id)

    async def _listen_forever(self) -> None:
        backoff = BACKOFF_START
        while not self._closing:
            pubsub = self._subscriber.pubsub()
            try:
                self._pubsub = pubsub
                channels = [CONTROL, *(ROOM_PREFIX + room for room in self._rooms)]
                await pubsub.subscribe(*channels)
                await self._await_confirmations(pubsub, set(channels))
                self.healthy = True
                backoff = BACKOFF_START
                if self._connected_once.is_set():
                    self.reconnects += 1
                    log.warning("redis bus reconnected; catching up from storage")
                    self._handler.on_bus_restored()
                self._connected_once.set()
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        self._on_message(message)
            except asyncio.CancelledError:
                raise
            except _ERRORS as exc:
                if self.healthy:
                    log.warning("redis bus lost its connection: %s", exc)
                self.healthy = False
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(random.uniform(0, backoff) + backoff / 2)
                backoff = min(backoff * 2, BACKOFF_CAP)

    async def _await_confirmations(self, pubsub, channels: set[str]) -> None:
        async with asyncio.timeout(5):
            while channels:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    channels.discard(_text(message["channel"]))
                self._on_message(message)

    def _on_message(self, message: dict) -> None:
        kind = message["type"]
        channel = _text(message["channel"])
        if kind == "subscribe":
            confirmed = self._confirmations.pop(channel, None)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
            return
        if kind != "message":
            return
        try:
            envelope = self._decode(message["data"])
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.error("dropping an undecodable bus event on %s", channel)
            return
        if envelope.node == self._node:
            return  # delivered locally when it was published
        if channel == CONTROL:
            self._handler.on_control_event(envelope.event)
        elif channel.startswith(ROOM_PREFIX):
            room_id = channel[len(ROOM_PREFIX):]
            if room_id in self._rooms:
                self._handler.on_room_event(room_id, envelope.event)

    # ------------------------------------------------------------------ publishing

    def can_publish(self, room_id: str) -> bool:
        return self.healthy  # one Redis carries every room

    def publish_room(self, room_id: str, event: RoomEvent) -> None:
        if self._handler is not None and room_id in self._rooms:
            self._handler.on_room_event(room_id, event)
        self._outbox.put("PUBLISH", ROOM_PREFIX + room_id, self._encode(_Envelope(self._node, event)))

    def publish_control(self, event: ControlEvent) -> None:
        if self._handler is not None:
            self._handler.on_control_event(event)
        self._outbox.put("PUBLISH", CONTROL, self._encode(_Envelope(self._node, event)))

    async def _publish_forever(self) -> None:
        async for batch in self._outbox.batches(lambda: self._closing):
            try:
                await self._send(batch)
            except _ERRORS:
                try:  # once more, on a fresh connection: a pooled one may predate a Redis restart
                    await self._send(batch)
                except _ERRORS as exc:
                    # Dropped: storage has the messages, and peers catch up when the bus is back.
                    log.warning("redis bus dropped %d commands: %s", len(batch), exc)
                    await asyncio.sleep(0.5)

    async def _send(self, batch: list[tuple]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for command in batch:
                pipe.execute_command(*command)
            await pipe.execute()

    # ------------------------------------------------------------------ presence

    def set_online(self, user_id: str, online: bool) -> None:
        self._presence.set_online(user_id, online)

    async def online(self, user_ids: set[str]) -> set[str]:
        return await self._presence.online(self._redis, user_ids, self.healthy)


def _text(value) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else value
