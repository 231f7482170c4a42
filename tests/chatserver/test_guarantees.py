"""Guarantees of docs/protocol.md §10 on one node: order, no loss on reconnect, idempotent cids, isolation."""

from __future__ import annotations

import asyncio
import uuid

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
