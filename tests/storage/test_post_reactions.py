"""storage.post_reactions: likes counted once, comments paged newest first, counts kept on the post."""

from storage import post_reactions, posts


async def _post(db, author):
    async with db.transaction() as conn:
        return await posts.create(conn, author=author, title="t", body="b")


async def test_likes_count_once_per_user(db, make_user):
    alice, bob = await make_user("alice"), await make_user("bob")
    post = await _post(db, alice)
    async with db.transaction() as conn:
        assert await post_reactions.like(conn, post.id, bob.id) == (True, 1)
        assert await post_reactions.like(conn, post.id, bob.id) == (False, 1)
        assert await post_reactions.like(conn, post.id, alice.id) == (True, 2)
    async with db.transaction() as conn:
        assert await post_reactions.unlike(conn, post.id, bob.id) is True
        assert await post_reactions.unlike(conn, post.id, bob.id) is False
        assert await post_reactions.liked_among(conn, alice.id, [post.id, "p_other"]) == {post.id}
        assert (await posts.get(conn, post.id)).likes == 1


async def test_comments_page_newest_first_and_count(db, make_user):
    alice = await make_user("alice")
    post = await _post(db, alice)
    async with db.transaction() as conn:
        made = [await post_reactions.add_comment(conn, post.id, alice, f"c{n}", None) for n in range(5)]
    # Newest first by (created, id): comments of one millisecond follow their ids.
    newest_first = [c.text for c in sorted(made, key=lambda c: (c.created, c.id), reverse=True)]
    async with db.read() as conn:
        first = await post_reactions.comments(conn, post.id, limit=2)
        assert [c.text for c in first] == newest_first[:2]
        older = await post_reactions.comments(conn, post.id, before=(first[-1].created, first[-1].id), limit=10)
        assert [c.text for c in older] == newest_first[2:]
        assert (await posts.get(conn, post.id)).comments == 5
    async with db.transaction() as conn:
        assert await post_reactions.delete_comment(conn, made[0]) is True
        assert await post_reactions.delete_comment(conn, made[0]) is False
        assert (await posts.get(conn, post.id)).comments == 4
        assert await post_reactions.get_comment(conn, made[0].id) is None
