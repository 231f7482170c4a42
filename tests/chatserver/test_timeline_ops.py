"""`edit`, `react`, `recall`, replies and mentions over WebSocket and HTTP (docs/protocol.md §6.4, §6.5)."""

from __future__ import annotations

import pytest

from .conftest import eventually, with_settings


def _reply(frame):
    return {k: frame[k] for k in ("seq", "excerpt")} | {"from": frame["from"]["id"]}


async def test_edit_is_an_entry_everyone_gets_and_history_folds(pair, http):
    room, a, b = pair
    ack = await a.call("send", room=room, text="helo", cid="c")
    ok = await a.call("edit", room=room, seq=ack["seq"], text="hello")
    assert set(ok) == {"op", "ref", "seq"} and ok["seq"] == ack["seq"] + 1
    for wire in (a, b):
        entry = await wire.expect("message", seq=ok["seq"])
        assert entry["kind"] == "update" and "cid" not in entry and "text" not in entry
        assert entry["from"]["id"] == a.user_id
        assert entry["update"] == {"type": "edited", "target": ack["seq"], "text": "hello",
                                   "edited_ts": entry["update"]["edited_ts"]}
    history = await b.call("history", room=room)
    original = next(m for m in history["messages"] if m["seq"] == ack["seq"])
    assert original["text"] == "hello" and original["edited_ts"] == entry["update"]["edited_ts"]
    assert original["reactions"] == [] and original["pinned"] is False
    assert history["messages"][-1]["kind"] == "update"
    # The page is folded up to the room's newest seq, the edit entry, and says so (docs/protocol.md §5.2).
    assert history["last_seq"] == ok["seq"]
    listed = await http("GET", f"/api/rooms/{room}/messages", token=b.account.token)
    assert listed.body["last_seq"] == ok["seq"] and listed.body["messages"] == history["messages"]
    edits = await http("GET", f"/api/rooms/{room}/messages/{ack['seq']}/edits", token=b.account.token)
    assert edits.status == 200 and [e["text"] for e in edits.body["items"]] == ["helo"]
    assert edits.body["items"][0]["ts"] == ack["ts"]


async def test_edit_rules(pair):
    room, a, b = pair
    mine = await a.call("send", room=room, text="mine", cid="m")

    async def code(wire, **fields):
        return (await wire.request({"op": "edit", "room": room, **fields}))

    assert (await code(b, seq=mine["seq"], text="x"))["code"] == "forbidden"
    assert (await code(a, seq=1, text="x"))["code"] == "invalid"  # seq 1: bob's member.joined
    assert (await code(a, seq=999, text="x"))["code"] == "not_found"
    assert (await code(a, seq=mine["seq"], text="x" * 4001))["code"] == "too_large"
    assert (await code(a, seq=mine["seq"], text=""))["code"] == "invalid"
    await a.call("recall", room=room, seq=mine["seq"])
    assert (await code(a, seq=mine["seq"], text="x"))["code"] == "invalid"


@with_settings(edit_window=0.001)
async def test_edit_past_the_window_is_forbidden(pair):
    room, a, _ = pair
    ack = await a.call("send", room=room, text="old", cid="o")

    async def refused():
        reply = await a.request({"op": "edit", "room": room, "seq": ack["seq"], "text": "new"})
        return reply.get("code") == "forbidden"

    await eventually(refused)


async def test_reactions_toggle_and_fold_with_me_per_caller(pair, http):
    room, a, b = pair
    ack = await a.call("send", room=room, text="react", cid="r")
    ok = await b.call("react", room=room, seq=ack["seq"], emoji="👍")
    assert set(ok) == {"op", "ref"}
    entry = await a.expect("message", seq=ack["seq"] + 1)
    assert await b.expect("message", seq=ack["seq"] + 1) == entry
    assert entry["kind"] == "update" and entry["update"] == {"type": "reaction", "target": ack["seq"],
                                                             "emoji": "👍", "on": True}
    # The same way twice: ok, and no entry (bob's next entry is alice's reaction).
    await b.call("react", room=room, seq=ack["seq"], emoji="👍", on=True)
    await a.call("react", room=room, seq=ack["seq"], emoji="👍")
    nxt = await b.expect("message", kind="update")
    assert nxt["seq"] == ack["seq"] + 2 and nxt["from"]["id"] == a.user_id
    for wire, me in ((a, True), (b, True)):
        history = await wire.call("history", room=room, before=ack["seq"] + 1)
        assert history["messages"][-1]["reactions"] == [{"emoji": "👍", "count": 2, "me": me}]
    await b.call("react", room=room, seq=ack["seq"], emoji="👍", on=False)
    history = await b.call("history", room=room, before=ack["seq"] + 1)
    assert history["messages"][-1]["reactions"] == [{"emoji": "👍", "count": 1, "me": False}]
    # HTTP: PUT gives the message as the caller now sees it, DELETE 204.
    put = await http("PUT", f"/api/rooms/{room}/messages/{ack['seq']}/reactions/%F0%9F%8E%89", token=b.account.token)
    assert put.status == 200 and put.body["reactions"] == [
        {"emoji": "👍", "count": 1, "me": False}, {"emoji": "🎉", "count": 1, "me": True}
    ]
    gone = await http("DELETE", f"/api/rooms/{room}/messages/{ack['seq']}/reactions/%F0%9F%8E%89",
                      token=b.account.token)
    assert gone.status == 204


async def test_react_rules(pair):
    room, a, b = pair
    ack = await a.call("send", room=room, text="many", cid="m")
    replies = await b.pipeline(
        [{"op": "react", "room": room, "seq": ack["seq"], "emoji": f"e{n}"} for n in range(21)]
    )
    assert [r["op"] for r in replies[:20]] == ["ok"] * 20
    assert replies[20]["code"] == "conflict"
    for bad in ("", "x" * 17):
        assert (await b.request({"op": "react", "room": room, "seq": ack["seq"], "emoji": bad}))["code"] == "invalid"
    assert (await b.request({"op": "react", "room": room, "seq": 999, "emoji": "x"}))["code"] == "not_found"


async def test_recall_makes_an_entry_and_the_live_event(pair):
    room, a, b = pair
    ack = await a.call("send", room=room, text="oops", cid="o")
    await a.call("recall", room=room, seq=ack["seq"])
    entry = await b.expect("message", seq=ack["seq"] + 1)
    assert entry["kind"] == "update" and entry["update"] == {"type": "recalled", "target": ack["seq"]}
    live = await b.expect("recalled")
    assert live == {"op": "recalled", "room": room, "seq": ack["seq"], "by": live["by"]}
    # Recalling again: ok, and no second entry.
    await a.call("recall", room=room, seq=ack["seq"])
    later = await a.call("send", room=room, text="next", cid="n")
    assert later["seq"] == ack["seq"] + 2


async def test_http_edit_returns_the_message(pair, http):
    room, a, b = pair
    ack = await a.call("send", room=room, text="typo", cid="t")
    reply = await http("PATCH", f"/api/rooms/{room}/messages/{ack['seq']}", token=a.account.token,
                       json={"text": "fixed"})
    assert reply.status == 200 and reply.body["text"] == "fixed" and reply.body["edited_ts"] >= ack["ts"]
    assert reply.body["seq"] == ack["seq"]
    refused = await http("PATCH", f"/api/rooms/{room}/messages/{ack['seq']}", token=b.account.token,
                         json={"text": "mine now"})
    refused.error(403, "forbidden")
    (await http("PATCH", f"/api/rooms/{room}/messages/nope", token=a.account.token, json={"text": "x"})).error(
        404, "not_found"
    )


async def test_update_entries_are_not_unread(pair, connect):
    room, a, b = pair
    ack = await a.call("send", room=room, text="hi", cid="h")
    await b.call("read", room=room, seq=ack["seq"])
    await b.call("react", room=room, seq=ack["seq"], emoji="👍")
    await a.call("edit", room=room, seq=ack["seq"], text="hi!")
    again = await connect(b.account)
    [state] = [r for r in again.welcome["rooms"] if r["id"] == room]
    assert state["unread"] == 0 and state["read_seq"] == ack["seq"] and state["last_seq"] == ack["seq"] + 2


async def test_reply_carries_the_quote_and_must_name_a_text_message(pair):
    room, a, b = pair
    ack = await a.call("send", room=room, text="original " * 20, cid="o")
    reply = await b.call("send", room=room, text="re", cid="r", reply_to=ack["seq"])
    message = await a.expect("message", seq=reply["seq"])
    assert message["reply_to"] == ack["seq"]
    assert _reply(message["reply"]) == {"seq": ack["seq"], "excerpt": ("original " * 20)[:100], "from": a.user_id}
    for target in (1, 999, reply["seq"] + 1):  # a system message, nothing, nothing yet
        error = await b.request({"op": "send", "room": room, "text": "re", "cid": f"x{target}", "reply_to": target})
        assert error["code"] == "invalid" and "reply_to" in error["message"]


async def test_mentions_notify_members_and_count_until_read(pair, make_account, connect, api, http):
    room, a, b = pair
    stranger = await make_account("stranger")
    error = await a.request({"op": "send", "room": room, "text": "hi", "cid": "s", "mentions": [stranger.id]})
    assert error["code"] == "invalid" and "mentions" in error["message"]
    b2 = await connect(b.account)
    ack = await a.call("send", room=room, text="@bob", cid="m", mentions=[b.user_id])
    for wire in (b, b2):
        notify = await wire.expect("notify", type="mention")
        assert notify == {"op": "notify", "type": "mention", "room": room, "seq": ack["seq"],
                          "from": notify["from"]}
        assert notify["from"]["id"] == a.user_id
    listed = await http("GET", "/api/rooms", token=b.account.token)
    assert [r["mentions"] for r in listed.body["items"] if r["id"] == room] == [1]
    again = await connect(b.account)
    assert [r["mentions"] for r in again.welcome["rooms"] if r["id"] == room] == [1]
    await b.call("read", room=room, seq=ack["seq"])
    listed = await http("GET", "/api/rooms", token=b.account.token)
    assert [r["mentions"] for r in listed.body["items"] if r["id"] == room] == [0]
    # "all" (an owner may): every member but the sender.
    await a.call("send", room=room, text="@all", cid="all", mentions="all")
    assert (await b.expect("notify", type="mention"))["room"] == room
    forbidden = await b.request({"op": "send", "room": room, "text": "@all", "cid": "b-all", "mentions": "all"})
    assert forbidden["code"] == "forbidden"


async def test_the_client_library_edits_and_reacts(make_account, make_room):
    alice = await make_account("alice")
    bob = await make_account("bob")
    room, _ = await make_room(owner=alice, members=[bob])
    room = room["id"]
    async with alice.client() as a, bob.client() as b:
        ack = await a.send(room, "helo")
        edited = await a.edit(room, ack.seq, "hello")
        assert edited.seq == ack.seq + 1
        await b.react(room, ack.seq, "👍")

        async def updates():
            while True:
                event = await b.next_event()
                if getattr(event, "kind", None) == "update":
                    return event

        first, second = await updates(), await updates()
        assert (first.update.type, first.update.text, second.update.emoji) == ("edited", "hello", "👍")
        page = await b.history(room)
        original = next(m for m in page.messages if m.seq == ack.seq)
        assert original.text == "hello" and [(r.emoji, r.count, r.me) for r in original.reactions] == [("👍", 1, True)]


@with_settings(send_rate=0.5, send_burst=2)
async def test_edit_and_react_share_the_send_rate_limit(pair):
    room, a, b = pair
    ack = await a.call("send", room=room, text="one", cid="1")
    await a.call("react", room=room, seq=ack["seq"], emoji="👍")
    limited = await a.request({"op": "edit", "room": room, "seq": ack["seq"], "text": "two"})
    assert limited["code"] == "rate_limited" and limited["retry_after"] > 0
