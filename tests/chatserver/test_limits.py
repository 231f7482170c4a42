"""Limits of docs/protocol.md §13 over WebSocket: frame size (1009), text size, send rate (rate_limited, 4008)."""

from __future__ import annotations

import asyncio
import json

import aiohttp

import pytest

from .conftest import MSGPACK, Closed, with_settings


def send_frame_of_size(room_id: str, size: int, cid: str = "sized") -> str:
    """A JSON `send` frame of exactly `size` bytes."""
    empty = json.dumps({"op": "send", "room": room_id, "cid": cid, "text": ""})
    frame = json.dumps({"op": "send", "room": room_id, "cid": cid, "text": "x" * (size - len(empty))})
    assert len(frame.encode()) == size
    return frame


async def test_frame_over_default_max_frame_closes_1009(pair):
    room_id, wire, bystander = pair
    await wire.send(send_frame_of_size(room_id, 65537))
    assert await wire.closed() == 1009
    ack = await bystander.call("send", room=room_id, text="unharmed", cid="u")
    assert ack["seq"] == 2


@with_settings(max_frame=2048, max_text=4000)
async def test_configured_max_frame_is_the_boundary(pair):
    room_id, wire, _ = pair
    await wire.send(send_frame_of_size(room_id, 2048, cid="at"))
    assert (await wire.expect("ack"))["dup"] is False
    await wire.send(send_frame_of_size(room_id, 2049, cid="over"))
    assert await wire.closed() == 1009


@with_settings(max_frame=2048)
async def test_binary_frame_over_max_frame_closes_1009(make_account, connect):
    wire = await connect(await make_account(), protocol=MSGPACK)
    await wire.send(b"\x80" + b"\x00" * 4096)
    assert await wire.closed() == 1009


@with_settings(max_text=10)
async def test_configured_max_text(pair):
    room_id, wire, bystander = pair
    reply = await wire.request({"op": "send", "room": room_id, "text": "x" * 11, "cid": "long"})
    assert (reply["op"], reply["code"]) == ("error", "too_large")
    assert (await wire.call("send", room=room_id, text="x" * 10, cid="ok"))["seq"] == 2
    assert [m["text"] for m in await bystander.messages(room_id, 1)] == ["x" * 10]


# Slow refills: a loaded machine must not refill a token between the pipelined sends.
@with_settings(send_rate=1.0, send_burst=3)
async def test_sending_past_the_burst_is_rate_limited_with_retry_after(pair):
    room_id, wire, bystander = pair
    for i in range(3):
        await wire.send({"op": "send", "room": room_id, "text": f"m{i}", "cid": f"c{i}", "ref": i})
    await wire.send({"op": "send", "room": room_id, "text": "too fast", "cid": "fast", "ref": "fast"})
    replies = {}
    while len(replies) < 4:
        frame = await wire.recv()
        if "ref" in frame:
            replies[frame["ref"]] = frame
    assert [replies[i]["op"] for i in range(3)] == ["ack"] * 3
    limited = replies["fast"]
    assert (limited["op"], limited["code"]) == ("error", "rate_limited")
    assert isinstance(limited["retry_after"], int) and 0 < limited["retry_after"] <= 1000
    # Nothing was stored for the refused send; after waiting, sending works again.
    await asyncio.sleep(limited["retry_after"] / 1000 + 0.05)
    ack = await wire.call("send", room=room_id, text="patient", cid="fast")
    assert ack["dup"] is False and ack["seq"] == 5
    texts = [m["text"] for m in (await bystander.call("history", room=room_id))["messages"][1:]]
    assert texts == ["m0", "m1", "m2", "patient"]


@with_settings(send_rate=1.0, send_burst=3)
async def test_sustained_flooding_closes_4008_and_others_carry_on(pair):
    room_id, wire, bystander = pair
    codes = []
    with pytest.raises(Closed) as closed:
        for i in range(40):
            try:
                await wire.send({"op": "send", "room": room_id, "text": "flood", "cid": f"f{i}"})
            except ConnectionError:
                break
        while True:
            frame = await wire.recv()
            if frame["op"] in ("ack", "error"):
                codes.append(frame.get("code", "ack"))
    assert closed.value.code == 4008
    assert "rate_limited" in codes  # told to slow down before being cut
    ack = await bystander.call("send", room=room_id, text="unharmed", cid="u")
    assert (await bystander.expect("message", seq=ack["seq"]))["text"] == "unharmed"


async def test_a_burst_cut_with_4008_first_gets_the_ack_of_every_send_it_accepted(pair):
    """docs/protocol.md §8.2: a server-initiated close first answers every frame accepted before it.

    Default limits (20/s, burst 50): 200 sends in one go. Whatever the split between accepted and
    refused, each accepted send is stored and acked before the 4008, and nothing refused is stored.
    """
    room_id, wire, bystander = pair
    for i in range(200):
        await wire.send({"op": "send", "room": room_id, "text": f"b{i}", "cid": f"b{i}", "ref": i})
    acked, refused = {}, {}
    with pytest.raises(Closed) as closed:
        while True:
            frame = await wire.recv()
            if frame["op"] == "ack":
                acked[frame["ref"]] = frame["seq"]
            elif frame["op"] == "error":
                refused[frame["ref"]] = frame["code"]
    assert closed.value.code == 4008
    assert len(acked) >= 50, f"only {len(acked)} acks before the close"
    assert set(refused.values()) == {"rate_limited"}
    stored = (await bystander.call("history", room=room_id, after=1, limit=100))["messages"]
    stored += (await bystander.call("history", room=room_id, after=stored[-1]["seq"], limit=100))["messages"]
    assert {m["cid"]: m["seq"] for m in stored} == {f"b{ref}": seq for ref, seq in acked.items()}


@with_settings(send_rate=0.1, send_burst=2)
async def test_rate_limit_is_per_connection(pair, connect):
    room_id, wire, _ = pair
    replies = await wire.pipeline([{"op": "send", "room": room_id, "text": "x", "cid": f"c{i}"} for i in range(3)])
    assert [r.get("code", r["op"]) for r in replies] == ["ack", "ack", "rate_limited"]
    other_tab = await connect(wire.account)
    assert (await other_tab.call("send", room=room_id, text="other tab", cid="tab"))["op"] == "ack"


@with_settings(max_connections=2)
async def test_past_the_node_connection_limit_the_handshake_gets_503_until_one_closes(make_account, connect):
    alice, bob = await make_account("alice"), await make_account("bob")
    first = await connect(alice)
    await connect(bob)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(alice, hello=False)
    assert refused.value.status == 503
    await first.ws.close()
    for _ in range(100):  # the server counts the closed connection out once its session ends
        try:
            again = await connect(alice)
            break
        except aiohttp.WSServerHandshakeError:
            await asyncio.sleep(0.02)
    else:
        pytest.fail("the limit did not free a place after a connection closed")
    assert again.welcome["user"]["id"] == alice.id


@with_settings(max_user_connections=2)
async def test_past_the_per_user_limit_hello_is_refused_and_others_still_connect(make_account, connect):
    alice, bob = await make_account("alice"), await make_account("bob")
    await connect(alice)
    await connect(alice)
    third = await connect(alice, hello=False)
    reply = await third.request({"op": "hello", "token": alice.token, "ref": "h"})
    assert (reply["op"], reply["code"], reply.get("ref")) == ("error", "rate_limited", "h")
    assert reply["retry_after"] > 0  # docs/protocol.md §7: rate_limited carries retry_after (ms)
    assert await third.closed() == 4008  # the close that follows rate_limited
    assert (await connect(bob)).welcome["op"] == "welcome"
