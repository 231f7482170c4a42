"""Posts: stored once, linked to records in the author's order, listed newest first by keyset."""

from storage import alumni, feed, posts


async def _record(db, owner, *members, name="Class of 2010"):
    async with db.transaction() as conn:
        record = await alumni.create_record(conn, name=name, school="No. 1 High", owner_id=owner.id)
        for member in members:
            await alumni.add_member(conn, record.id, member.id)
        return record


async def _post(db, author, title="Hello", body="text", record_ids=()):
    async with db.transaction() as conn:
        return await posts.create(conn, author=author, title=title, body=body, record_ids=list(record_ids))


def _newest_first(*made):
    """Ids in list order: newest first by (created, id), ties (same millisecond) by id."""
    return [p.id for p in sorted(made, key=lambda p: (p.created, p.id), reverse=True)]


async def _ids(db, fetch, **kwargs):
    async with db.read() as conn:
        return [p.id for p in await fetch(conn, **kwargs)]


async def test_a_post_is_stored_once_and_linked_in_the_authors_order(db, make_user):
    alice = await make_user("alice")
    first, second = await _record(db, alice, name="A"), await _record(db, alice, name="B")
    post = await _post(db, alice, "Reunion", "<b>not html</b>", [second.id, first.id])
    async with db.read() as conn:
        got = await posts.get(conn, post.id)
    assert got == post
    assert got.alumni_ids == (second.id, first.id)
    assert (got.title, got.body, got.author.name) == ("Reunion", "<b>not html</b>", "alice")
    assert got.created == got.updated > 0


async def test_get_of_an_unknown_post_is_none(db):
    async with db.read() as conn:
        assert await posts.get(conn, "p_missing") is None


async def test_set_records_adds_removes_and_reorders(db, make_user):
    alice = await make_user("alice")
    a, b, c = [await _record(db, alice, name=n) for n in "abc"]
    post = await _post(db, alice, record_ids=[a.id, b.id])
    async with db.transaction() as conn:
        await posts.set_records(conn, post, [c.id, a.id])
        got = await posts.get(conn, post.id)
    assert got.alumni_ids == (c.id, a.id)
    async with db.read() as conn:
        assert [p.id for p in await posts.in_record(conn, b.id)] == []
        assert [p.id for p in await posts.in_record(conn, c.id)] == [post.id]


async def test_edit_changes_only_what_is_given_and_moves_updated(db, make_user):
    alice = await make_user("alice")
    post = await _post(db, alice, "Old", "body")
    async with db.transaction() as conn:
        updated = await posts.edit(conn, post.id, title="New")
        got = await posts.get(conn, post.id)
    assert (got.title, got.body, got.created) == ("New", "body", post.created)
    assert got.updated == updated >= post.updated


async def test_delete_removes_the_post_and_its_links(db, make_user):
    alice = await make_user("alice")
    record = await _record(db, alice)
    post = await _post(db, alice, record_ids=[record.id])
    async with db.transaction() as conn:
        assert await posts.delete_post(conn, post.id) is True
        assert await posts.delete_post(conn, post.id) is False
    async with db.read() as conn:
        assert await posts.get(conn, post.id) is None
        assert await posts.in_record(conn, record.id) == []
        assert await posts.by_author(conn, alice.id) == []


async def test_a_space_shows_record_posts_only_to_members_of_those_records(db, make_user):
    alice, bob = await make_user("alice"), await make_user("bob")
    shared = await _record(db, alice, bob, name="shared")
    private = await _record(db, alice, name="private")
    public = await _post(db, alice, "public")
    to_shared = await _post(db, alice, "shared", record_ids=[shared.id])
    to_private = await _post(db, alice, "private", record_ids=[private.id])
    assert await _ids(db, posts.by_author, author_id=alice.id) == _newest_first(public, to_shared, to_private)
    assert await _ids(db, posts.by_author, author_id=alice.id, audience={shared.id}) == _newest_first(
        public, to_shared
    )
    assert await _ids(db, posts.by_author, author_id=alice.id, audience=set()) == [public.id]


async def test_unshared_leaves_out_posts_in_the_given_records(db, make_user):
    alice = await make_user("alice")
    mine, other = await _record(db, alice, name="mine"), await _record(db, alice, name="other")
    alone = await _post(db, alice, "alone")
    in_other = await _post(db, alice, "other", record_ids=[other.id])
    await _post(db, alice, "mine", record_ids=[mine.id, other.id])
    got = await _ids(db, posts.unshared, author_id=alice.id, record_ids=[mine.id])
    assert got == _newest_first(alone, in_other)
    assert len(await _ids(db, posts.unshared, author_id=alice.id, record_ids=[])) == 3


async def test_keyset_pages_visit_every_post_once_while_new_ones_arrive(db, make_user):
    alice = await make_user("alice")
    record = await _record(db, alice)
    for i in range(7):
        await _post(db, alice, f"p{i}", record_ids=[record.id])
    for fetch, key in ((posts.in_record, {"record_id": record.id}), (posts.by_author, {"author_id": alice.id})):
        expected = await _ids(db, fetch, **key, limit=100)
        seen, before = [], None
        while page := await _page(db, fetch, key, before):
            seen += [p.id for p in page]
            before = (page[-1].created, page[-1].id)
            await _post(db, alice, "newer", record_ids=[record.id])  # arrives between pages
        assert seen == expected


async def _page(db, fetch, key, before):
    async with db.read() as conn:
        return await fetch(conn, **key, before=before, limit=3)


async def test_set_feed_data_rewrites_the_posts_entries_in_every_record(db, make_user):
    alice = await make_user("alice")
    a, b = await _record(db, alice, name="a"), await _record(db, alice, name="b")
    post = await _post(db, alice, record_ids=[a.id, b.id])
    async with db.transaction() as conn:
        for record in (a, b):
            await feed.add_entry(conn, record_id=record.id, type="post", actor_id=alice.id,
                                 data={"post": {"title": "old"}}, post_id=post.id)
        await posts.set_feed_data(conn, post.id, {"post": {"title": "new"}})
    async with db.read() as conn:
        entries = await feed.entries(conn, [a.id, b.id])
    post_entries = [e for e in entries if e.type == "post"]
    assert len(post_entries) == 2
    assert all(e.data == {"post": {"title": "new"}} for e in post_entries)


async def test_readable_records_are_the_users_records_and_those_bound_to_their_groups(
    db, make_user, make_room
):
    alice, bob, carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    own = await _record(db, bob, name="bob's")
    bound = await _record(db, alice, name="bound")
    await _record(db, alice, name="unbound")
    room = await make_room(alice, bob)
    async with db.transaction() as conn:
        await alumni.set_room(conn, bound.id, room.id)
    async with db.read() as conn:
        assert await posts.readable_records(conn, bob.id) == {own.id, bound.id}
        assert await posts.readable_records(conn, carol.id) == set()
