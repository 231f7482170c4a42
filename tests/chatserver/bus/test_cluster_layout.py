"""How the Redis Cluster bus lays its traffic out: one subscriber connection per master whatever the
number of rooms, and control events spread over every master."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import pytest
from redis.crc import key_slot

from chatserver.bus.cluster import CONTROL_CHANNELS, ClusterBus, cluster_nodes
from tests.chatserver.bus.test_contract import Recorder, posted
from tests.conftest import free_port


def _subscriber_connections(redis_cluster, client_name: str) -> dict[int, list[int]]:
    """Per master port: the shard-subscription counts of the connections named `client_name`."""
    import redis

    found = {}
    for port in redis_cluster.masters():
        with redis.Redis(port=port) as r:
            found[port] = [int(c["ssub"]) for c in r.client_list() if c.get("name") == client_name]
    return found


async def test_one_subscriber_connection_per_master_holds_all_its_rooms(redis_cluster):
    redis_cluster.heal()
    node = f"layout-{uuid.uuid4().hex[:6]}"
    bus = ClusterBus(redis_cluster.url, node_id=node)
    await bus.start(Recorder())
    try:
        rooms = [f"room-{n}-{node}" for n in range(60)]
        for room in rooms:
            await bus.subscribe_room(room)
        connections = _subscriber_connections(redis_cluster, f"chat-bus-{node}")
        assert all(len(counts) == 1 for counts in connections.values()), connections
        assert sum(counts[0] for counts in connections.values()) == len(rooms) + len(CONTROL_CHANNELS)
        for port, (count,) in connections.items():  # each master holds the rooms whose slots it serves
            mine = sum(redis_cluster.master_of(f"chat:room:{room}") == port for room in rooms)
            assert count == mine + sum(redis_cluster.master_of(c) == port for c in CONTROL_CHANNELS)
    finally:
        await bus.close()


async def test_while_one_shard_is_down_only_rooms_on_it_refuse_sends(redis_cluster):
    """A whole shard (master and replica) down: rooms on the other shards can still be published to
    (the writer refuses sends by `can_publish`) and are delivered; the shard's own rooms cannot until
    it is back. `healthy` (and /healthz) says some shard is being repaired."""
    redis_cluster.heal()
    node = f"shard-{uuid.uuid4().hex[:6]}"
    down_room = f"room-down-{node}"
    down = redis_cluster.master_of(f"chat:room:{down_room}")
    up_room = next(room for room in (f"room-up-{n}-{node}" for n in range(100))
                   if redis_cluster.master_of(f"chat:room:{room}") != down)
    buses, handlers = [ClusterBus(redis_cluster.url, node_id=f"{node}-{i}") for i in range(2)], [Recorder(), Recorder()]
    try:
        for bus, handler in zip(buses, handlers):
            await bus.start(handler)
            for room in (down_room, up_room):
                await bus.subscribe_room(room)
        a, b = buses
        shard = [down, *redis_cluster.replica_of(down)]
        for port in shard:
            redis_cluster.kill(port)
        await handlers[0].wait_for(lambda: not a.can_publish(down_room), timeout=10)
        assert not a.healthy
        assert a.can_publish(up_room)
        a.publish_room(up_room, posted(up_room, 1))
        await handlers[1].wait_for(lambda: (up_room, posted(up_room, 1)) in handlers[1].room_events)
        assert not a.can_publish(down_room)  # still down: nothing brought it back meanwhile
        for port in shard:
            redis_cluster.restart(port)
        redis_cluster.wait_ok()
        await handlers[0].wait_for(lambda: a.healthy and a.can_publish(down_room) and handlers[0].restored, timeout=30)
    finally:
        for bus in buses:
            await bus.close()
        redis_cluster.heal()


async def test_rooms_subscribed_while_a_shard_is_unreachable_stay_subscribed(redis_cluster):
    """While one shard is unreachable the bus retries it pass after pass; rooms it starts serving on the
    other shards meanwhile must stay subscribed. A pass once unsubscribed a room subscribed while it
    waited on the unreachable master (its wanted channels were those of the pass's start): the room's
    events were lost on this node until the next pass, and `can_publish` refused a room whose shard was
    fine (the shard-outage cluster test found it).

    The shard's master port answers nothing (a listening socket that never replies), so each pass
    waits there for its subscriptions' deadline, and the master of the first control bucket is the
    one a pass visits first; rooms are subscribed one by one for longer than two passes."""
    redis_cluster.heal()
    node = f"unreachable-{uuid.uuid4().hex[:6]}"
    silent = redis_cluster.master_of(CONTROL_CHANNELS[0])
    shard = [silent, *redis_cluster.replica_of(silent)]
    candidates = [f"room-{n}-{node}" for n in range(600)]
    owners = redis_cluster.masters_of([f"chat:room:{room}" for room in candidates])
    elsewhere = [room for room in candidates if owners[f"chat:room:{room}"] != silent]
    bus = ClusterBus(redis_cluster.url, node_id=node)
    handler = Recorder()
    await bus.start(handler)
    hole = socket.socket()
    try:
        for port in shard:
            redis_cluster.kill(port)
        hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hole.bind(("127.0.0.1", silent))
        hole.listen(64)  # connections are taken, nothing is ever answered
        await handler.wait_for(lambda: not bus.healthy, timeout=10)
        subscribed = []
        until = time.monotonic() + 12  # passes wait SUBSCRIBE_WAIT * 2 on the silent master, plus backoff
        for room in elsewhere:
            if time.monotonic() > until:
                break
            await bus.subscribe_room(room)
            subscribed.append(room)
            await asyncio.sleep(0.05)
        assert [room for room in subscribed if not bus.can_publish(room)] == []
        assert not bus.healthy  # the silent shard is still being repaired
    finally:
        await bus.close()
        hole.close()
        redis_cluster.heal()


def test_control_buckets_land_on_every_master(redis_cluster):
    owners = {redis_cluster.master_of(channel) for channel in CONTROL_CHANNELS}
    assert owners == set(redis_cluster.masters())
    assert len({key_slot(c.encode()) for c in CONTROL_CHANNELS}) == len(CONTROL_CHANNELS)


def test_cluster_urls_name_their_startup_nodes():
    assert cluster_nodes("redis+cluster://10.0.0.1:7000,10.0.0.2:7001") == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert cluster_nodes("redis://:secret@host") == [("host", 6379)]


def test_the_cluster_engine_is_chosen_by_url_scheme_or_setting():
    from chatserver.app import make_bus
    from chatserver.bus.redis import RedisBus
    from chatserver.config import ConfigError, Settings

    def bus_for(**env):
        return make_bus(Settings.from_env({f"CHAT_{k.upper()}": v for k, v in env.items()}))

    assert isinstance(bus_for(redis_url="redis+cluster://127.0.0.1:7000,127.0.0.1:7001"), ClusterBus)
    assert isinstance(bus_for(redis_url="redis://127.0.0.1:7000", redis_cluster="1"), ClusterBus)
    assert isinstance(bus_for(redis_url="redis://127.0.0.1:6379/0", redis_cluster="0"), RedisBus)
    with pytest.raises(ConfigError, match="CHAT_REDIS_CLUSTER"):
        bus_for(redis_url="redis://127.0.0.1:7000", redis_cluster="maybe")


async def test_an_unreachable_cluster_leaves_the_bus_unhealthy_but_harmless():
    bus = ClusterBus(f"redis+cluster://127.0.0.1:{free_port()}", node_id="lonely")
    handler = Recorder()
    await bus.start(handler)  # returns after its short wait, not never
    try:
        assert not bus.healthy
        bus.publish_room("r", posted("r", 1))  # fire-and-forget: no error, the local node still hears it
        await bus.subscribe_room("r")
        bus.publish_room("r", posted("r", 1))
        assert len(handler.room_events) == 1
        assert await bus.online({"u"}) == set()
    finally:
        await bus.close()

