"""One contract, every engine: the in-memory bus, the Redis bus (two real nodes on a real Redis) and the
Redis Cluster bus (two nodes on a private 3-master cluster)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from chatserver.bus.cluster import ClusterBus
from chatserver.bus.events import MembershipChanged, Posted, TypingStarted
from chatserver.bus.memory import MemoryBus
from chatserver.bus.redis import RedisBus
from storage.records import Message, User
from scripts.redis_server import RedisProcess
from tests.conftest import redis_available, require

ALICE = User(id="u_alice", name="alice", display="Alice")
RUN = uuid.uuid4().hex[:8]  # rooms and nodes unique to this run: other runs may share the Redis


def room(name: str) -> str:
    return f"{name}-{RUN}"


class Recorder:
    """A BusHandler that writes down what it is handed."""

    def __init__(self):
        self.room_events: list[tuple[str, object]] = []
        self.control_events: list[object] = []
        self.restored = 0
        self.changed = asyncio.Event()

    def on_room_event(self, room_id, event):
        self.room_events.append((room_id, event))
        self.changed.set()

    def on_control_event(self, event):
        self.control_events.append(event)
        self.changed.set()

    def on_bus_restored(self):
        self.restored += 1
        self.changed.set()

    async def wait_for(self, predicate, timeout=5.0):
        """Wait until `predicate()` holds, re-checking on every event and every 50 ms."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                try:
                    await asyncio.wait_for(self.changed.wait(), 0.05)
                except TimeoutError:
                    pass


R1, R2, R3 = room("r1"), room("r2"), room("r3")


def posted(room: str, seq: int) -> Posted:
    return Posted(Message(room_id=room, seq=seq, id=f"m{seq}", ts=seq, sender=ALICE, kind="text", text=f"#{seq}"))


@pytest.fixture(params=["memory", "redis", "cluster"])
async def nodes(request):
    """Two nodes' buses and handlers. In memory both are one process's bus (one node)."""
    if request.param == "memory":
        bus = MemoryBus()
        handler = Recorder()
        await bus.start(handler)
        assert bus.healthy and bus.can_publish(R1)
        yield [(bus, handler), (bus, handler)], False
        await bus.close()
        return
    if request.param == "cluster":
        engine, url = ClusterBus, request.getfixturevalue("redis_cluster").url
    else:
        require(redis_available(), "CHAT_REQUIRE_REDIS")
        engine, url = RedisBus, "redis://127.0.0.1:6379/0"
    pairs = []
    for node in ("node-a", "node-b"):
        bus = engine(url, node_id=f"{node}-{RUN}-{uuid.uuid4().hex[:6]}")
        handler = Recorder()
        await bus.start(handler)
        assert bus.healthy and bus.can_publish(R1)
        pairs.append((bus, handler))
    yield pairs, True
    for bus, _ in pairs:
        await bus.close()


async def test_room_events_reach_subscribed_nodes_in_order_including_the_publisher(nodes):
    (a, ha), (b, hb), = nodes[0]
    await a.subscribe_room(R1)
    await b.subscribe_room(R1)
    for seq in range(1, 51):
        a.publish_room(R1, posted(R1, seq))
    await hb.wait_for(lambda: len(hb.room_events) >= 50)
    for handler in {id(ha): ha, id(hb): hb}.values():
        seqs = [event.message.seq for room, event in handler.room_events if room == R1]
        assert seqs == list(range(1, 51))


async def test_a_node_not_serving_a_room_hears_nothing_of_it(nodes):
    (a, ha), (b, hb) = nodes[0]
    remote = nodes[1]
    await a.subscribe_room(R2)
    a.publish_room(R2, posted(R2, 1))
    a.publish_room(R2, TypingStarted(room_id=R2, user=ALICE))
    await ha.wait_for(lambda: len(ha.room_events) >= 2)
    if remote:
        await asyncio.sleep(0.3)
        assert hb.room_events == []
    await a.unsubscribe_room(R2)
    a.publish_room(R2, posted(R2, 2))
    await asyncio.sleep(0.2)
    assert [e.message.seq for r, e in ha.room_events if isinstance(e, Posted)] == [1]


async def test_control_events_reach_every_node(nodes):
    (a, ha), (b, hb) = nodes[0]
    event = MembershipChanged(room_id=R3, user_id=f"u1-{RUN}", added=True, seq=7)
    a.publish_control(event)
    await ha.wait_for(lambda: event in ha.control_events)
    await hb.wait_for(lambda: event in hb.control_events)
    assert ha.control_events.count(event) == 1 and hb.control_events.count(event) == 1


async def test_presence_counts_users_online_on_any_node(nodes):
    (a, _), (b, _) = nodes[0]
    on_a, on_b, gone, never = (f"{who}-{RUN}" for who in ("on_a", "on_b", "gone", "never"))
    a.set_online(on_a, True)
    b.set_online(on_b, True)
    b.set_online(gone, True)
    b.set_online(gone, False)
    await asyncio.sleep(0.2)
    assert await a.online({on_a, on_b, gone, never}) == {on_a, on_b}
    assert await b.online({on_a, on_b}) == {on_a, on_b}


async def test_the_redis_bus_reconnects_resubscribes_and_reports_the_outage():
    require(RedisProcess.available(), "CHAT_REQUIRE_REDIS")
    redis = RedisProcess().start()
    try:
        handlers = [Recorder(), Recorder()]
        buses = [RedisBus(redis.url, node_id=f"n{i}") for i in range(2)]
        for bus, handler in zip(buses, handlers):
            await bus.start(handler)
            await bus.subscribe_room("r")
        redis.stop()
        await handlers[0].wait_for(lambda: not buses[0].healthy, timeout=5)
        assert not buses[0].can_publish("r")  # one Redis carries every room: none can be sent to
        redis = RedisProcess(port=redis.port).start()
        for bus, handler in zip(buses, handlers):
            await handler.wait_for(lambda: bus.healthy and handler.restored == 1, timeout=15)
            assert bus.can_publish("r")
        buses[0].publish_room("r", posted("r", 1))
        await handlers[1].wait_for(lambda: len(handlers[1].room_events) == 1)
        for bus in buses:
            await bus.close()
    finally:
        redis.stop()
