"""The WebSocket session (docs/protocol.md §4): hello, welcome, sub-protocols, resume and gap, heartbeat."""

from __future__ import annotations

import asyncio
import gc

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver import keys
from storage import tokens as token_store

from .conftest import JSON, MSGPACK, Closed, post_messages, seqs, with_settings


async def assert_refused(wire, first_frame, *, ref=None) -> None:
    """Send `first_frame`; expect `error` `unauthorized` (echoing `ref`), then close 4001."""
    if first_frame is not None:
        await wire.send(first_frame)
    error = await wire.recv()
    assert error["op"] == "error" and error["code"] == "unauthorized", error
    assert error.get("ref") == ref
    assert await wire.closed() == 4001


# ---------------------------------------------------------------------------- hello


async def test_hello_with_unknown_token_is_refused(connect):
    wire = await connect(hello=False)
    await assert_refused(wire, {"op": "hello", "token": "not-a-token", "ref": 7}, ref=7)


async def test_hello_without_token_is_refused(connect):
    wire = await connect(hello=False)
    await assert_refused(wire, {"op": "hello", "ref": "h1"}, ref="h1")


async def test_first_frame_other_than_hello_is_refused(connect, make_account):
    alice = await make_account()
    wire = await connect(hello=False)
    await assert_refused(wire, {"op": "ping", "ref": 3}, ref=3)
    # A valid token does not help once the first frame was wrong.
    wire = await connect(hello=False)
    await assert_refused(wire, {"op": "send", "room": "r", "text": "x", "cid": "c", "token": alice.token})


async def test_undecodable_first_frame_is_refused(connect):
    wire = await connect(hello=False)
    await assert_refused(wire, "{not json")


async def test_a_hello_reads_the_token_cache_but_does_not_fill_it(server, api, connect, http, make_account):
    """A socket's hello happens once per connection: remembering its token made every idle
    connection of a distinct user hold a cache entry. An HTTP request does fill the cache. Each
    token is then revoked in the database behind the node's back (no bus news), so only a
    cached entry can still answer for it within the cache's 5 s."""
    alice = await make_account()
    by_hello = await api.login(alice.user["name"], "correct horse")  # never used over HTTP
    by_http = await api.login(alice.user["name"], "correct horse")
    await connect(by_hello)
    assert (await http("GET", "/api/me", token=by_http)).status == 200
    async with server.app[keys.DB].transaction() as db:
        for raw in (by_hello, by_http):
            assert await token_store.revoke(db, raw)
    assert (await http("GET", "/api/me", token=by_http)).status == 200  # remembered: the cache works here
    assert (await http("GET", "/api/me", token=by_hello)).status == 401  # the hello did not fill it


async def test_token_is_never_taken_from_the_url(connect, make_account):
    alice = await make_account()
    for query in (f"token={alice.token}", f"access_token={alice.token}"):
        wire = await connect(hello=False, path=f"/ws?{query}")
        await assert_refused(wire, {"op": "ping"})
    # Nor from a header in place of hello.
    wire = await connect(hello=False, headers={"Authorization": f"Bearer {alice.token}"})
    await assert_refused(wire, {"op": "ping"})


@with_settings(hello_timeout=0.5)
async def test_no_hello_within_hello_timeout_is_refused(connect):
    wire = await connect(hello=False)
    await assert_refused(wire, None)


async def test_second_hello_is_invalid_and_harmless(connect, make_account):
    alice = await make_account()
    wire = await connect(alice)
    reply = await wire.request({"op": "hello", "token": alice.token})
    assert reply["op"] == "error" and reply["code"] == "invalid"
    assert (await wire.call("ping"))["op"] == "pong"


async def test_revoked_token_is_refused_at_hello(connect, make_account):
    alice = await make_account()
    await alice.api.delete("/api/tokens/current")
    wire = await connect(hello=False)
    await assert_refused(wire, {"op": "hello", "token": alice.token})


# ---------------------------------------------------------------------------- welcome


async def test_welcome_describes_user_session_limits_and_rooms(connect, make_account, make_room, server):
    alice = await make_account("alice")
    bob = await make_account("bob")
    room, _ = await make_room(owner=alice, members=[bob], name="class of 2010")  # seq 1: bob joined
    empty = await alice.api.create_room("empty")
    await post_messages(alice, room["id"], 2)  # seqs 2, 3

    wire = await connect(bob, protocol=JSON)
    welcome = wire.welcome
    assert welcome["ref"] is not None
    assert welcome["user"] == {"id": bob.id, "name": bob.user["name"], "display": bob.user["display"], "bot": False, "avatar": None}
    assert isinstance(welcome["session"], str) and welcome["session"]
    assert welcome["heartbeat"] == server.settings.heartbeat
    assert welcome["limits"] == {"max_frame": 65536, "max_text": 4000}
    assert welcome["rooms"] == [
        {"id": room["id"], "name": "class of 2010", "last_seq": 3, "read_seq": 1, "unread": 2, "mentions": 0,
         "kind": "group"}
    ]

    other = await connect(alice)
    assert other.welcome["session"] != welcome["session"]
    states = {r["id"]: r for r in other.welcome["rooms"]}
    assert states[empty["id"]] == {"id": empty["id"], "name": "empty", "last_seq": 0, "read_seq": 0, "unread": 0,
                                   "mentions": 0, "kind": "group"}
    assert (states[room["id"]]["read_seq"], states[room["id"]]["unread"]) == (3, 0)  # her sends moved it


@with_settings(max_frame=20000, max_text=1000, heartbeat=9.5)
async def test_welcome_reports_configured_limits(connect, make_account):
    wire = await connect(await make_account())
    assert wire.welcome["limits"] == {"max_frame": 20000, "max_text": 1000}
    assert wire.welcome["heartbeat"] == 9.5


async def test_msgpack_subprotocol_speaks_binary_frames(connect, make_account, make_room):
    alice = await make_account()
    room, _ = await make_room(owner=alice)
    wire = await connect(alice, protocol=MSGPACK)
    assert wire.ws.protocol == MSGPACK
    ack = await wire.call("send", room=room["id"], text="packed", cid="p1")
    assert ack["op"] == "ack" and ack["seq"] == 1
    message = await wire.expect("message", room=room["id"])
    assert message["text"] == "packed" and message["from"]["id"] == alice.id
    # A text frame on a msgpack connection is a bad frame, not a crash.
    await wire.send('{"op":"ping"}')
    assert (await wire.expect("error"))["code"] == "bad_frame"
    assert (await wire.call("ping"))["op"] == "pong"


async def test_no_subprotocol_gets_json(connect, make_account):
    wire = await connect(await make_account(), protocol=None)
    assert wire.ws.protocol is None
    assert (await wire.call("ping"))["op"] == "pong"


# ---------------------------------------------------------------------------- resume


async def test_resume_sends_exactly_the_missed_messages_in_order_before_live(connect, make_account, make_room):
    alice = await make_account()
    room, _ = await make_room(owner=alice)
    room_id = room["id"]
    await post_messages(alice, room_id, 10)  # seqs 1..10; the reader saw up to 3

    # Keep sending while the reader resumes: replayed and live messages must join seamlessly.
    async def keep_sending():
        return await post_messages(alice, room_id, 10, prefix="live")

    sender = asyncio.create_task(keep_sending())
    wire = await connect(alice, resume={room_id: 3})
    sent = await sender
    got = await wire.messages(room_id, sent[-1] - 3)
    assert seqs(got) == list(range(4, sent[-1] + 1))
    assert [m["text"] for m in got[:7]] == [f"m{i}" for i in range(3, 10)]
    assert [f for f in await wire.drain() if f["op"] == "message"] == []  # nothing twice


async def test_resume_is_per_room_and_rooms_not_listed_are_live_only(connect, make_account, make_room):
    alice = await make_account()
    resumed, _ = await make_room(owner=alice, name="resumed")
    live, _ = await make_room(owner=alice, name="live")
    await post_messages(alice, resumed["id"], 3)
    await post_messages(alice, live["id"], 3)
    wire = await connect(alice, resume={resumed["id"]: 1})
    frames = await wire.drain()
    assert [(f["room"], f["seq"]) for f in frames if f["op"] == "message"] == [(resumed["id"], 2), (resumed["id"], 3)]


async def test_resume_with_nothing_missed_replays_nothing(connect, make_account, make_room):
    alice = await make_account()
    room, _ = await make_room(owner=alice)
    await post_messages(alice, room["id"], 2)
    wire = await connect(alice, resume={room["id"]: 2})
    assert [f for f in await wire.drain() if f["op"] == "message"] == []


@with_settings(replay_limit=5)
@pytest.mark.parametrize("protocol", [JSON, MSGPACK])
async def test_resume_past_replay_limit_sends_gap_then_the_newest(connect, make_account, make_room, protocol):
    alice = await make_account()
    room, _ = await make_room(owner=alice)
    room_id = room["id"]
    await post_messages(alice, room_id, 14)
    wire = await connect(alice, resume={room_id: 2}, protocol=protocol)
    frames = [f for f in await wire.drain() if f.get("room") == room_id]
    assert frames[0] == {"op": "gap", "room": room_id, "from": 3, "to": 9}
    assert seqs(frames[1:]) == [10, 11, 12, 13, 14]
    # The client pages the gap with history.
    page = await wire.call("history", room=room_id, after=2, limit=7)
    assert seqs(page["messages"]) == list(range(3, 10))


@with_settings(replay_limit=5)
async def test_resume_at_exactly_replay_limit_has_no_gap(connect, make_account, make_room):
    alice = await make_account()
    room, _ = await make_room(owner=alice)
    await post_messages(alice, room["id"], 7)
    wire = await connect(alice, resume={room["id"]: 2})
    frames = await wire.drain()
    assert [f["op"] for f in frames] == ["message"] * 5
    assert seqs(frames) == [3, 4, 5, 6, 7]


async def test_resume_of_a_room_the_user_is_not_in_replays_nothing(connect, make_account, make_room):
    alice = await make_account()
    bob = await make_account()
    room, _ = await make_room(owner=alice)
    await post_messages(alice, room["id"], 3)
    wire = await connect(bob, resume={room["id"]: 0, "no-such-room": 0})
    assert [f for f in await wire.drain() if f["op"] in ("message", "gap")] == []


# ---------------------------------------------------------------------------- heartbeat


# Heartbeats of a second: the server and the test share one event loop, and on a loaded machine a
# stall of a few tenths of a second would look like a silent peer.
@with_settings(heartbeat=1.0)
async def test_server_pings_every_heartbeat_and_cuts_a_silent_connection(connect, make_account):
    alice = await make_account()
    wire = await connect(alice, autoping=False)  # we see the pings and answer none
    pings = 0
    try:
        while True:
            msg = await asyncio.wait_for(wire.ws.receive(), 5)
            if msg.type.name == "PING":
                pings += 1
            elif msg.type.name in ("CLOSE", "CLOSED", "CLOSING", "ERROR"):
                break
    except Closed:
        pass
    assert pings >= 1
    assert wire.ws.close_code is not None


@with_settings(heartbeat=1.0)
async def test_connection_answering_pings_stays_open(connect, make_account):
    wire = await connect(await make_account())
    # Read (aiohttp answers each ping while reading) for four heartbeats, sending nothing ourselves.
    with pytest.raises(TimeoutError):
        await wire.recv(timeout=4.0)
    assert (await wire.call("ping"))["op"] == "pong"



# ---------------------------------------------------------------------------- memory


def _live(cls) -> int:
    gc.collect()
    return sum(isinstance(obj, cls) for obj in gc.get_objects())


async def test_open_connections_do_not_keep_what_their_start_used(make_account, make_room, connect):
    """A session's long-lived frame must not hold the storage connection it read the rooms with."""
    alice = await make_account("alice")
    await make_room(owner=alice)
    before = _live(AsyncConnection)
    wires = [await connect(alice) for _ in range(10)]
    assert all(w.welcome["rooms"] for w in wires)
    assert _live(AsyncConnection) - before < 5
