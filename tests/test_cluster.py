"""Several real `chatserver` processes on one PostgreSQL and one Redis: every guarantee of
docs/protocol.md §10 holds across nodes (order, no loss on kill -9 or a Redis outage, removal at once).

Redis is a private `redis-server` so the outage test can stop it without disturbing others.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import aiohttp
import pytest

from client_proto import frames
from client_proto.client import ChatClient, ChatError
from client_proto.http import ApiClient
from scripts.redis_server import RedisProcess
from tests.conftest import (
    drop_pg_database,
    fresh_pg_database,
    pg_available,
    require,
    unique_name,
)


@pytest.fixture
async def cluster(spawn_server):
    """`nodes = await cluster(3)`: that many nodes sharing a fresh database and a private Redis."""
    require(pg_available(), "CHAT_REQUIRE_PG")
    require(RedisProcess.available(), "CHAT_REQUIRE_REDIS")
    redis = RedisProcess().start()
    database = await fresh_pg_database()
    env = {"CHAT_DATABASE_URL": database, "CHAT_REDIS_URL": redis.url, "CHAT_SEND_RATE": "500",
           "CHAT_SEND_BURST": "500"}

    async def start(count: int, **settings: str):
        """`settings`: extra CHAT_* variables for these nodes."""
        nodes = []
        for _ in range(count):
            nodes.append(await spawn_server({**env, **settings}))
        return nodes

    start.redis = redis
    yield start
    redis.stop()
    await drop_pg_database(database)


async def signed_up(url: str, count: int) -> list[tuple[dict, str]]:
    """`count` users with tokens."""
    accounts = []
    async with ApiClient(url) as api:
        for _ in range(count):
            name = unique_name("c")
            await api.register(name, "password")
            token = await api.login(name, "password")
            accounts.append((await api.as_user(token).get("/api/me"), token))
    return accounts


async def group_of(url: str, owner_token: str, members: list[dict]) -> str:
    async with ApiClient(url, token=owner_token) as api:
        room = await api.create_room("cluster group")
        for member in members:
            await api.add_member(room["id"], member["id"])
        return room["id"]


async def health(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as response:
        return response.status


async def drain_messages(client: ChatClient, room: str, until_seq: int, timeout: float = 15.0) -> list[frames.Message]:
    """Every message event of `room` until one with `until_seq` arrives."""
    got = []
    async with asyncio.timeout(timeout):
        while not got or got[-1].seq < until_seq:
            event = await client.next_event(timeout=timeout)
            if isinstance(event, frames.Message) and event.room == room:
                got.append(event)
    return got


async def test_senders_on_every_node_all_see_one_gapless_order(cluster):
    nodes = await cluster(3)
    accounts = await signed_up(nodes[0].url, 6)
    (owner, owner_token), *others = accounts
    room = await group_of(nodes[0].url, owner_token, [user for user, _ in others])
    start_seq = len(others)  # one member.joined each
    clients = [ChatClient(nodes[i % 3].ws_url, token) for i, (_, token) in enumerate(accounts)]
    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client)

        async def burst(client: ChatClient, who: int):
            return [await client.send(room, f"{who}:{n}") for n in range(20)]

        acks = await asyncio.gather(*(burst(client, i) for i, client in enumerate(clients)))
        last = start_seq + 6 * 20
        assert sorted(a.seq for batch in acks for a in batch) == list(range(start_seq + 1, last + 1))
        seen = [await drain_messages(client, room, last) for client in clients]
    orders = [[(m.seq, m.text) for m in got if m.seq > start_seq] for got in seen]
    assert [seq for seq, _ in orders[0]] == list(range(start_seq + 1, last + 1))
    assert all(order == orders[0] for order in orders)


async def test_a_killed_nodes_clients_resume_elsewhere_and_nothing_acked_is_lost(cluster):
    node_a, node_b = await cluster(2)
    (owner, owner_token), (reader, reader_token) = await signed_up(node_b.url, 2)
    room = await group_of(node_b.url, owner_token, [reader])
    acked: list[frames.Ack] = []
    async with ChatClient(node_b.ws_url, owner_token) as sender:
        reader_on_a = ChatClient(node_a.ws_url, reader_token, reconnect=False)
        await reader_on_a.connect()
        for n in range(30):
            acked.append(await sender.send(room, f"before {n}"))
        await drain_messages(reader_on_a, room, acked[-1].seq)
        node_a.kill()
        for n in range(30):
            acked.append(await sender.send(room, f"after {n}"))
        resume = dict(reader_on_a.last_seq)
        await reader_on_a.close()
        async with ChatClient(node_b.ws_url, reader_token, resume=resume) as reader_on_b:
            replayed = await drain_messages(reader_on_b, room, acked[-1].seq)
    assert [m.seq for m in replayed] == list(range(resume[room] + 1, acked[-1].seq + 1))
    assert [m.text for m in replayed if m.kind == "text"][-30:] == [f"after {n}" for n in range(30)]


async def test_acks_from_a_node_killed_mid_traffic_are_all_in_history(cluster):
    node_a, node_b = await cluster(2)
    (owner, owner_token), = await signed_up(node_b.url, 1)
    room = await group_of(node_b.url, owner_token, [])
    acked: list[frames.Ack] = []

    async def send_until_cut():
        async with ChatClient(node_a.ws_url, owner_token, reconnect=False) as client:
            for n in itertools.count():
                try:
                    acked.append(await client.send(room, f"m{n}"))
                except (ChatError, TimeoutError):
                    return

    sender = asyncio.create_task(send_until_cut())
    async with asyncio.timeout(30):
        while len(acked) < 50:
            assert not sender.done(), "the sender stopped before 50 acks"
            await asyncio.sleep(0.01)
    node_a.kill()
    await asyncio.wait_for(sender, 15)
    async with ApiClient(node_b.url, token=owner_token) as api:
        stored = set()
        after = 0
        while True:
            page = await api.get(f"/api/rooms/{room}/messages", after=after, limit=100)
            stored.update(m["seq"] for m in page["messages"])
            if not page["more"]:
                break
            after = page["messages"][-1]["seq"]
    assert {a.seq for a in acked} <= stored
    assert sorted(stored) == list(range(1, max(stored) + 1))


async def test_a_redis_outage_loses_nothing_and_delivery_resumes_by_itself(cluster):
    node_a, node_b = await cluster(2)
    (owner, owner_token), (reader, reader_token) = await signed_up(node_a.url, 2)
    room = await group_of(node_a.url, owner_token, [reader])
    acked: list[frames.Ack] = []
    refused = 0
    async with ChatClient(node_a.ws_url, owner_token) as sender, ChatClient(node_b.ws_url, reader_token) as receiver:

        async def send(n: int):
            nonlocal refused
            cid = f"outage-{n}"
            while True:  # a send during the outage is refused, never falsely acked; retry, same cid
                try:
                    acked.append(await sender.send(room, f"m{n}", cid=cid))
                    return
                except ChatError as exc:
                    assert exc.code == "unavailable"
                    refused += 1
                    await asyncio.sleep(0.1)

        for n in range(10):
            await send(n)
        cluster.redis.stop()
        async with asyncio.timeout(10):  # the node notices when its subscription fails
            while await health(node_a.url) != 503:
                await asyncio.sleep(0.1)
        restart = asyncio.get_running_loop().call_later(1.5, cluster.redis.start)
        for n in range(10, 20):
            await send(n)
        restart.cancel()
        got = await drain_messages(receiver, room, acked[-1].seq, timeout=20)
    assert refused > 0, "the outage never showed: no send was refused"
    assert await health(node_a.url) == 200
    texts = [m.text for m in got if m.kind == "text"]
    assert texts == [f"m{n}" for n in range(20)]
    assert [m.seq for m in got] == sorted({m.seq for m in got})  # in order, none twice


async def test_kick_and_revocation_take_effect_on_other_nodes(cluster):
    node_a, node_b = await cluster(2)
    (owner, owner_token), (kicked, kicked_token), (revoked, revoked_token) = await signed_up(node_a.url, 3)
    room = await group_of(node_a.url, owner_token, [kicked, revoked])
    async with (
        ChatClient(node_a.ws_url, owner_token) as owner_client,
        ChatClient(node_b.ws_url, kicked_token) as kicked_client,
        ChatClient(node_b.ws_url, revoked_token, reconnect=False) as revoked_client,
    ):
        async with ApiClient(node_a.url, token=owner_token) as api:
            await api.delete(f"/api/rooms/{room}/members/{kicked['id']}")
        last = await drain_messages(kicked_client, room, until_seq=3)
        assert last[-1].system.type == "member.kicked"
        await owner_client.send(room, "not for the kicked one")
        with pytest.raises(TimeoutError):
            while True:
                event = await kicked_client.next_event(timeout=1.0)
                assert not (isinstance(event, frames.Message) and event.room == room), event

        async with ApiClient(node_a.url, token=revoked_token) as api:
            await api.delete("/api/tokens/current")
        async with asyncio.timeout(5):
            while revoked_client.close_code is None:
                await asyncio.sleep(0.05)
        assert revoked_client.close_code == 4001


async def test_typing_and_presence_cross_nodes_and_a_crashed_nodes_users_fade_out(cluster):
    node_a, node_b = await cluster(2, CHAT_PRESENCE_TTL="4")
    (owner, owner_token), (member, member_token) = await signed_up(node_a.url, 2)
    room = await group_of(node_a.url, owner_token, [member])
    async with (
        ChatClient(node_a.ws_url, owner_token) as on_a,
        ChatClient(node_b.ws_url, member_token, reconnect=False) as tab_1,
        ChatClient(node_b.ws_url, member_token, reconnect=False) as tab_2,
    ):
        # Node B tells Redis of its users in the background: wait for it (with a deadline).
        both = (sorted([owner["id"], member["id"]]), 2)
        async with asyncio.timeout(10):
            while (sorted((presence := await on_a.presence(room)).online), presence.count) != both:
                await asyncio.sleep(0.1)
        await tab_1.typing(room)
        async with asyncio.timeout(5):
            while not isinstance(event := await on_a.next_event(timeout=5), frames.TypingEvent):
                pass
        assert (event.room, event.user.id) == (room, member["id"])
        node_b.kill()
        async with asyncio.timeout(15):  # the TTL (4 s) plus one refresh, with room for a loaded machine
            while member["id"] in (await on_a.presence(room)).online:
                await asyncio.sleep(0.2)
        assert (await on_a.presence(room)).online == [owner["id"]]


async def test_changes_made_while_offline_reach_a_resume_on_another_node_once(cluster):
    """docs/protocol.md §6.4: an edit, a reaction and a recall are timeline entries, so a member who was
    offline gets each exactly once, in order, when it resumes (here on the other node)."""
    node_a, node_b = await cluster(2)
    (owner, owner_token), (reader, reader_token) = await signed_up(node_a.url, 2)
    room = await group_of(node_a.url, owner_token, [reader])
    async with ChatClient(node_a.ws_url, owner_token) as writer:
        async with ChatClient(node_b.ws_url, reader_token, reconnect=False) as reader_client:
            first = await writer.send(room, "frist")
            second = await writer.send(room, "regret")
            await drain_messages(reader_client, room, second.seq)
            resume = dict(reader_client.last_seq)
        assert resume == {room: second.seq}
        # Offline now: three changes, made on node A.
        edited = await writer.edit(room, first.seq, "first")
        await writer.react(room, first.seq, "👍")
        await writer.recall(room, second.seq)
        await writer.react(room, first.seq, "👍")  # the same way twice: no entry
        last = await writer.send(room, "done")
        assert last.seq == edited.seq + 3
    async with ChatClient(node_a.ws_url, reader_token, resume=resume, reconnect=False) as back:
        got = await drain_messages(back, room, last.seq)
        # Nothing more comes: a ping's answer follows everything the server queued before it, so once
        # it is back every event sent before is already queued here (the short timeout only ends the loop).
        await back.ping()
        queued = []
        with contextlib.suppress(TimeoutError):
            while True:
                queued.append(await back.next_event(timeout=0.01))
        assert [e for e in queued if isinstance(e, frames.Message) and e.room == room] == []
        page = await back.history(room, before=second.seq + 1, limit=2)
    assert [m.seq for m in got] == list(range(second.seq + 1, last.seq + 1))
    assert [(m.kind, m.update.type if m.update else None) for m in got] == [
        ("update", "edited"), ("update", "reaction"), ("update", "recalled"), ("text", None)
    ]
    assert got[0].update.text == "first" and got[1].update.emoji == "👍" and got[2].update.target == second.seq
    folded = {m.seq: m for m in page.messages}
    assert folded[first.seq].text == "first" and folded[first.seq].edited_ts == got[0].update.edited_ts
    assert [(r.emoji, r.count, r.me) for r in folded[first.seq].reactions] == [("👍", 1, False)]
    assert folded[second.seq].recalled and folded[second.seq].text is None


async def test_a_mention_notifies_every_connection_on_every_node(cluster):
    """docs/protocol.md §6.5: `notify` `mention` reaches each connection of the mentioned member, whichever node."""
    node_a, node_b = await cluster(2)
    (owner, owner_token), (bob, bob_token) = await signed_up(node_a.url, 2)
    room = await group_of(node_a.url, owner_token, [bob])
    async with (
        ChatClient(node_a.ws_url, owner_token) as writer,
        ChatClient(node_a.ws_url, bob_token) as bob_on_a,
        ChatClient(node_b.ws_url, bob_token) as bob_on_b,
    ):
        ack = await writer.send(room, "@bob look", mentions=[bob["id"]])
        for client in (bob_on_a, bob_on_b):
            async with asyncio.timeout(15):
                while True:
                    event = await client.next_event(timeout=15)
                    if isinstance(event, frames.Notify) and event.type == "mention":
                        break
            assert (event.room, event.seq, event.from_["id"]) == (room, ack.seq, owner["id"])
