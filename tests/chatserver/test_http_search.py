"""Search over HTTP (docs/protocol.md §12.13): messages of the caller's rooms with marked snippets,
group discovery and record search, through a real server."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import quote


async def _say(account, room_id: str, text: str) -> dict:
    return await account.api.post(f"/api/rooms/{room_id}/messages", {"text": text, "cid": uuid.uuid4().hex})


async def _search(http, account, q: str, **params) -> dict:
    query = "&".join([f"q={quote(q)}", *(f"{k}={quote(str(v))}" for k, v in params.items())])
    reply = await http("GET", f"/api/search?{query}", token=account.token)
    assert reply.status == 200, reply
    return reply.body


async def test_message_search_items_snippets_and_membership(http, make_account, make_room):
    alice, bob = await make_account(), await make_account()
    shared, _ = await make_room(owner=alice, members=[bob])
    secret, _ = await make_room(owner=alice)
    sent = await _say(alice, shared["id"], "明天北京大学同学会, bring the Photos")
    await _say(alice, secret["id"], "北京 secret")
    body = await _search(http, bob, "北京")
    assert body["next"] is None
    [item] = body["items"]
    assert item == {
        "room": shared["id"], "seq": sent["seq"], "id": sent["id"], "ts": sent["ts"], "from": alice.user,
        "text": "明天北京大学同学会, bring the Photos", "snippet": "明天[北京]大学同学会, bring the Photos",
    }
    assert (await _search(http, bob, "photos"))["items"][0]["snippet"] == "明天北京大学同学会, bring the [Photos]"
    assert len((await _search(http, alice, "北京"))["items"]) == 2
    assert (await _search(http, alice, "北京", room=secret["id"]))["items"][0]["text"] == "北京 secret"
    (await http("GET", f"/api/search?q=abc&room={secret['id']}", token=bob.token)).error(403, "forbidden")
    (await http("GET", "/api/search?q=abc&room=nowhere", token=bob.token)).error(404, "not_found")
    # Leaving ends it at once: the next search reads the memberships of that moment.
    await bob.api.delete(f"/api/rooms/{shared['id']}/members/{bob.id}")
    assert (await _search(http, bob, "北京"))["items"] == []


async def test_message_search_never_shows_recalled_text(http, make_account, make_room, connect):
    alice = await make_account()
    room, _ = await make_room(owner=alice)
    sent = await _say(alice, room["id"], "oops wrong chat")
    wire = await connect(alice)
    assert (await wire.call("recall", room=room["id"], seq=sent["seq"]))["op"] == "ok"
    assert (await _search(http, alice, "oops"))["items"] == []
    assert (await _search(http, alice, "op"))["items"] == []


async def test_message_query_bounds_and_bad_cursor_are_422(http, make_account):
    alice = await make_account()
    for q in ("", "a", "x" * 201):
        (await http("GET", f"/api/search?q={q}", token=alice.token)).error(422, "invalid", "q")
    (await http("GET", "/api/search?q=abc&before=nope.x", token=alice.token)).error(422, "invalid", "before")
    (await http("GET", "/api/search?q=abc&limit=0", token=alice.token)).error(422, "invalid", "limit")


async def test_message_paging_is_stable_while_others_send(http, make_account, make_room):
    alice = await make_account()
    room, _ = await make_room(owner=alice)
    for i in range(7):
        await _say(alice, room["id"], f"search me {i}")
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"before": cursor} if cursor else {})}
        body, _ = await asyncio.gather(_search(http, alice, "search me", **params),
                                       _say(alice, room["id"], "search me, sent while paging"))
        seen += [item["text"] for item in body["items"] if item["text"].startswith("search me ")]
        cursor = body["next"]
        if cursor is None:
            break
    # Messages sent while paging are newer than every page after the first: they never repeat or shift one.
    assert seen == [f"search me {i}" for i in range(6, -1, -1)]


async def test_discover_lists_open_groups_never_invite_ones(http, make_account, make_room):
    alice, stranger = await make_account(), await make_account()
    club, _ = await make_room(owner=alice, join_policy="open", name="围棋 club")
    await make_room(owner=alice, join_policy="invite", name="围棋 secret")
    reply = await http("GET", f"/api/rooms/discover?q={quote('围棋')}", token=stranger.token)
    assert reply.status == 200 and reply.body["next"] is None
    assert [g["id"] for g in reply.body["items"]] == [club["id"]]
    assert reply.body["items"][0]["join_policy"] == "open" and reply.body["items"][0]["owner"] == alice.user
    (await http("GET", "/api/rooms/discover?q=a", token=stranger.token)).error(422, "invalid", "q")
    # The route is not taken for a room called "discover".
    assert (await http("GET", "/api/rooms/discover", token=stranger.token)).status == 200


async def test_record_search_best_match_first_and_filters(http, make_account):
    alice, stranger = await make_account(), await make_account()
    desc = await alice.api.post("/api/alumni", {"name": "老同学", "school": "一中", "description": "清华 2010 级"})
    named = await alice.api.post("/api/alumni", {"name": "清华 2010", "school": "清华大学", "year": 2010})
    other_year = await alice.api.post("/api/alumni", {"name": "清华 2011", "school": "清华大学", "year": 2011,
                                                      "class_name": "物理 1 班"})
    reply = await http("GET", f"/api/alumni?q={quote('清华')}", token=stranger.token)
    assert [r["id"] for r in reply.body["items"]] == [other_year["id"], named["id"], desc["id"]]
    assert reply.body["items"][1] == named
    by_year = await http("GET", f"/api/alumni?school={quote('清华')}&year=2010", token=stranger.token)
    assert [r["id"] for r in by_year.body["items"]] == [named["id"]]
    by_class = await http("GET", f"/api/alumni?class_name={quote('物理')}", token=stranger.token)
    assert [r["id"] for r in by_class.body["items"]] == [other_year["id"]]
    page = await http("GET", f"/api/alumni?q={quote('清华')}&limit=2", token=stranger.token)
    rest = await http("GET", f"/api/alumni?q={quote('清华')}&limit=2&before={page.body['next']}", token=stranger.token)
    assert [r["id"] for r in page.body["items"] + rest.body["items"]] == [other_year["id"], named["id"], desc["id"]]
    (await http("GET", "/api/alumni?year=abc", token=stranger.token)).error(422, "invalid", "year")
    (await http("GET", "/api/alumni?q=x", token=stranger.token)).error(422, "invalid", "q")


async def test_a_stranger_finds_nothing_private(http, make_account, make_room, connect):
    """docs/protocol.md §12.13: no members-only profile field, no message of a room they are not in (or
    left), no invite-only group, no recalled text."""
    owner, mate, stranger = await make_account("priv"), await make_account("priv"), await make_account()
    secret_room, _ = await make_room(owner=owner, members=[mate], name="隐私 group")
    open_room, _ = await make_room(owner=owner, join_policy="open", name="隐私 open")
    record = await owner.api.post("/api/alumni", {"name": "隐私 class", "school": "school"})
    await owner.api.put(f"/api/alumni/{record['id']}/profile",
                        {"city": "隐私城", "employer": "隐私公司", "visibility": {"employer": "public"}})
    await _say(owner, secret_room["id"], "隐私 in the invite group")
    await _say(owner, open_room["id"], "隐私 in the open group")
    recalled = await _say(owner, open_room["id"], "隐私 recalled")
    wire = await connect(owner)
    assert (await wire.call("recall", room=open_room["id"], seq=recalled["seq"]))["op"] == "ok"

    everything = []
    for path in (f"/api/users?q={quote('priv')}", f"/api/alumni?q={quote('隐私')}",
                 f"/api/rooms/discover?q={quote('隐私')}", f"/api/search?q={quote('隐私')}",
                 f"/api/users/{owner.id}"):
        reply = await http("GET", path, token=stranger.token)
        assert reply.status == 200, (path, reply)
        everything.append(reply.body)
    text = str(everything)
    for private in ("隐私城", "隐私公司", "invite group", "隐私 group", "recalled", "open group"):
        assert private not in text, private
    users, records, groups, messages, profile = everything
    assert all(set(u) == set(owner.user) for u in users["items"]) and len(users["items"]) == 2
    assert set(profile) == {*owner.user, "created"}
    assert [r["id"] for r in records["items"]] == [record["id"]] and "profile" not in records["items"][0]
    assert [g["id"] for g in groups["items"]] == [open_room["id"]]
    assert messages["items"] == []
    # Joining the open group shows its messages (never the recalled one); leaving hides them again.
    await stranger.api.post(f"/api/rooms/{open_room['id']}/members", {"user_id": stranger.id})
    assert [i["text"] for i in (await _search(http, stranger, "隐私"))["items"]] == ["隐私 in the open group"]
    await stranger.api.delete(f"/api/rooms/{open_room['id']}/members/{stranger.id}")
    assert (await _search(http, stranger, "隐私"))["items"] == []
