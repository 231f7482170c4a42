"""Chat nodes on one PostgreSQL and a private Redis Cluster (3 masters + 3 replicas): the guarantees of
docs/protocol.md §10 hold while the cluster loses a master (its replica takes over) or a whole shard
(master and replica) restarts, with a sender and readers on different nodes under load."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from client_proto import frames
from client_proto.client import ChatClient, ChatError
from tests.conftest import drop_pg_database, fresh_pg_database, pg_available, require
from tests.test_cluster import drain_messages, group_of, health, signed_up


@pytest.fixture
async def nodes(spawn_server, redis_cluster):
    """Three chat nodes on a fresh database and the session's Redis Cluster (made whole first)."""
    require(pg_available(), "CHAT_REQUIRE_PG")
    redis_cluster.heal()
    database = await fresh_pg_database()
    env = {"CHAT_DATABASE_URL": database, "CHAT_REDIS_URL": redis_cluster.url, "CHAT_SEND_RATE": "500",
           "CHAT_SEND_BURST": "500"}
    started = await asyncio.gather(*(spawn_server(env) for _ in range(3)))
    yield started
    for node in started:
        node.kill()
    redis_cluster.heal()
    await drop_pg_database(database)


async def _send_under_fault(nodes, redis_cluster, fault, restore) -> None:
    """A sender on node 0 and readers on nodes 1 and 2 while `fault(room_master_port)` hits the
    room's shard mid-traffic and `restore` (in a thread, while sending goes on) brings it back;
    then every acked message reached both readers once, in order."""
    accounts = await signed_up(nodes[0].url, 3)
    (owner, owner_token), *readers = accounts
    room = await group_of(nodes[0].url, owner_token, [user for user, _ in readers])
    master = redis_cluster.master_of(f"chat:room:{room}")
    acked: list[frames.Ack] = []
    async with contextlib.AsyncExitStack() as stack:
        sender = await stack.enter_async_context(ChatClient(nodes[0].ws_url, owner_token))
        receivers = [await stack.enter_async_context(ChatClient(nodes[1 + i].ws_url, token))
                     for i, (_, token) in enumerate(readers)]

        async def send(n: int) -> None:
            while True:  # refused while the bus repairs itself, never falsely acked: retry with the same cid
                try:
                    acked.append(await sender.send(room, f"m{n}", cid=f"c{n}"))
                    return
                except (ChatError, TimeoutError) as exc:
                    assert getattr(exc, "code", "unavailable") == "unavailable", exc
                    await asyncio.sleep(0.05)

        for n in range(20):
            await send(n)
        await asyncio.to_thread(fault, master)
        restoring = asyncio.create_task(asyncio.to_thread(restore, master))
        for n in range(20, 60):
            await send(n)
        await restoring
        for n in range(60, 80):
            await send(n)
        seen = [await drain_messages(receiver, room, acked[-1].seq, timeout=30) for receiver in receivers]
    assert [a.seq for a in acked] == sorted({a.seq for a in acked}), "acks out of order or repeated"
    for got in seen:
        texts = [m.text for m in got if m.kind == "text"]
        assert texts == [f"m{n}" for n in range(80)]  # everything acked, once, in send order
        seqs = [m.seq for m in got]
        assert seqs == list(range(seqs[0], seqs[-1] + 1))  # gapless and strictly increasing
    for node in nodes:
        assert await health(node.url) == 200


async def test_a_master_killed_under_load_its_replica_takes_over_and_nothing_acked_is_lost(nodes, redis_cluster):
    def kill_master(master: int) -> None:
        redis_cluster.kill(master)

    def wait_for_failover(master: int) -> None:
        redis_cluster.wait_ok()  # the replica was promoted (the old master stays down meanwhile)
        assert master not in redis_cluster.masters()

    await _send_under_fault(nodes, redis_cluster, kill_master, wait_for_failover)


async def test_a_whole_shard_restarted_under_load_delivery_resumes_by_itself(nodes, redis_cluster):
    shard: list[int] = []

    def kill_shard(master: int) -> None:
        shard.extend([master, *redis_cluster.replica_of(master)])
        for port in shard:
            redis_cluster.kill(port)

    def restart_shard(master: int) -> None:
        time.sleep(1.5)  # down long enough for the nodes to notice and refuse sends meanwhile
        for port in shard:
            redis_cluster.restart(port)
        redis_cluster.wait_ok()

    await _send_under_fault(nodes, redis_cluster, kill_shard, restart_shard)


async def test_while_a_shard_is_down_rooms_on_the_other_shards_still_take_sends(nodes, redis_cluster):
    """Only rooms whose channel lives on the shard being repaired refuse sends (docs/protocol.md §13)."""
    accounts = await signed_up(nodes[0].url, 2)
    (owner, owner_token), (reader, reader_token) = accounts
    down_room = await group_of(nodes[0].url, owner_token, [reader])
    down = redis_cluster.master_of(f"chat:room:{down_room}")
    for _ in range(20):  # a room on another shard (2 in 3 are)
        up_room = await group_of(nodes[0].url, owner_token, [reader])
        if redis_cluster.master_of(f"chat:room:{up_room}") != down:
            break
    shard = [down, *redis_cluster.replica_of(down)]
    async with ChatClient(nodes[0].ws_url, owner_token) as sender, ChatClient(nodes[1].ws_url, reader_token) as r:
        for port in shard:
            redis_cluster.kill(port)
        async with asyncio.timeout(10):  # the node noticed: some shard is being repaired
            while await health(nodes[0].url) != 503:
                await asyncio.sleep(0.1)
        with pytest.raises(ChatError) as refused:
            await sender.send(down_room, "refused", cid="refused")
        assert refused.value.code == "unavailable"
        ack = await sender.send(up_room, "goes on", cid="goes-on")
        assert [m.text for m in await drain_messages(r, up_room, ack.seq)][-1:] == ["goes on"]
        for port in shard:
            redis_cluster.restart(port)
        await asyncio.to_thread(redis_cluster.wait_ok)
        async with asyncio.timeout(30):
            while True:  # the shard's rooms take sends again once the node resubscribed
                try:
                    back = await sender.send(down_room, "back", cid="back")
                    break
                except ChatError as exc:
                    assert exc.code == "unavailable", exc
                    await asyncio.sleep(0.1)
        assert [m.text for m in await drain_messages(r, down_room, back.seq)][-1:] == ["back"]
