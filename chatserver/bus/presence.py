"""Presence across nodes in Redis: which users have a live connection on any node.

Kept apart from pub/sub (as centrifuge keeps Broker and PresenceManager apart) so
the single-Redis and the Redis Cluster buses lay it out the same way:

- each node keeps the set of its online users under its own key
  (`chat:presence:<node>`), which expires unless refreshed, so the users of a
  crashed node fade out; in a cluster each node's key lives on the shard its
  name hashes to, so nodes' presence spreads over the shards;
- a small registry of live nodes (`chat:nodes`, a sorted set scored by the last
  refresh) tells a query which node sets to read. It is the one shared key:
  written once per node every `ttl / 3` seconds and read once per query.

Works with `redis.asyncio.Redis` and `redis.asyncio.cluster.RedisCluster` alike:
the only transaction touches one key (one slot).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis.exceptions import RedisClusterException, RedisError

NODES = "chat:nodes"
PRESENCE_PREFIX = "chat:presence:"
# What Redis (or a Redis Cluster, whose topology errors are not RedisErrors) may raise while unreachable.
ERRORS = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)


class RedisPresence:
    """This node's online users, published to Redis; `online()` asks every live node's set."""

    def __init__(self, node_id: str, ttl: float, queue: Callable[..., None]):
        """`queue(*command)` sends a command in the background, in order (the bus's outbox)."""
        self._node = node_id
        self._key = PRESENCE_PREFIX + node_id
        self._ttl = ttl
        self._queue = queue
        self._online: set[str] = set()

    def set_online(self, user_id: str, online: bool) -> None:
        if online:
            self._online.add(user_id)
            self._queue("SADD", self._key, user_id)
        else:
            self._online.discard(user_id)
            self._queue("SREM", self._key, user_id)

    async def online(self, client, user_ids: set[str], reachable: bool) -> set[str]:
        """Users of `user_ids` online anywhere; only this node's when Redis is not `reachable`."""
        found = user_ids & self._online
        if not user_ids or not reachable:
            return found
        ids = sorted(user_ids)
        try:
            async with asyncio.timeout(2):
                nodes = await client.zrangebyscore(NODES, time.time() - self._ttl, "+inf")
                async with client.pipeline(transaction=False) as pipe:
                    for node in nodes:
                        pipe.smismember(PRESENCE_PREFIX + _text(node), ids)
                    answers = await pipe.execute()
        except ERRORS:
            return found
        for flags in answers:
            found.update(user_id for user_id, flag in zip(ids, flags) if flag)
        return found

    async def refresh_forever(self, client) -> None:
        """Rewrite this node's set (a restarted Redis lost it) and keep it and the registry entry alive."""
        while True:
            try:
                async with asyncio.timeout(5):
                    async with client.pipeline(transaction=True) as pipe:
                        pipe.delete(self._key)
                        if self._online:
                            pipe.sadd(self._key, *self._online)
                        pipe.expire(self._key, max(1, round(self._ttl)))
                        await pipe.execute()
                    now = time.time()
                    async with client.pipeline(transaction=False) as pipe:
                        pipe.zadd(NODES, {self._node: now})
                        pipe.zremrangebyscore(NODES, "-inf", now - self._ttl)
                        await pipe.execute()
            except asyncio.CancelledError:
                raise
            except ERRORS:
                pass
            await asyncio.sleep(self._ttl / 3)

    async def forget(self, client) -> None:
        """A clean shutdown: this node's users go offline at once."""
        async with asyncio.timeout(2):
            await client.delete(self._key)
            await client.zrem(NODES, self._node)


def _text(value) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else value
