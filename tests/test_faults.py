"""Dependencies failing under a running server: it says so, never acks falsely, and recovers by itself."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from client_proto.client import ChatClient, ChatError
from client_proto.http import ApiClient, ApiError
from scripts.postgres_server import PostgresProcess
from scripts.redis_server import RedisProcess
from tests.conftest import require, unique_name


async def status_of(url: str, path: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url + path) as response:
        return response.status


async def wait_for_status(url: str, path: str, status: int, timeout: float) -> float:
    """Seconds until `path` answers `status`."""
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while True:
            try:
                if await status_of(url, path) == status:
                    return time.monotonic() - started
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


@pytest.fixture
def private_postgres():
    require(PostgresProcess.available(), "CHAT_REQUIRE_PG")
    pg = PostgresProcess().init().start()
    yield pg
    pg.remove()


@pytest.fixture
def private_redis():
    require(RedisProcess.available(), "CHAT_REQUIRE_REDIS")
    redis = RedisProcess().start()
    yield redis
    redis.stop()


async def test_postgres_outage_gives_503_and_unavailable_then_recovers_by_itself(private_postgres, spawn_server):
    node = await spawn_server({"CHAT_DATABASE_URL": private_postgres.url})
    await outage_and_recovery(node, stop=private_postgres.stop, start=private_postgres.start, down_for=10)


async def test_redis_outage_on_one_node_gives_503_and_unavailable_then_recovers_by_itself(private_redis, spawn_server,
                                                                                           tmp_path):
    node = await spawn_server({"CHAT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
                               "CHAT_REDIS_URL": private_redis.url})
    await outage_and_recovery(node, stop=private_redis.stop, start=private_redis.start, down_for=10)


async def outage_and_recovery(node, stop, start, down_for: float) -> None:
    """Stop a dependency under a running node for `down_for` seconds (long enough for any reconnect
    backoff to reach its ceiling), check how it says so, start it again, check it recovers.

    While it is down: /healthz and /readyz 503 (/livez 200), a WebSocket send is answered
    `unavailable` and an HTTP send 503 `unavailable`, and neither is stored. Within 5 s of its
    return /healthz is 200 again, with no restart and no help; sends work, and history holds
    exactly the acked messages.
    """
    name = unique_name("out")
    async with ApiClient(node.url) as api:
        await api.register(name, "password")
        token = await api.login(name, "password")
        room = (await api.as_user(token).create_room("outage"))["id"]
    acked = []
    async with ChatClient(node.ws_url, token) as client, ApiClient(node.url, token=token) as user_api:
        acked.append(await client.send(room, "before"))
        stop()
        stopped_at = time.monotonic()
        await wait_for_status(node.url, "/healthz", 503, timeout=10)
        assert await status_of(node.url, "/readyz") == 503
        assert await status_of(node.url, "/livez") == 200
        with pytest.raises(ChatError) as refused:
            acked.append(await client.send(room, "during"))
        assert refused.value.code == "unavailable"
        with pytest.raises(ApiError) as refused_http:
            await user_api.post(f"/api/rooms/{room}/messages", {"text": "during", "cid": "http-during"})
        assert refused_http.value.status == 503 and refused_http.value.code == "unavailable"
        await asyncio.sleep(max(0.0, stopped_at + down_for - time.monotonic()))
        assert await status_of(node.url, "/healthz") == 503

        start()
        recovery = await wait_for_status(node.url, "/healthz", 200, timeout=15)
        assert recovery < 5, f"healthy again only {recovery:.1f} s after the dependency returned"
        assert await status_of(node.url, "/readyz") == 200
        acked.append(await client.send(room, "after"))
        history = await client.history(room)
    assert [m.text for m in history.messages] == ["before", "after"]
    assert [a.seq for a in acked] == [m.seq for m in history.messages]


async def bus_reconnects(url: str) -> float:
    """The node's `chat_bus_reconnects_total`: how many times it caught up after a bus outage."""
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        text = await response.text()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("chat_bus_reconnects_total"))


async def test_a_bus_restore_while_storage_is_down_still_catches_up_once_storage_is_back(
        private_postgres, private_redis, spawn_server):
    """After a bus outage a node reads what the bus lost from storage: messages, and tokens revoked meanwhile.
    When storage is down at that moment (a Redis failover and a PostgreSQL outage close together, as in
    scripts/chaos.py), that catch-up must wait for storage, not be dropped: else a quiet room stays behind
    on this node until its next message, and a revoked token stays connected.

    What the bus lost is written straight into PostgreSQL (no node hears of it); the bus restore is a
    real Redis restart, observed by the node's reconnect counter while PostgreSQL is stopped."""
    from storage import messages as message_store
    from storage import tokens as token_store
    from storage.db import Database
    from storage.records import NewMessage, User
    from tests.test_cluster import drain_messages, group_of, signed_up

    node = await spawn_server({"CHAT_DATABASE_URL": private_postgres.url, "CHAT_REDIS_URL": private_redis.url})
    (alice, alice_token), (bob, bob_token), (carol, carol_token) = await signed_up(node.url, 3)
    room = await group_of(node.url, alice_token, [bob, carol])
    async with (ChatClient(node.ws_url, alice_token) as a, ChatClient(node.ws_url, bob_token) as b,
                ChatClient(node.ws_url, carol_token, reconnect=False) as c):
        heard = await a.send(room, "heard")
        await drain_messages(b, room, heard.seq)
        db = Database(private_postgres.url)
        try:
            async with db.transaction() as conn:
                sender = User(id=alice["id"], name=alice["name"], display=alice["display"])
                lost = await message_store.append_batch(
                    conn, [NewMessage(room_id=room, sender=sender, text=f"lost {n}", cid=f"lost{n}") for n in range(3)])
                await token_store.revoke(conn, carol_token)
        finally:
            await db.close()
        private_postgres.stop()
        restores = await bus_reconnects(node.url)
        private_redis.restart()
        async with asyncio.timeout(20):  # the node noticed, resubscribed and began its catch-up: storage is down
            while await bus_reconnects(node.url) == restores:
                await asyncio.sleep(0.1)
        private_postgres.start()
        got = await drain_messages(b, room, lost[-1].message.seq, timeout=20)  # nobody sends meanwhile
        async with asyncio.timeout(20):
            while c.close_code is None:
                await asyncio.sleep(0.1)
    assert [m.text for m in got] == ["lost 0", "lost 1", "lost 2"]
    assert c.close_code == 4001
