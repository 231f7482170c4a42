"""Posts over HTTP: one post in the author's space and in each record it is published to, announced
in the records' groups, and kept in step everywhere by edits, re-targeting and deletion."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from .alumni_helpers import bound_class, create_record, fails, next_system, system_in_history


async def join_record(owner, record: dict, *accounts) -> None:
    """Each account joins the record: the owner invites, they accept."""
    reply = await owner.api.post(f"/api/alumni/{record['id']}/invitations", {"user_ids": [a.id for a in accounts]})
    by_invitee = {i["invitee"]["id"]: i["id"] for i in reply["invitations"]}
    for account in accounts:
        await account.api.post(f"/api/invitations/{by_invitee[account.id]}/accept")


async def classmates(make_account, make_room):
    """A record bound to a group; `mate` is in both: (owner, mate, record, room)."""
    owner, record, room, (mate,) = await bound_class(make_account, make_room, members=1)
    await join_record(owner, record, mate)
    return owner, mate, record, room


async def record_posts(account, record: dict) -> list[str]:
    return [p["id"] for p in (await account.api.get(f"/api/alumni/{record['id']}/posts"))["items"]]


async def space_posts(viewer, author) -> list[str]:
    return [p["id"] for p in (await viewer.api.get(f"/api/users/{author.id}/space"))["posts"]]


async def post_entries(account, record: dict) -> list[dict]:
    feed = await account.api.get(f"/api/alumni/{record['id']}/feed")
    return [e for e in feed["items"] if e["type"] == "post"]


def summary_of(post: dict) -> dict:
    return {"id": post["id"], "title": post["title"], "excerpt": post["body"][:200], "author": post["author"]}


# ---------------------------------------------------------------------------- space -> record


async def test_a_space_post_shows_in_each_record_its_feed_and_its_group(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    async with mate.client() as live:
        post = await owner.api.post("/api/posts", {"title": "Reunion", "body": "x" * 250,
                                                  "alumni_ids": [record["id"]]})
        event = await next_system(live, room["id"], "post.published")
    assert set(post) == {"id", "author", "title", "body", "created", "updated", "alumni_ids", "files", "likes",
                         "liked", "comments"}
    assert (post["likes"], post["liked"], post["comments"]) == (0, False, 0)
    assert post["author"] == owner.user and post["alumni_ids"] == [record["id"]]
    assert post["created"] == post["updated"]
    assert event.system.data == {"post": summary_of(post)}
    assert len(event.system.data["post"]["excerpt"]) == 200
    [stored] = await system_in_history(mate, room["id"], "post.published")
    assert stored["seq"] == event.seq and stored["system"]["data"] == event.system.data
    assert await record_posts(mate, record) == [post["id"]]
    assert await space_posts(mate, owner) == [post["id"]]
    [entry] = await post_entries(mate, record)
    assert entry["actor"] == owner.user and entry["data"] == {"post": summary_of(post)}
    assert await mate.api.get(f"/api/posts/{post['id']}") == post


async def test_a_post_in_no_record_is_only_in_the_space(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    post = await owner.api.post("/api/posts", {"title": "Just me", "body": ""})
    assert post["alumni_ids"] == []
    assert await space_posts(mate, owner) == [post["id"]]
    assert await record_posts(mate, record) == []
    assert await system_in_history(owner, room["id"], "post.published") == []


async def test_a_record_without_a_group_lists_the_post_and_announces_nothing(make_account):
    alice = await make_account("alice")
    record = await create_record(alice)
    post = await alice.api.post("/api/posts", {"title": "t", "body": "b", "alumni_ids": [record["id"]]})
    assert await record_posts(alice, record) == [post["id"]]
    assert len(await post_entries(alice, record)) == 1


# ---------------------------------------------------------------------------- record -> space


async def test_a_post_written_from_a_record_shows_in_the_authors_space(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    async with owner.client() as live:
        post = await mate.api.post(f"/api/alumni/{record['id']}/posts", {"title": "Hi all", "body": "from 3B"})
        event = await next_system(live, room["id"], "post.published")
    assert post["author"] == mate.user and post["alumni_ids"] == [record["id"]]
    assert event.system.data["post"]["id"] == post["id"]
    assert await space_posts(mate, mate) == [post["id"]]
    assert await space_posts(owner, mate) == [post["id"]]
    assert await record_posts(owner, record) == [post["id"]]


async def test_writing_from_a_record_needs_membership(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    stranger = await make_account("stranger")
    await fails(stranger.api.post(f"/api/alumni/{record['id']}/posts", {"title": "t", "body": "b"}), 403)
    await fails(stranger.api.post("/api/alumni/a_missing/posts", {"title": "t", "body": "b"}), 404)


# ---------------------------------------------------------------------------- edit


async def test_an_edit_reaches_every_place_and_each_group(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    post = await owner.api.post("/api/posts", {"title": "Old", "body": "old", "alumni_ids": [record["id"]]})
    async with mate.client() as live:
        edited = await owner.api.patch(f"/api/posts/{post['id']}", {"title": "New", "body": "new body"})
        event = await next_system(live, room["id"], "post.updated")
    assert (edited["title"], edited["body"], edited["created"]) == ("New", "new body", post["created"])
    assert edited["updated"] >= post["updated"] and edited["alumni_ids"] == [record["id"]]
    assert event.system.data == {"post": summary_of(edited)}
    assert await mate.api.get(f"/api/posts/{post['id']}") == edited
    [listed] = (await mate.api.get(f"/api/alumni/{record['id']}/posts"))["items"]
    assert listed == edited
    assert (await mate.api.get(f"/api/users/{owner.id}/space"))["posts"] == [edited]
    [entry] = await post_entries(mate, record)
    assert entry["data"] == {"post": summary_of(edited)}
    assert len(await system_in_history(mate, room["id"], "post.updated")) == 1


async def test_an_edit_that_changes_nothing_announces_nothing(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    post = await owner.api.post("/api/posts", {"title": "Same", "body": "same", "alumni_ids": [record["id"]]})
    assert await owner.api.patch(f"/api/posts/{post['id']}", {"title": "Same"}) == post
    assert await owner.api.patch(f"/api/posts/{post['id']}", {}) == post
    assert await system_in_history(owner, room["id"], "post.updated") == []


async def test_only_the_author_edits_or_deletes(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    post = await owner.api.post("/api/posts", {"title": "Mine", "body": "b", "alumni_ids": [record["id"]]})
    await fails(mate.api.patch(f"/api/posts/{post['id']}", {"title": "Theirs"}), 403, "forbidden")
    await fails(mate.api.delete(f"/api/posts/{post['id']}"), 403, "forbidden")
    await fails(mate.api.patch("/api/posts/p_missing", {"title": "x"}), 404)
    await fails(mate.api.delete("/api/posts/p_missing"), 404)
    assert (await owner.api.get(f"/api/posts/{post['id']}"))["title"] == "Mine"


# ---------------------------------------------------------------------------- delete


async def test_a_deleted_post_is_gone_everywhere_and_group_messages_keep_their_seqs(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    post = await owner.api.post("/api/posts", {"title": "Bye", "body": "b", "alumni_ids": [record["id"]]})
    [published] = await system_in_history(mate, room["id"], "post.published")
    async with mate.client() as live:
        assert await owner.api.delete(f"/api/posts/{post['id']}") is None
        event = await next_system(live, room["id"], "post.deleted")
    assert event.system.data["post"]["id"] == post["id"] and event.seq == published["seq"] + 1
    for account in (owner, mate):
        await fails(account.api.get(f"/api/posts/{post['id']}"), 404)
    await fails(owner.api.patch(f"/api/posts/{post['id']}", {"title": "again"}), 404)
    await fails(owner.api.delete(f"/api/posts/{post['id']}"), 404)
    assert await record_posts(mate, record) == []
    assert await space_posts(owner, owner) == []
    assert await post_entries(mate, record) == []
    assert all(e["data"].get("post", {}).get("id") != post["id"] for e in (await owner.api.get("/api/me/feed"))["items"])
    [still] = await system_in_history(mate, room["id"], "post.published")
    assert still == published
    history = (await mate.api.get(f"/api/rooms/{room['id']}/messages"))["messages"]
    assert [m["seq"] for m in history] == list(range(1, len(history) + 1))


# ---------------------------------------------------------------------------- re-target


async def test_retargeting_publishes_once_and_withdraws_from_removed_records(make_account, make_room):
    owner, mate, first, first_room = await classmates(make_account, make_room)
    second_room, _ = await make_room(owner=owner, members=[mate], name="club")
    second = await create_record(owner, name="Club")
    await owner.api.put(f"/api/alumni/{second['id']}/room", {"room_id": second_room["id"]})
    await join_record(owner, second, mate)
    post = await owner.api.post("/api/posts", {"title": "News", "body": "b", "alumni_ids": [first["id"]]})
    path = f"/api/posts/{post['id']}"

    async with mate.client() as live:
        both = await owner.api.patch(path, {"alumni_ids": [first["id"], second["id"]]})
        event = await next_system(live, second_room["id"], "post.published")
    assert both["alumni_ids"] == [first["id"], second["id"]]
    assert event.system.data == {"post": summary_of(both)}
    assert await record_posts(mate, second) == [post["id"]] and len(await post_entries(mate, second)) == 1
    assert await owner.api.patch(path, {"alumni_ids": [first["id"], second["id"]]}) == both
    assert len(await system_in_history(mate, second_room["id"], "post.published")) == 1
    assert len(await system_in_history(mate, first_room["id"], "post.published")) == 1

    async with mate.client() as live:
        only_second = await owner.api.patch(path, {"alumni_ids": [second["id"]]})
        withdrawn = await next_system(live, first_room["id"], "post.deleted")
    assert only_second["alumni_ids"] == [second["id"]] and withdrawn.system.data["post"]["id"] == post["id"]
    assert await record_posts(mate, first) == [] and await post_entries(mate, first) == []
    assert await record_posts(mate, second) == [post["id"]] and len(await post_entries(mate, second)) == 1
    assert await space_posts(owner, owner) == [post["id"]]

    # Adding it back is a new publication there.
    await owner.api.patch(path, {"alumni_ids": [second["id"], first["id"]]})
    assert len(await system_in_history(mate, first_room["id"], "post.published")) == 2
    assert (await owner.api.get(path))["alumni_ids"] == [second["id"], first["id"]]


async def test_an_edit_with_a_new_record_updates_the_old_and_publishes_to_the_new(make_account, make_room):
    owner, mate, first, first_room = await classmates(make_account, make_room)
    second_room, _ = await make_room(owner=owner, name="club")
    second = await create_record(owner, name="Club")
    await owner.api.put(f"/api/alumni/{second['id']}/room", {"room_id": second_room["id"]})
    post = await owner.api.post("/api/posts", {"title": "v1", "body": "b", "alumni_ids": [first["id"]]})
    await owner.api.patch(f"/api/posts/{post['id']}", {"title": "v2", "alumni_ids": [first["id"], second["id"]]})
    [updated] = await system_in_history(owner, first_room["id"], "post.updated")
    [published] = await system_in_history(owner, second_room["id"], "post.published")
    assert updated["system"]["data"]["post"]["title"] == published["system"]["data"]["post"]["title"] == "v2"
    assert await system_in_history(owner, second_room["id"], "post.updated") == []


async def test_retargeting_needs_membership_of_each_new_record(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    other = await create_record(await make_account("other"))
    post = await mate.api.post("/api/posts", {"title": "t", "body": "b", "alumni_ids": [record["id"]]})
    await fails(mate.api.patch(f"/api/posts/{post['id']}", {"alumni_ids": [other["id"]]}), 403)
    await fails(mate.api.patch(f"/api/posts/{post['id']}", {"alumni_ids": ["a_missing"]}), 404)
    assert (await mate.api.get(f"/api/posts/{post['id']}"))["alumni_ids"] == [record["id"]]


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("body", "field", "limit"),
    [
        ({"title": "t" * 201, "body": "b"}, "title", "200"),
        ({"title": "t", "body": "b" * 100_001}, "body", "100000"),
    ],
    ids=["title", "body"],
)
async def test_oversize_text_is_refused_naming_the_limit(make_account, body, field, limit):
    alice = await make_account("alice")
    error = await fails(alice.api.post("/api/posts", body), 422, "invalid", field)
    assert limit in error.message
    post = await alice.api.post("/api/posts", {"title": "t" * 200, "body": "b" * 100_000})
    await fails(alice.api.patch(f"/api/posts/{post['id']}", body), 422, "invalid", field)


async def test_a_full_length_post_fits_even_as_escaped_json(server, make_account):
    """100,000 emoji, \\u-escaped as Python's json does by default, are about 1.2 MB on the wire."""
    alice = await make_account("alice")
    raw = json.dumps({"title": "emoji", "body": "\U0001F600" * 100_000}).encode()
    assert len(raw) > 1024 * 1024
    async with aiohttp.ClientSession() as session:
        async with session.post(server.url + "/api/posts", data=raw, headers={
            "Authorization": f"Bearer {alice.token}", "Content-Type": "application/json"}) as response:
            assert response.status == 201, await response.text()
            assert len((await response.json())["body"]) == 100_000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": "b"}, "title"),
        ({"title": "t"}, "body"),
        ({"title": "   ", "body": "b"}, "title"),
        ({"title": "t", "body": "b", "alumni_ids": "a_1"}, "alumni_ids"),
    ],
    ids=["no-title", "no-body", "blank-title", "ids-not-a-list"],
)
async def test_bad_fields_are_422_naming_the_field(make_account, body, field):
    alice = await make_account("alice")
    await fails(alice.api.post("/api/posts", body), 422, "invalid", field)


async def test_publishing_needs_membership_of_each_known_record(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    stranger = await make_account("stranger")
    await fails(stranger.api.post("/api/posts", {"title": "t", "body": "b", "alumni_ids": [record["id"]]}), 403)
    await fails(mate.api.post("/api/posts", {"title": "t", "body": "b", "alumni_ids": ["a_missing"]}), 404)
    assert await space_posts(stranger, stranger) == [] and await space_posts(mate, mate) == []


async def test_text_is_stored_and_returned_as_given_never_as_html(make_account, server):
    alice = await make_account("alice")
    title, body = "<img src=x onerror=alert(1)>", "<script>alert('x')</script>\n&amp; \u202e"
    post = await alice.api.post("/api/posts", {"title": title, "body": body})
    assert (post["title"], post["body"]) == (title, body)
    session = alice.api._http()
    async with session.get(f"{server.url}/api/posts/{post['id']}", headers={"Authorization": f"Bearer {alice.token}"}) as r:
        assert r.content_type == "application/json" and r.headers["X-Content-Type-Options"] == "nosniff"


# ---------------------------------------------------------------------------- privacy


async def test_non_members_cannot_list_or_read_a_records_posts(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    stranger = await make_account("stranger")
    shared = await owner.api.post("/api/posts", {"title": "class only", "body": "b", "alumni_ids": [record["id"]]})
    public = await owner.api.post("/api/posts", {"title": "anyone", "body": "b"})
    await fails(stranger.api.get(f"/api/alumni/{record['id']}/posts"), 403, "forbidden")
    await fails(stranger.api.get("/api/alumni/a_missing/posts"), 404)
    await fails(stranger.api.get(f"/api/posts/{shared['id']}"), 403, "forbidden")
    assert await stranger.api.get(f"/api/posts/{public['id']}") == public
    assert await space_posts(stranger, owner) == [public["id"]]
    assert set(await space_posts(mate, owner)) == {public["id"], shared["id"]}
    await fails(stranger.api.get("/api/posts/p_missing"), 404)


async def test_announcements_reach_only_the_bound_groups_members(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    outsider = await make_account("outsider")
    await fails(outsider.api.get(f"/api/rooms/{room['id']}/messages"), 403)
    async with outsider.client() as live:
        await owner.api.post("/api/posts", {"title": "t", "body": "b", "alumni_ids": [record["id"]]})
        with pytest.raises(TimeoutError):
            await next_system(live, room["id"], "post.published", timeout=0.5)


async def test_members_of_the_bound_group_read_the_post_announced_to_them(make_account, make_room):
    owner, record, room, (in_record, group_only) = await bound_class(make_account, make_room, members=2)
    await join_record(owner, record, in_record)
    stranger = await make_account("stranger")
    post = await owner.api.post("/api/posts", {"title": "t", "body": "b", "alumni_ids": [record["id"]]})
    [announced] = await system_in_history(group_only, room["id"], "post.published")
    assert await group_only.api.get(f"/api/posts/{announced['system']['data']['post']['id']}") == post
    assert await space_posts(group_only, owner) == [post["id"]]
    await fails(group_only.api.get(f"/api/alumni/{record['id']}/posts"), 403)  # the record's list: members
    await fails(stranger.api.get(f"/api/posts/{post['id']}"), 403)
    assert await space_posts(stranger, owner) == []


async def test_concurrent_retargets_to_the_same_record_announce_it_once(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    post = await owner.api.post("/api/posts", {"title": "t", "body": "b"})
    body = {"alumni_ids": [record["id"]]}
    results = await asyncio.gather(*(owner.api.patch(f"/api/posts/{post['id']}", body) for _ in range(5)))
    assert all(r["alumni_ids"] == [record["id"]] for r in results)
    assert len(await system_in_history(mate, room["id"], "post.published")) == 1
    assert len(await post_entries(mate, record)) == 1


async def test_websocket_history_holds_each_announcement_in_seq_order(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    post = await owner.api.post("/api/posts", {"title": "t", "body": "b", "alumni_ids": [record["id"]]})
    await owner.api.patch(f"/api/posts/{post['id']}", {"body": "b2"})
    await owner.api.delete(f"/api/posts/{post['id']}")
    async with mate.client() as live:
        page = await live.history(room["id"])
    posts = [(m.system.type, m.system.data["post"]["id"]) for m in page.messages if m.system
             and m.system.type.startswith("post.")]
    assert posts == [("post.published", post["id"]), ("post.updated", post["id"]), ("post.deleted", post["id"])]
    assert [m.seq for m in page.messages] == list(range(1, len(page.messages) + 1))
