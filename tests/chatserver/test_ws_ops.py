"""Every client operation of docs/protocol.md §5 with its reply, `ref` echoed (int and string)."""

from __future__ import annotations

import asyncio
import time

import pytest

from .conftest import eventually, post_messages, seqs, with_settings


# ---------------------------------------------------------------------------- ref


async def test_reply_echoes_ref_of_any_kind(pair):
    room, a, _ = pair
    for ref in (1, 0, -5, 2**53, "r-1", "", "x" * 64):
        for frame in ({"op": "ping"}, {"op": "history", "room": room}, {"op": "presence", "room": room},
                      {"op": "read", "room": room, "seq": 1}, {"op": "send", "room": room, "text": "t", "cid": "c"}):
            reply = await a.request({**frame, "ref": ref})
            assert reply["ref"] == ref and type(reply["ref"]) is type(ref), (frame, reply)
            assert reply["op"] != "error", reply


async def test_error_replies_echo_ref(pair):
    _, a, _ = pair
    reply = await a.request({"op": "history", "room": "no-such-room", "ref": "lost"})
    assert reply == {"op": "error", "ref": "lost", "code": "not_found", "message": reply["message"]}


async def test_ref_longer_than_64_chars_is_invalid(pair):
    _, a, _ = pair
    await a.send({"op": "ping", "ref": "x" * 65})
    error = await a.expect("error")
    assert error["code"] == "invalid"
    assert (await a.call("ping"))["op"] == "pong"


# ---------------------------------------------------------------------------- send


async def test_send_acks_then_everyone_gets_the_message(pair):
    room, a, b = pair
    await a.send({"op": "send", "room": room, "text": "hello", "cid": "c-1", "ref": "s1"})
    ack = await a.recv()
    assert ack["op"] == "ack", ack  # the ack comes before the sender's own message event
    assert ack == {"op": "ack", "ref": "s1", "room": room, "seq": 2, "id": ack["id"], "ts": ack["ts"], "dup": False}
    assert isinstance(ack["id"], str) and isinstance(ack["ts"], int)
    own = await a.recv()
    theirs = await b.expect("message", room=room)
    assert own == theirs
    assert own == {
        "op": "message", "room": room, "seq": 2, "id": ack["id"], "ts": ack["ts"], "kind": "text", "text": "hello",
        "cid": "c-1", "from": {"id": a.user_id, "name": a.account.user["name"],
                               "display": a.account.user["display"], "bot": False, "avatar": None},
    }


async def test_ack_precedes_own_message_for_pipelined_sends(pair):
    room, a, _ = pair
    for i in range(20):
        await a.send({"op": "send", "room": room, "text": f"m{i}", "cid": f"p{i}", "ref": i})
    acked: set[int] = set()
    for _ in range(40):
        frame = await a.recv()
        if frame["op"] == "ack":
            acked.add(frame["seq"])
        else:
            assert frame["op"] == "message" and frame["seq"] in acked, frame
    assert len(acked) == 20


async def test_reply_to_and_mentions_are_echoed(pair):
    room, a, b = pair
    await a.call("send", room=room, text="first", cid="f")
    ack = await b.call("send", room=room, text="re", cid="r", reply_to=2, mentions=[a.user_id])
    message = await a.expect("message", seq=ack["seq"])
    assert message["reply_to"] == 2 and message["mentions"] == [a.user_id] and message["cid"] == "r"


async def test_repeated_cid_returns_first_ack_with_dup_and_creates_nothing(pair):
    room, a, b = pair
    first = await a.call("send", room=room, text="once", cid="same")
    again = await a.call("send", room=room, text="changed text", cid="same")
    assert again["dup"] is True and first["dup"] is False
    assert {k: again[k] for k in ("room", "seq", "id", "ts")} == {k: first[k] for k in ("room", "seq", "id", "ts")}
    frames = await b.drain()
    assert [(f["seq"], f["text"]) for f in frames if f["op"] == "message"] == [(2, "once")]
    history = await a.call("history", room=room)
    assert seqs(history["messages"]) == [1, 2]


async def test_same_cid_from_another_sender_or_room_is_a_new_message(pair, make_room):
    room, a, b = pair
    first = await a.call("send", room=room, text="a", cid="shared")
    other = await b.call("send", room=room, text="b", cid="shared")
    assert other["dup"] is False and other["seq"] == first["seq"] + 1
    second_room, _ = await make_room(owner=a.account)
    elsewhere = await a.call("send", room=second_room["id"], text="c", cid="shared")
    assert elsewhere["dup"] is False and elsewhere["seq"] == 1


async def test_cid_key_space_is_shared_by_websocket_and_http(pair):
    room, a, b = pair
    ack = await a.call("send", room=room, text="ws first", cid="both")
    repeat = await a.account.api.request("POST", f"/api/rooms/{room}/messages", {"text": "http", "cid": "both"})
    assert repeat == {"seq": ack["seq"], "id": ack["id"], "ts": ack["ts"], "dup": True}

    posted = await b.account.api.post(f"/api/rooms/{room}/messages", {"text": "http first", "cid": "both2"})
    assert posted["dup"] is False
    again = await b.call("send", room=room, text="ws", cid="both2")
    assert (again["seq"], again["id"], again["dup"]) == (posted["seq"], posted["id"], True)
    history = await a.call("history", room=room)
    assert [m["text"] for m in history["messages"][1:]] == ["ws first", "http first"]


async def test_send_with_wrong_fields_is_invalid(pair):
    room, a, b = pair
    for fields in (
        {"text": "x"},  # cid is required
        {"text": "x", "cid": ""},
        {"text": "x", "cid": "c" * 65},
        {"text": "   ", "cid": "blank"},
        {"text": 5, "cid": "num"},
        {"text": "x", "cid": "neg", "reply_to": 0},
        {"text": "x", "cid": "m", "mentions": "everyone"},
    ):
        reply = await a.request({"op": "send", "room": room, **fields})
        assert (reply["op"], reply["code"]) == ("error", "invalid"), (fields, reply)
    assert [f for f in await b.drain() if f["op"] == "message"] == []


async def test_text_over_max_text_is_too_large(pair):
    room, a, _ = pair
    reply = await a.request({"op": "send", "room": room, "text": "x" * 4001, "cid": "big"})
    assert reply["op"] == "error" and reply["code"] == "too_large"
    ack = await a.call("send", room=room, text="x" * 4000, cid="max")
    assert ack["seq"] == 2


async def test_mentions_all_is_for_owner_and_admins_only(pair, http):
    room, a, b = pair
    refused = await b.request({"op": "send", "room": room, "text": "hey @all", "cid": "all1", "mentions": "all"})
    assert refused["op"] == "error" and refused["code"] == "forbidden"
    ack = await a.call("send", room=room, text="hey @all", cid="all2", mentions="all")
    assert (await b.expect("message", seq=ack["seq"]))["mentions"] == "all"
    await a.account.api.put(f"/api/rooms/{room}/members/{b.user_id}/role", {"role": "admin"})
    ack = await b.call("send", room=room, text="admin @all", cid="all3", mentions="all")
    assert ack["dup"] is False


# ---------------------------------------------------------------------------- history


async def test_history_pages_both_ways_with_more(pair):
    room, a, _ = pair
    await post_messages(a.account, room, 9)  # seqs 2..10
    newest = await a.call("history", room=room, limit=3)
    assert newest["op"] == "history" and newest["room"] == room
    assert (seqs(newest["messages"]), newest["more"]) == ([8, 9, 10], True)
    older = await a.call("history", room=room, before=8, limit=3)
    assert (seqs(older["messages"]), older["more"]) == ([5, 6, 7], True)
    oldest = await a.call("history", room=room, before=3, limit=3)
    assert (seqs(oldest["messages"]), oldest["more"]) == ([1, 2], False)
    forward = await a.call("history", room=room, after=0, limit=3)
    assert (seqs(forward["messages"]), forward["more"]) == ([1, 2, 3], True)
    tail = await a.call("history", room=room, after=8, limit=3)
    assert (seqs(tail["messages"]), tail["more"]) == ([9, 10], False)
    everything = await a.call("history", room=room)  # default limit 50
    assert (seqs(everything["messages"]), everything["more"]) == (list(range(1, 11)), False)
    first = everything["messages"][0]
    assert first["kind"] == "system" and first["from"] is None and first["system"]["type"] == "member.joined"


async def test_history_default_limit_is_50(pair):
    room, a, _ = pair
    await post_messages(a.account, room, 54)  # seqs 2..55
    page = await a.call("history", room=room)
    assert (seqs(page["messages"]), page["more"]) == (list(range(6, 56)), True)
    page = await a.call("history", room=room, limit=100)
    assert (len(page["messages"]), page["more"]) == (55, False)


async def test_history_limit_out_of_bounds_is_invalid(pair):
    room, a, _ = pair
    for limit in (0, 101, -1, "ten"):
        reply = await a.request({"op": "history", "room": room, "limit": limit, "ref": "h"})
        assert (reply["op"], reply["code"], reply["ref"]) == ("error", "invalid", "h"), (limit, reply)
        assert "limit" in reply["message"]


# ---------------------------------------------------------------------------- join / leave


async def test_join_open_room_subscribes_every_connection_of_the_user(make_account, make_room, connect):
    alice = await make_account()
    carol = await make_account()
    room, _ = await make_room(owner=alice, join_policy="open")
    a = await connect(alice)
    c1 = await connect(carol)
    c2 = await connect(carol)
    reply = await c1.request({"op": "join", "room": room["id"], "ref": "j"})
    assert reply == {"op": "ok", "ref": "j"}
    joined = await a.expect("message", room=room["id"])
    assert joined["system"]["type"] == "member.joined" and joined["system"]["data"]["user"]["id"] == carol.id
    ack = await a.call("send", room=room["id"], text="welcome", cid="w")
    for conn in (c1, c2):
        assert (await conn.expect("message", seq=ack["seq"]))["text"] == "welcome"
    again = await c1.request({"op": "join", "room": room["id"]})
    assert (again["op"], again["code"]) == ("error", "conflict")


async def test_a_new_group_reaches_its_creators_open_connections(make_account, connect):
    alice = await make_account()
    first = await connect(alice)
    second = await connect(alice)
    room = await alice.api.create_room("fresh")
    ack = await first.call("send", room=room["id"], text="first words", cid="f1")
    assert ack["seq"] == 1  # creating posted nothing
    for conn in (first, second):
        assert (await conn.expect("message", room=room["id"], seq=1))["text"] == "first words"


async def test_join_invite_room_is_forbidden(pair, make_account, connect):
    room, _, b = pair
    carol = await make_account()
    c = await connect(carol)
    reply = await c.request({"op": "join", "room": room})
    assert (reply["op"], reply["code"]) == ("error", "forbidden")
    assert [f for f in await b.drain() if f["op"] == "message"] == []


async def test_leave_unsubscribes_and_announces(pair, connect):
    room, a, b = pair
    b2 = await connect(b.account)
    assert await b.request({"op": "leave", "room": room, "ref": "l"}) == {"op": "ok", "ref": "l"}
    left = await a.expect("message", room=room)
    assert (left["seq"], left["system"]["type"], left["system"]["data"]["user"]["id"]) == (2, "member.left", b.user_id)
    await a.call("send", room=room, text="after", cid="after")
    for conn in (b, b2):
        assert [f for f in await conn.drain() if f.get("room") == room and f.get("seq", 0) > 2] == []
    reply = await b.request({"op": "history", "room": room})
    assert reply["code"] == "forbidden"


async def test_owner_cannot_leave(pair):
    room, a, _ = pair
    reply = await a.request({"op": "leave", "room": room})
    assert (reply["op"], reply["code"]) == ("error", "conflict")


# ---------------------------------------------------------------------------- typing


async def test_typing_reaches_others_not_the_sender(pair, connect):
    room, a, b = pair
    a2 = await connect(a.account)
    await a.send({"op": "typing", "room": room})
    typing = await b.expect("typing")
    assert typing == {"op": "typing", "room": room, "user": {"id": a.user_id, "name": a.account.user["name"],
                                                              "display": a.account.user["display"], "bot": False, "avatar": None}}
    for conn in (a, a2):  # none of the sender's own connections
        assert [f for f in await conn.drain() if f["op"] == "typing"] == []


async def test_typing_has_no_reply_even_with_ref(pair):
    room, a, _ = pair
    await a.send({"op": "typing", "room": room, "ref": 9})
    assert await a.drain() == []


# ---------------------------------------------------------------------------- read


async def test_read_tells_the_users_other_connections(pair, connect):
    room, a, b = pair
    await post_messages(a.account, room, 3)  # seqs 2..4
    b2 = await connect(b.account)
    assert await b.request({"op": "read", "room": room, "seq": 3, "ref": "r"}) == {"op": "ok", "ref": "r"}
    assert await b2.expect("read") == {"op": "read", "room": room, "seq": 3}
    assert [f for f in await b.drain() if f["op"] == "read"] == []  # not the one that said it
    assert [f for f in await a.drain() if f["op"] == "read"] == []  # nor anyone else
    b3 = await connect(b.account)
    assert b3.welcome["rooms"][0]["read_seq"] == 3 and b3.welcome["rooms"][0]["unread"] == 1


async def test_read_moves_forward_only(pair, connect):
    room, a, b = pair
    await post_messages(a.account, room, 3)
    await b.call("read", room=room, seq=4)
    await b.call("read", room=room, seq=2)
    state = (await connect(b.account)).welcome["rooms"][0]
    assert (state["read_seq"], state["unread"]) == (4, 0)


# ---------------------------------------------------------------------------- recall


async def test_author_recalls_own_message(pair):
    room, a, b = pair
    ack = await b.call("send", room=room, text="oops", cid="oops")
    assert await b.request({"op": "recall", "room": room, "seq": ack["seq"], "ref": 4}) == {"op": "ok", "ref": 4}
    for conn in (a, b):
        recalled = await conn.expect("recalled")
        assert (recalled["room"], recalled["seq"], recalled["by"]["id"]) == (room, ack["seq"], b.user_id)
    history = await a.call("history", room=room)
    message = history["messages"][-2]
    assert message["seq"] == ack["seq"] and message["recalled"] is True
    assert message.get("text") is None
    # It keeps its seq; the recall is an update entry of its own (docs/protocol.md §6.4).
    assert seqs(history["messages"]) == [1, 2, 3]
    assert history["messages"][-1]["update"] == {"type": "recalled", "target": 2}


async def test_other_member_may_not_recall(pair):
    room, a, b = pair
    ack = await a.call("send", room=room, text="mine", cid="mine")
    reply = await b.request({"op": "recall", "room": room, "seq": ack["seq"]})
    assert (reply["op"], reply["code"]) == ("error", "forbidden")
    assert (await b.call("history", room=room))["messages"][-1]["text"] == "mine"


@with_settings(recall_window=0.3)
async def test_author_window_ends_but_admin_recalls_any_time(pair):
    room, a, b = pair
    ack = await b.call("send", room=room, text="old", cid="old")
    await asyncio.sleep(0.5)
    late = await b.request({"op": "recall", "room": room, "seq": ack["seq"]})
    assert (late["op"], late["code"]) == ("error", "forbidden")
    assert (await a.call("recall", room=room, seq=ack["seq"]))["op"] == "ok"
    recalled = await b.expect("recalled")
    assert recalled["by"]["id"] == a.user_id


async def test_recall_of_unknown_seq_or_system_message(pair):
    room, a, _ = pair
    missing = await a.request({"op": "recall", "room": room, "seq": 99})
    assert missing["code"] == "not_found"
    system = await a.request({"op": "recall", "room": room, "seq": 1})  # bob's member.joined
    assert system["code"] == "forbidden"


# ---------------------------------------------------------------------------- presence and ping


async def test_presence_counts_distinct_users_not_tabs(pair, connect, make_account, make_room):
    room, a, b = pair
    await connect(b.account)  # bob's second tab
    reply = await a.request({"op": "presence", "room": room, "ref": "p"})
    assert reply == {"op": "presence", "ref": "p", "room": room, "online": sorted([a.user_id, b.user_id]), "count": 2}
    await b.ws.close()
    reply = await a.call("presence", room=room)
    assert reply["count"] == 2  # the second tab is still there
    http = await a.account.api.get(f"/api/rooms/{room}/online")
    assert sorted(http["online"]) == sorted([a.user_id, b.user_id]) and http["count"] == 2


async def test_presence_forgets_users_whose_connections_all_closed(pair):
    room, a, b = pair
    await b.ws.close()

    async def only_alice_online():
        return (await a.call("presence", room=room))["online"] == [a.user_id]

    await eventually(only_alice_online)


async def test_ping_pongs_with_server_time(pair):
    _, a, _ = pair
    before = int(time.time() * 1000)
    pong = await a.request({"op": "ping", "ref": "p"})
    assert pong["op"] == "pong" and pong["ref"] == "p"
    assert before - 5000 <= pong["ts"] <= int(time.time() * 1000) + 5000


# ---------------------------------------------------------------------------- unknown rooms and strangers

ROOM_OPS = [
    {"op": "send", "text": "x", "cid": "c"},
    {"op": "history"},
    {"op": "leave"},
    {"op": "read", "seq": 1},
    {"op": "recall", "seq": 1},
    {"op": "presence"},
    {"op": "join"},
    {"op": "typing"},
]


async def test_unknown_room_is_not_found_for_every_op(pair):
    _, a, _ = pair
    for frame in ROOM_OPS:
        reply = await a.request({**frame, "room": "no-such-room", "ref": "nf"})
        assert (reply["op"], reply["code"], reply["ref"]) == ("error", "not_found", "nf"), (frame, reply)


async def test_existing_room_of_others_is_forbidden_for_every_op(pair, make_account, connect):
    room, a, _ = pair  # invite-only: `join` is forbidden too
    stranger = await connect(await make_account("stranger"))
    for frame in ROOM_OPS:
        reply = await stranger.request({**frame, "room": room, "ref": "fb"})
        assert (reply["op"], reply["code"], reply["ref"]) == ("error", "forbidden", "fb"), (frame, reply)
    assert [f for f in await a.drain() if f["op"] in ("message", "typing")] == []
