"""Guarantees of docs/protocol.md §10 on one node: order, no loss on reconnect, idempotent cids, isolation."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from .conftest import MSGPACK, post_messages, seqs, with_settings


@with_settings(send_rate=1000.0, send_burst=1000)
async def test_strict_gapless_order_with_concurrent_senders(make_account, make_room, connect):
    senders = [await make_account(f"s{i}") for i in range(3)]
    reader = await make_account("reader")
    room, owner = await make_room(members=[*senders, reader])
    room_id = room["id"]
    readers = [await connect(reader), await connect(reader, protocol=MSGPACK)]
    start = (await owner.api.get(f"/api/rooms/{room_id}"))["last_seq"]
    wires = [await connect(s) for s in senders]
    per_sender = 40

    async def blast(wire):  # pipelined: every send before the first ack
        return await wire.pipeline(
            [{"op": "send", "room": room_id, "text": f"{wire.user_id}:{i}", "cid": f"c{i}"} for i in range(per_sender)])

    async def by_http(account):
        return await post_messages(account, room_id, 10, prefix="http")

    results = await asyncio.gather(*(blast(w) for w in wires), by_http(owner))
    total = per_sender * len(wires) + 10
    expected = list(range(start + 1, start + total + 1))
    for wire_acks in results[:-1]:
        assert [a["op"] for a in wire_acks] == ["ack"] * per_sender
        acked = seqs(wire_acks)
        assert acked == sorted(acked)  # one sender's messages keep their order
    for conn in readers + wires:
        got = await conn.messages(room_id, total)
        assert seqs(got) == expected  # every connection: strictly increasing, no gap, no repeat
    texts = {m["seq"]: m["text"] for m in got}
    for wire, wire_acks in zip(wires, results):  # each ack names the sender's own message
        assert [texts[a["seq"]] for a in wire_acks] == [f"{wire.user_id}:{i}" for i in range(per_sender)]


async def test_repeated_cid_never_makes_a_second_message_even_concurrently(make_account, make_room, connect):
    alice = await make_account()
    bob = await make_account()
    room, _ = await make_room(owner=alice, members=[bob])
    room_id = room["id"]
    tabs = [await connect(alice), await connect(alice), await connect(alice, protocol=MSGPACK)]
    b = await connect(bob)
    cid = uuid.uuid4().hex

    async def over_http():
        return await alice.api.post(f"/api/rooms/{room_id}/messages", {"text": "once", "cid": cid})

    same = {"op": "send", "room": room_id, "text": "once", "cid": cid}
    per_tab = await asyncio.gather(*(tab.pipeline([same] * 3) for tab in tabs), over_http())
    replies = [*per_tab[-1:], *(reply for replies in per_tab[:-1] for reply in replies)]
    assert len({(r["seq"], r["id"]) for r in replies}) == 1
    assert sorted(r["dup"] for r in replies).count(False) == 1
    history = (await b.call("history", room=room_id))["messages"]
    assert [m.get("cid") for m in history].count(cid) == 1
    assert [f["seq"] for f in await b.drain() if f["op"] == "message"] == [2]


async def test_reconnect_with_last_seq_gets_every_missed_message_once(make_account, make_room, connect):
    alice = await make_account()
    bob = await make_account()
    room, _ = await make_room(owner=alice, members=[bob])
    room_id = room["id"]
    b = await connect(bob)
    await post_messages(alice, room_id, 5)  # 2..6
    seen = seqs(await b.messages(room_id, 5))
    await b.ws.close()
    await post_messages(alice, room_id, 5)  # 7..11, missed
    b = await connect(bob, resume={room_id: seen[-1]})
    await post_messages(alice, room_id, 2)  # 12, 13 live
    got = await b.messages(room_id, 7)
    assert seqs(got) == list(range(7, 14))
    assert [f for f in await b.drain() if f["op"] == "message"] == []


async def test_bad_input_from_one_user_never_reaches_or_stops_another(make_account, make_room, connect):
    alice = await make_account()
    mallory = await make_account("mallory")
    room, _ = await make_room(owner=alice, members=[mallory])
    room_id = room["id"]
    a = await connect(alice)
    m = await connect(mallory)
    for junk in ("\x00", "{", '{"op":"send","room":' + '"x' * 40 + '"}', '{"op":"history","room":"' + room_id
                 + '","limit":1e9}', '{"op":"recall","room":"' + room_id + '","seq":1}'):
        await m.send(junk)
    errors = [f for f in await m.drain() if f["op"] == "error"]
    assert len(errors) == 5
    frames = await a.drain()
    assert [f for f in frames if f["op"] == "error"] == []
    ack = await a.call("send", room=room_id, text="fine", cid="fine")
    assert (await m.expect("message", seq=ack["seq"]))["text"] == "fine"



async def test_a_bus_restore_during_a_hello_keeps_the_clients_resume(
        server, database_url, make_account, make_room, connect):
    """After a bus outage the hub re-attaches rooms a connection lacks, from the read marker. A connection
    still in its hello lacks them too, but only until its own resume attaches them: the catch-up must
    not replay from the read marker instead (duplicates; the chaos run found this).

    The hello is held between registering the connection and reading its rooms by a lock on `rooms`
    (PostgreSQL only), and the bus restore happens right then."""
    import asyncpg

    from chatserver import keys

    if not database_url.startswith("postgresql"):
        pytest.skip("holds a PostgreSQL table lock (CHAT_TEST_DATABASE=postgresql)")
    alice, bob = await make_account(), await make_account()
    room, _ = await make_room(owner=alice, members=[bob])
    a = await connect(alice)
    for n in range(6):
        last = (await a.call("send", room=room["id"], text=f"m{n}", cid=f"c{n}"))["seq"]
    hub = server.app[keys.HUB]
    locker = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        lock = locker.transaction()
        await lock.start()
        await locker.execute("LOCK TABLE rooms IN ACCESS EXCLUSIVE MODE")
        hello = asyncio.create_task(connect(bob, resume={room["id"]: last - 1}))  # bob saw all but the last
        async with asyncio.timeout(10):
            while not (held := hub.user_connections(bob.id)):
                await asyncio.sleep(0.01)
        hub.on_bus_restored()
        async with asyncio.timeout(10):  # the restore's revalidation reached bob's connection
            while not held[0].stale:
                await asyncio.sleep(0.01)
        await lock.rollback()
        b = await hello
    finally:
        await locker.close()
    assert [m["seq"] for m in await b.messages(room["id"], 1)] == [last]


async def test_a_client_ahead_of_a_lagging_node_gets_nothing_twice(server, make_account, make_room, connect):
    """A client that saw more on another node than this node has delivered yet (a node lagging after a
    bus outage) resumes here: when this node catches up, what the client has is not sent again (the
    chaos run found such duplicates)."""
    from chatserver import keys
    from storage import messages as message_store
    from storage.records import NewMessage, User

    alice, bob = await make_account(), await make_account()
    room, _ = await make_room(owner=alice, members=[bob])
    a = await connect(alice)  # the node serves the room
    await a.call("send", room=room["id"], text="heard", cid="heard")
    sender = User(id=alice.id, name=alice.user["name"], display=alice.user["display"])
    async with server.app[keys.DB].transaction() as db:  # stored, but this node never hears of them
        unheard = await message_store.append_batch(
            db, [NewMessage(room_id=room["id"], sender=sender, text=f"unheard {n}", cid=f"u{n}") for n in range(3)])
    seen_elsewhere = unheard[-1].message.seq
    b = await connect(bob, resume={room["id"]: seen_elsewhere})
    after = (await a.call("send", room=room["id"], text="after", cid="after"))["seq"]
    assert [m["seq"] for m in await b.messages(room["id"], 1)] == [after]


async def test_a_join_heard_during_a_hello_keeps_the_clients_resume(server, make_account, make_room, connect):
    """A `MembershipChanged` that reaches the node while a connection is in its hello (the bus is late:
    the join was stored before the hello) must not attach that room from the join onwards ahead of the
    hello: the client's own resume says where it starts (the chaos run found messages before a join
    skipped with no `gap`). The event comes while the hello reads the user's rooms, for both of bob's
    rooms: the hello attaches one first, the other is where the race was."""
    from chatserver import keys
    from chatserver.bus.events import MembershipChanged

    alice, bob = await make_account(), await make_account()
    hub = server.app[keys.HUB]
    rooms, joins = [], {}
    for n in range(2):
        room, _ = await make_room(owner=alice)
        a = await connect(alice)
        for i in range(2):
            await a.call("send", room=room["id"], text=f"before {i}", cid=f"b{i}")
        await alice.api.add_member(room["id"], bob.id)
        joins[room["id"]] = 3  # seq 1, 2: alice's messages; 3: bob joined
        rooms.append(room["id"])
    hello = asyncio.create_task(connect(bob, resume={room_id: 0 for room_id in rooms}))  # bob reads from the start
    async with asyncio.timeout(10):
        while not (held := hub.user_connections(bob.id)):
            await asyncio.sleep(0)  # the hello registered the connection and now reads bob's rooms
    assert not held[0].resumed
    for room_id, seq in joins.items():
        hub.on_control_event(MembershipChanged(room_id=room_id, user_id=bob.id, added=True, seq=seq))
    b = await hello
    for room_id in rooms:
        got = []
        while not got or got[-1] < joins[room_id]:
            got.append((await b.expect("message", room=room_id))["seq"])
        assert got == [1, 2, 3], room_id
