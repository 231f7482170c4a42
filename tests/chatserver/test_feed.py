"""Personal spaces and the personal feed: newest first, one keyset cursor that neither skips nor
repeats an entry while new ones arrive between pages."""

from __future__ import annotations

import pytest

from .alumni_helpers import create_record, fails
from .test_posts import classmates


async def all_pages(account, path: str, limit: int, between=None, before: str | None = None) -> list[dict]:
    """Every item of a paged list (after `before`), following `next`; `between()` runs after each page."""
    items = []
    while True:
        page = await account.api.get(path, limit=limit, **({"before": before} if before else {}))
        items += page["items"]
        if between is not None:
            await between()
        if page["next"] is None:
            return items
        before = page["next"]


def newest_first(items: list[dict]) -> bool:
    keys = [(i["ts"], i["id"]) for i in items]
    return keys == sorted(keys, reverse=True)


async def test_my_feed_merges_my_records_activity_with_my_own_posts(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    elsewhere = await create_record(await make_account("other"))
    own = await mate.api.post("/api/posts", {"title": "diary", "body": "just mine"})
    in_record = await mate.api.post("/api/posts", {"title": "to 3B", "body": "b", "alumni_ids": [record["id"]]})
    by_owner = await owner.api.post(f"/api/alumni/{record['id']}/posts", {"title": "from owner", "body": "b"})
    feed = await mate.api.get("/api/me/feed")
    items = feed["items"]
    assert feed["next"] is None and newest_first(items)
    assert {i["record"] for i in items} == {record["id"], None}  # nothing of records mate is not in
    assert elsewhere["id"] not in {i["record"] for i in items}
    posts = [(i["data"]["post"]["id"], i["record"]) for i in items if i["type"] == "post"]
    # Each post once: mate's post in the record comes as the record's entry, the other as mate's own.
    assert sorted(posts, key=str) == sorted(
        [(by_owner["id"], record["id"]), (in_record["id"], record["id"]), (own["id"], None)], key=str
    )
    mine = next(i for i in items if i["record"] is None)
    assert mine == {"id": own["id"], "ts": own["created"], "type": "post", "actor": mate.user, "record": None,
                    "data": {"post": {"id": own["id"], "title": "diary", "excerpt": "just mine",
                                      "author": mate.user}}}
    assert {"joined", "bound"} <= {i["type"] for i in items}
    assert (await owner.api.get("/api/alumni/" + record["id"] + "/feed"))["items"] == [
        i for i in items if i["record"] == record["id"]
    ]


async def test_the_cursor_neither_skips_nor_repeats_while_entries_arrive(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    for n in range(6):
        await owner.api.post("/api/posts", {"title": f"r{n}", "body": "b", "alumni_ids": [record["id"]]})
        await mate.api.post("/api/posts", {"title": f"m{n}", "body": "b"})
    snapshot = (await mate.api.get("/api/me/feed", limit=100))["items"]
    arrivals = iter(range(100))

    async def more_activity():
        n = next(arrivals)
        await owner.api.post("/api/posts", {"title": f"new r{n}", "body": "b", "alumni_ids": [record["id"]]})
        await mate.api.post("/api/posts", {"title": f"new m{n}", "body": "b"})

    paged = await all_pages(mate, "/api/me/feed", 4, between=more_activity)
    assert [i["id"] for i in paged] == [i["id"] for i in snapshot]


async def test_a_deleted_post_leaves_the_pages_after_the_cursor_intact(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    made = [await mate.api.post("/api/posts", {"title": f"p{n}", "body": "b"}) for n in range(5)]
    first = await mate.api.get("/api/me/feed", limit=2)
    await mate.api.delete(f"/api/posts/{first['items'][0]['id']}")
    rest = await all_pages(mate, "/api/me/feed", 2, before=first["next"])
    assert len({i["id"] for i in first["items"] + rest}) == len(first["items"]) + len(rest)
    assert {p["id"] for p in made} <= {i["id"] for i in first["items"] + rest}


async def test_someone_in_no_record_sees_their_own_posts(make_account):
    alice = await make_account("alice")
    assert await alice.api.get("/api/me/feed") == {"items": [], "next": None}
    post = await alice.api.post("/api/posts", {"title": "t", "body": "b"})
    assert [i["id"] for i in (await alice.api.get("/api/me/feed"))["items"]] == [post["id"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"before": "yesterday"}, "before")],
    ids=["limit-0", "limit-101", "bad-cursor"],
)
async def test_bad_paging_is_422_naming_the_field(make_account, query, field):
    alice = await make_account("alice")
    for path in ("/api/me/feed", f"/api/users/{alice.id}/space"):
        await fails(alice.api.get(path, **query), 422, "invalid", field)


async def test_a_space_has_the_user_their_posts_newest_first_and_their_records(make_account, make_room):
    owner, mate, record, room = await classmates(make_account, make_room)
    other = await create_record(mate, name="Club")
    made = [await mate.api.post("/api/posts", {"title": f"p{n}", "body": "b"}) for n in range(5)]
    space = await owner.api.get(f"/api/users/{mate.id}/space")
    assert space["user"] == mate.user
    keys = [(p["created"], p["id"]) for p in space["posts"]]
    assert keys == sorted(keys, reverse=True) and {p["id"] for p in made} == {k[1] for k in keys}
    assert [r["id"] for r in space["alumni"]] == [record["id"], other["id"]]
    assert space["alumni"][1] == other
    assert space["next"] is None


async def test_a_space_pages_its_posts_with_next(make_account):
    alice = await make_account("alice")
    made = [await alice.api.post("/api/posts", {"title": f"p{n}", "body": "b"}) for n in range(5)]
    first = await alice.api.get(f"/api/users/{alice.id}/space", limit=2)
    assert len(first["posts"]) == 2 and first["next"]
    seen = [p["id"] for p in first["posts"]]
    before = first["next"]
    while before:
        page = await alice.api.get(f"/api/users/{alice.id}/space", limit=2, before=before)
        seen += [p["id"] for p in page["posts"]]
        before = page["next"]
    assert sorted(seen) == sorted(p["id"] for p in made) and len(seen) == len(set(seen))


async def test_an_unknown_users_space_is_404(make_account):
    alice = await make_account("alice")
    await fails(alice.api.get("/api/users/u_missing/space"), 404)


async def test_a_records_posts_page_with_next(make_account):
    alice = await make_account("alice")
    record = await create_record(alice)
    made = [
        await alice.api.post("/api/posts", {"title": f"p{n}", "body": "b", "alumni_ids": [record["id"]]})
        for n in range(5)
    ]
    listed = await all_pages(alice, f"/api/alumni/{record['id']}/posts", 2)
    keys = [(p["created"], p["id"]) for p in listed]
    assert keys == sorted({(p["created"], p["id"]) for p in made}, reverse=True)
