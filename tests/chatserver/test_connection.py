"""A connection's bounded outgoing buffer (docs/protocol.md §10.7): a reader that stops is cut with 4009,
and nobody else notices."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from websockets.asyncio.client import connect as connect_ws
from websockets.exceptions import ConnectionClosed

from .conftest import eventually, seqs, with_settings

BIG = 50_000  # characters per message: a few of them fill the small buffer below


async def slow_consumer_closes(http) -> float:
    reply = await http("GET", "/metrics")
    found = re.search(r'chat_closes_total\{reason="slow_consumer"\} ([0-9.e+]+)', reply.body)
    return float(found.group(1)) if found else 0.0


@with_settings(send_buffer=65536, max_text=BIG, max_frame=BIG + 1024, send_rate=10_000.0, send_burst=10_000)
async def test_reader_that_stops_is_cut_with_4009_and_others_get_everything(
    server, make_account, make_room, connect, http
):
    alice = await make_account("alice")
    bob = await make_account("bob")
    sam = await make_account("slow")
    room, _ = await make_room(owner=alice, members=[bob, sam])
    room_id = room["id"]
    a = await connect(alice)
    b = await connect(bob)

    # A client that says hello and then reads nothing more (its queue and the kernel's fill up).
    async with connect_ws(server.ws_url, subprotocols=["chat.v1.json"], max_queue=4) as slow:
        await slow.send(json.dumps({"op": "hello", "token": sam.token}))
        assert json.loads(await slow.recv())["op"] == "welcome"  # from here on every message is sent to it

        total = 0
        started = time.monotonic()
        while not await slow_consumer_closes(http):
            assert time.monotonic() - started < 20, "the slow reader was never cut"
            for _ in range(10):
                await a.send({"op": "send", "room": room_id, "text": "x" * BIG, "cid": f"c{total}"})
                total += 1
            # Bob keeps up while the slow one falls behind: he is never held back.
            got = await b.messages(room_id, 10)
            assert seqs(got) == list(range(total - 7, total + 3))  # seqs 1, 2: bob and sam joined
        # Cut means offline at once, not once the peer answers or the close grace ends: the slow
        # one has read nothing, so it has not answered the close (docs/protocol.md §8.1).
        assert sam.id not in (await a.call("presence", room=room_id))["online"]

        # Now read what the slow one was sent: messages in order, then the close frame 4009.
        received = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frame = json.loads(await asyncio.wait_for(slow.recv(), 5))
                if frame["op"] == "message":
                    received.append(frame["seq"])
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4009
        assert received == list(range(3, received[-1] + 1)) and received[-1] <= total + 2

    # The room goes on: everyone else still gets every message.
    ack = await a.call("send", room=room_id, text="still here", cid="after")
    assert (await b.expect("message", seq=ack["seq"]))["text"] == "still here"

    async def sam_offline():
        return sam.id not in (await a.call("presence", room=room_id))["online"]

    await eventually(sam_offline)

    # "Reconnect and resume": the slow one gets every message it missed, once, in order.
    again = await connect(sam, resume={room_id: received[-1]})
    missed = await again.messages(room_id, ack["seq"] - received[-1])
    assert seqs(missed) == list(range(received[-1] + 1, ack["seq"] + 1))
    assert [f for f in await again.drain() if f["op"] == "message"] == []


async def test_a_connection_the_server_closes_is_offline_from_the_decision(pair, http):
    """Presence drops a connection when the server decides to close it (here 4001, its token revoked),
    not when the peer answers the close frame or the grace runs out."""
    room_id, a, b = pair
    bob_id = b.user_id
    assert bob_id in (await a.call("presence", room=room_id))["online"]
    reply = await http("DELETE", "/api/tokens/current", token=b.account.token)
    assert reply.status == 204
    # Bob's connection has read nothing since, so it has not answered the 4001 yet.
    assert bob_id not in (await a.call("presence", room=room_id))["online"]
    assert await b.closed() == 4001
