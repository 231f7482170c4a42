"""The Redis Cluster bus: sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`, Redis 7) over redis-py's
`redis.asyncio.cluster.RedisCluster`. Selected by `CHAT_REDIS_URL=redis+cluster://host:port,…`
or `CHAT_REDIS_CLUSTER=1` (docs/protocol.md §13).

How the traffic is laid out, so that no single shard carries every node's traffic:

- Rooms: one shard channel per room (`chat:room:<id>`). Its hash slot, hence its
  master, follows from the room id, so rooms spread over the masters and a
  room's messages cross exactly one shard, which only the nodes serving that
  room listen to.
- Control (user-level events, for every node): split over `CONTROL_BUCKETS`
  shard channels `chat:control:<n>`, spread over the slots; an event goes to
  the bucket of the user (or token) it is about, so one user's events keep
  their order while the load of publishing and fanning them out is spread over
  the shards. Every node listens to every bucket.
- Presence (`presence.RedisPresence`): each node's online set is its own key,
  on the shard the node's name hashes to; only a small registry of live nodes is
  shared (one write per node every `ttl / 3` s).
- Subscriptions: one subscriber connection per master, not per room: it holds
  every wanted channel whose slot that master serves, and a reader task per
  connection (no polling). A node holds at most one connection per master for
  subscriptions plus the cluster client's pooled command connections.

When slots move (failover, a restarted shard, resharding) a master answers with
a dropped connection, a server-sent `sunsubscribe`, or `MOVED`. The bus then
refreshes the slot map, moves the affected channels to their new masters
(other shards keep delivering meanwhile), and once every wanted channel is
subscribed again calls `on_bus_restored`, so the hub reads from storage what
crossed the gap. `healthy` is False while any wanted channel is unsubscribed;
`can_publish(room)` only while the room's own shard is being repaired, so sends to
rooms on the other shards go on.

Publishing is fire-and-forget as in `RedisBus`: one task pipelines `SPUBLISH`
in order, one pipeline per master by the cluster client's slot map (one
channel's order holds); a command answered `MOVED` is sent again after a
slot-map refresh.
Events for this node are delivered to it directly, in publish order; the copy
that comes back through Redis is recognised by its origin node and ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import zlib
from urllib.parse import urlsplit

import msgspec
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.crc import key_slot
from redis.exceptions import AskError

from .base import BusHandler
from .events import ControlEvent, MembershipChanged, Notified, ReadMoved, Revoked, RoomEvent, UserChanged
from .presence import ERRORS as _ERRORS
from .presence import RedisPresence
from .outbox import Outbox
from .redis import BACKOFF_CAP, BACKOFF_START, ROOM_PREFIX, SUBSCRIBE_WAIT, _Envelope, _text

log = logging.getLogger(__name__)

CONTROL_PREFIX = "chat:control:"
CONTROL_BUCKETS = 16
CONTROL_CHANNELS = tuple(f"{CONTROL_PREFIX}{n}" for n in range(CONTROL_BUCKETS))


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """`redis+cluster://h1:p1,h2:p2` (or `redis://h:p`) → the startup nodes it names."""
    netloc = urlsplit(url).netloc.rsplit("@", 1)[-1]
    nodes = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host:
            host, port = port, "6379"
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def control_channel(event: ControlEvent) -> str:
    """The bucket of the user (or token) the event is about: one user's events keep their order."""
    match event:
        case MembershipChanged(user_id=key) | ReadMoved(user_id=key):
            pass
        case Notified(user_ids=ids):
            key = ids[0] if ids else ""
        case Revoked(token_hash=token_hash, user_id=user_id):
            key = user_id or token_hash or ""
        case UserChanged(user=user):
            key = user.id
        case _:
            key = ""
    return CONTROL_CHANNELS[zlib.crc32(key.encode()) % CONTROL_BUCKETS]


class _Shard:
    """One subscriber connection to one master, holding the wanted channels whose slots it serves."""

    def __init__(self, name: str, host: str, port: int, client_name: str):
        self.name = name
        self.client = Redis(host=host, port=port, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2,
                            socket_keepalive=True, client_name=client_name)
        self.pubsub = self.client.pubsub()
        self.channels: set[str] = set()  # confirmed by the master
        self.pending: dict[str, asyncio.Future] = {}  # asked for by a reconciliation, not yet confirmed
        self.task: asyncio.Task | None = None

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_ERRORS):
                await self.task
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        with contextlib.suppress(Exception):
            await self.client.aclose()


class ClusterBus:
    """A `Bus` over Redis Cluster sharded pub/sub. `start()` returns once subscribed (or after a short wait)."""

    def __init__(self, url: str, *, node_id: str, presence_ttl: float = 30.0):
        self.healthy = False
        self.reconnects = 0
        self._startup = [ClusterNode(host, port) for host, port in cluster_nodes(url)]
        self._node = node_id
        self._handler: BusHandler | None = None
        self._cluster: RedisCluster | None = None
        self._shards: dict[str, _Shard] = {}
        self._publishers: dict[str, Redis] = {}  # one command connection per master, for publishing
        self._rooms: set[str] = set()
        self._confirmations: dict[str, asyncio.Future] = {}
        self._outbox = Outbox()
        self._repair = asyncio.Event()
        self._lost = False  # events may have been missed since the last full subscription
        self._presence = RedisPresence(node_id, presence_ttl, self._outbox.put)
        self._tasks: list[asyncio.Task] = []
        self._connected_once = asyncio.Event()
        self._closing = False
        self._encode = msgspec.msgpack.Encoder().encode
        self._decode = msgspec.msgpack.Decoder(_Envelope).decode

    # ------------------------------------------------------------------ lifetime

    async def start(self, handler: BusHandler) -> None:
        self._handler = handler
        self._cluster = RedisCluster(
            startup_nodes=self._startup, require_full_coverage=False,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2), socket_connect_timeout=2, socket_timeout=5,
            socket_keepalive=True,
        )
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._supervise_forever(), name="cluster-bus-subscriptions"),
            loop.create_task(self._publish_forever(), name="cluster-bus-publish"),
            loop.create_task(self._presence.refresh_forever(self._cluster), name="cluster-bus-presence"),
        ]
        self._repair.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._connected_once.wait(), timeout=5)

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for shard in list(self._shards.values()):
            await shard.close()
        self._shards.clear()
        for name in list(self._publishers):
            await self._forget_publisher(name)
        if self._cluster is not None:
            with contextlib.suppress(*_ERRORS):
                await self._presence.forget(self._cluster)
            with contextlib.suppress(*_ERRORS):
                await self._cluster.aclose()
        self.healthy = False

    # ------------------------------------------------------------------ subscriptions

    async def subscribe_room(self, room_id: str) -> None:
        if room_id in self._rooms:
            return
        self._rooms.add(room_id)
        channel = ROOM_PREFIX + room_id
        confirmed = self._confirmations.setdefault(channel, asyncio.get_running_loop().create_future())
        shard = self._owner(channel)
        if shard is not None:
            with contextlib.suppress(*_ERRORS):
                await shard.pubsub.ssubscribe(channel)
        else:  # its master is not connected yet: the supervisor subscribes it, then the hub catches up
            self._repair.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_WAIT)

    async def unsubscribe_room(self, room_id: str) -> None:
        self._rooms.discard(room_id)
        channel = ROOM_PREFIX + room_id
        self._confirmations.pop(channel, None)
        for shard in list(self._shards.values()):
            if channel in shard.channels:
                shard.channels.discard(channel)
                with contextlib.suppress(*_ERRORS):
                    await shard.pubsub.sunsubscribe(channel)

    def _wanted(self) -> list[str]:
        return [*CONTROL_CHANNELS, *(ROOM_PREFIX + room for room in self._rooms)]

    def _owner(self, channel: str) -> _Shard | None:
        """The connected shard serving `channel`'s slot by the current slot map, if any."""
        try:
            node = self._cluster.get_node_from_key(channel)
        except (*_ERRORS, KeyError, IndexError):
            return None
        shard = self._shards.get(node.name) if node is not None else None
        return shard if shard is not None and shard.task is not None and not shard.task.done() else None

    async def _supervise_forever(self) -> None:
        """Keep every wanted channel subscribed on the master serving its slot; repair on every fault."""
        backoff = BACKOFF_START
        while not self._closing:
            await self._repair.wait()
            self._repair.clear()
            try:
                complete = await self._reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever it was, the loop goes on: a later pass may succeed
                log.warning("cluster bus could not resubscribe: %r", exc)
                complete = False
            if complete:
                backoff = BACKOFF_START
                self.healthy = True
                if self._connected_once.is_set() and self._lost:
                    self.reconnects += 1
                    log.warning("cluster bus resubscribed; catching up from storage")
                    self._handler.on_bus_restored()
                self._lost = False
                self._connected_once.set()
            else:
                self.healthy = False
                await asyncio.sleep(random.uniform(0, backoff) + backoff / 2)
                backoff = min(backoff * 2, BACKOFF_CAP)
                self._repair.set()

    async def _reconcile(self) -> bool:
        """One pass: refresh the slot map, then subscribe each wanted channel on its master.
        True when every wanted channel is confirmed."""
        await self._cluster.initialize()
        with contextlib.suppress(*_ERRORS, RuntimeError):
            await self._cluster.nodes_manager.initialize()
        by_master = self._channels_by_master()
        for name in [name for name in self._shards if name not in by_master]:
            await self._drop(self._shards[name], "no longer a master of wanted slots")
        complete = True
        for name, (node, _) in by_master.items():
            shard = self._shards.get(name)
            if shard is not None and (shard.task is None or shard.task.done()):
                await self._drop(shard, "its reader stopped")
                shard = None
            if shard is None:
                shard = self._shards[name] = _Shard(name, node.host, node.port, f"chat-bus-{self._node}")
            # The wanted channels as of now, not as of the pass's start: a room subscribed while the pass
            # waited on another master is no extra to unsubscribe here.
            channels = self._channels_by_master().get(name, (node, []))[1]
            try:
                await self._subscribe(shard, set(channels))
            except (*_ERRORS, RuntimeError) as exc:
                log.warning("cluster bus could not subscribe on %s: %s", name, exc)
                await self._drop(shard, "subscribing failed")
                complete = False
        return complete

    def _channels_by_master(self) -> dict[str, tuple[ClusterNode, list[str]]]:
        """Every wanted channel under the master serving its slot by the current slot map."""
        by_master: dict[str, tuple[ClusterNode, list[str]]] = {}
        for channel in self._wanted():
            node = self._cluster.get_node_from_key(channel)
            by_master.setdefault(node.name, (node, []))[1].append(channel)
        return by_master

    async def _subscribe(self, shard: _Shard, channels: set[str]) -> None:
        """Make `shard` hold exactly `channels`, waiting for the master's confirmations."""
        extra = shard.channels - channels
        shard.channels -= extra
        for group in _by_slot(extra):
            await shard.pubsub.sunsubscribe(*group)
        missing = channels - shard.channels
        if not missing:
            return
        loop = asyncio.get_running_loop()
        pending = {channel: loop.create_future() for channel in missing}
        shard.pending.update(pending)
        for group in _by_slot(missing):  # one command may only name channels of one slot
            await shard.pubsub.ssubscribe(*group)
        if shard.task is None:
            shard.task = loop.create_task(self._read_forever(shard), name=f"cluster-bus-read-{shard.name}")
        async with asyncio.timeout(SUBSCRIBE_WAIT * 2):
            for future in pending.values():
                await asyncio.wait([shard.task, future], return_when=asyncio.FIRST_COMPLETED)
                if not future.done():
                    raise ConnectionError(f"the subscriber connection to {shard.name} closed")

    async def _drop(self, shard: _Shard, why: str) -> None:
        log.info("cluster bus drops its connection to %s: %s", shard.name, why)
        if self._shards.get(shard.name) is shard:
            del self._shards[shard.name]
        if shard.channels:
            self._lost = True
        await shard.close()

    async def _read_forever(self, shard: _Shard) -> None:
        try:
            while True:
                message = await shard.pubsub.get_message(timeout=None)
                if message is not None:
                    self._on_message(shard, message)
        except asyncio.CancelledError:
            raise
        except (*_ERRORS, RuntimeError) as exc:
            if not self._closing:
                log.warning("cluster bus lost its connection to %s: %s", shard.name, exc)
                self.healthy = False
                self._lost = True
                self._repair.set()

    def _on_message(self, shard: _Shard, message: dict) -> None:
        kind = message["type"]
        channel = _text(message["channel"])
        if kind == "ssubscribe":
            shard.channels.add(channel)
            pending = shard.pending.pop(channel, None)
            if pending is not None and not pending.done():
                pending.set_result(None)
            confirmed = self._confirmations.pop(channel, None)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
            return
        if kind == "sunsubscribe":
            if channel in shard.channels:  # sent by the master: the slot moved away (failover, resharding)
                shard.channels.discard(channel)
                self.healthy = False
                self._lost = True
                self._repair.set()
            return
        if kind != "smessage":
            return
        try:
            envelope = self._decode(message["data"])
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.error("dropping an undecodable bus event on %s", channel)
            return
        if envelope.node == self._node:
            return  # delivered locally when it was published
        if channel.startswith(ROOM_PREFIX):
            room_id = channel[len(ROOM_PREFIX):]
            if room_id in self._rooms:
                self._handler.on_room_event(room_id, envelope.event)
        elif channel.startswith(CONTROL_PREFIX):
            self._handler.on_control_event(envelope.event)

    # ------------------------------------------------------------------ publishing

    def can_publish(self, room_id: str) -> bool:
        """While shards are repaired, only rooms on a shard still in order: this node's subscriber
        connection to the master now serving the room's slot is up and (if this node serves the room)
        holds its channel. The master's subscribers elsewhere hear the room too, or lost that
        connection and catch up from storage once it is back."""
        if self.healthy:
            return True
        channel = ROOM_PREFIX + room_id
        shard = self._owner(channel)
        return shard is not None and (room_id not in self._rooms or channel in shard.channels)

    def publish_room(self, room_id: str, event: RoomEvent) -> None:
        if self._handler is not None and room_id in self._rooms:
            self._handler.on_room_event(room_id, event)
        self._outbox.put("SPUBLISH", ROOM_PREFIX + room_id, self._encode(_Envelope(self._node, event)))

    def publish_control(self, event: ControlEvent) -> None:
        if self._handler is not None:
            self._handler.on_control_event(event)
        self._outbox.put("SPUBLISH", control_channel(event), self._encode(_Envelope(self._node, event)))

    async def _publish_forever(self) -> None:
        async for batch in self._outbox.batches(lambda: self._closing):
            try:
                await self._send(batch)
            except Exception as exc:  # the publisher must outlive any failure
                log.warning("cluster bus dropped up to %d commands: %r", len(batch), exc)
                await asyncio.sleep(0.2)

    async def _send(self, batch: list[tuple], attempts: int = 3) -> None:
        """Each master gets its commands in one pipeline, in queue order (a channel keeps its order).

        Routed here by the slot map rather than through the cluster client's pipeline, which costs a
        node 10-25 µs more per message (scripts/bench_cluster.py --publish-only). A command answered
        with MOVED or ASK (the slot moved) is sent again after a slot-map refresh. Commands for a
        master that cannot be reached are dropped: storage has the messages, and that master's
        subscribers lost their connections too, so they catch up from storage once it is back."""
        for attempt in range(attempts):
            moved: list[tuple] = []
            for name, (node, commands) in self._by_master(batch).items():
                try:
                    async with self._publisher(name, node).pipeline(transaction=False) as pipe:
                        for command in commands:
                            pipe.execute_command(*command)
                        results = await pipe.execute(raise_on_error=False)
                except _ERRORS as exc:
                    log.warning("cluster bus dropped %d commands for %s: %r", len(commands), name, exc)
                    await self._forget_publisher(name)
                    self._repair.set()
                    continue
                moved += [c for c, result in zip(commands, results) if isinstance(result, AskError)]
            if not moved:
                return
            batch = moved
            with contextlib.suppress(*_ERRORS, RuntimeError):
                await self._cluster.nodes_manager.initialize()
        log.warning("cluster bus dropped %d commands whose slots kept moving", len(batch))

    def _by_master(self, batch: list[tuple]) -> dict[str, tuple[ClusterNode, list[tuple]]]:
        groups: dict[str, tuple[ClusterNode, list[tuple]]] = {}
        for command in batch:
            try:
                node = self._cluster.get_node_from_key(command[1])
            except (*_ERRORS, KeyError, IndexError):
                continue  # no master serves the slot right now: dropped, as for an unreachable one
            groups.setdefault(node.name, (node, []))[1].append(command)
        return groups

    def _publisher(self, name: str, node: ClusterNode) -> Redis:
        client = self._publishers.get(name)
        if client is None:
            client = self._publishers[name] = Redis(
                host=node.host, port=node.port, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1),
                socket_connect_timeout=2, socket_timeout=5, socket_keepalive=True,
            )
        return client

    async def _forget_publisher(self, name: str) -> None:
        client = self._publishers.pop(name, None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    # ------------------------------------------------------------------ presence

    def set_online(self, user_id: str, online: bool) -> None:
        self._presence.set_online(user_id, online)

    async def online(self, user_ids: set[str]) -> set[str]:
        return await self._presence.online(self._cluster, user_ids, self.healthy)



def _by_slot(channels) -> list[list[str]]:
    groups: dict[int, list[str]] = {}
    for channel in channels:
        groups.setdefault(key_slot(channel.encode()), []).append(channel)
    return list(groups.values())
