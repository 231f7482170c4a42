"""Comments and likes on posts (docs/protocol.md §12.12): the read rule, counts, notify, paging."""

from __future__ import annotations

from .alumni_helpers import bound_class
from .test_posts import join_record


async def _public_post(http, author) -> str:
    reply = await http("POST", "/api/posts", token=author.token, json={"title": "hello", "body": "world"})
    assert reply.status == 201
    return reply.body["id"]


async def test_likes_count_once_and_notify_the_author(make_account, http, connect):
    author = await make_account("author")
    fan = await make_account("fan")
    post = await _public_post(http, author)
    a = await connect(author)
    liked = await http("PUT", f"/api/posts/{post}/likes/me", token=fan.token)
    assert (liked.status, liked.body) == (200, {"count": 1, "liked": True})
    notify = await a.expect("notify", type="like")
    assert notify["post"] == post and notify["by"]["id"] == fan.id
    again = await http("PUT", f"/api/posts/{post}/likes/me", token=fan.token)
    assert again.body == {"count": 1, "liked": True}
    own = await http("PUT", f"/api/posts/{post}/likes/me", token=author.token)
    assert own.body == {"count": 2, "liked": True}
    seen = await http("GET", f"/api/posts/{post}", token=fan.token)
    assert (seen.body["likes"], seen.body["liked"], seen.body["comments"]) == (2, True, 0)
    space = await http("GET", f"/api/users/{author.id}/space", token=fan.token)
    assert [(p["likes"], p["liked"]) for p in space.body["posts"]] == [(2, True)]
    assert (await http("DELETE", f"/api/posts/{post}/likes/me", token=fan.token)).status == 204
    assert (await http("DELETE", f"/api/posts/{post}/likes/me", token=fan.token)).status == 204
    seen = await http("GET", f"/api/posts/{post}", token=fan.token)
    assert (seen.body["likes"], seen.body["liked"]) == (1, False)
    # Only the fan's like notified: the author's own did not (the next notify is a later comment's).
    await http("POST", f"/api/posts/{post}/comments", token=fan.token, json={"text": "nice"})
    assert (await a.expect("notify"))["type"] == "comment"


async def test_comments_page_like_history(make_account, http):
    author = await make_account("author")
    reader = await make_account("reader")
    post = await _public_post(http, author)
    made = []
    for n in range(5):
        reply = await http("POST", f"/api/posts/{post}/comments", token=reader.token, json={"text": f"c{n}"})
        assert reply.status == 201
        assert set(reply.body) == {"id", "post", "author", "text", "reply_to", "created"}
        made.append(reply.body)
    # Oldest to newest by (created, id): two comments of one millisecond follow their ids.
    order = [c["text"] for c in sorted(made, key=lambda c: (c["created"], c["id"]))]
    first = await http("GET", f"/api/posts/{post}/comments?limit=2", token=author.token)
    assert [c["text"] for c in first.body["items"]] == order[3:] and first.body["next"]
    second = await http("GET", f"/api/posts/{post}/comments?limit=2&before={first.body['next']}", token=author.token)
    assert [c["text"] for c in second.body["items"]] == order[1:3]
    last = await http("GET", f"/api/posts/{post}/comments?limit=2&before={second.body['next']}", token=author.token)
    assert [c["text"] for c in last.body["items"]] == order[:1] and last.body["next"] is None
    assert (await http("GET", f"/api/posts/{post}", token=reader.token)).body["comments"] == 5


async def test_comment_rules(make_account, http):
    author = await make_account("author")
    reader = await make_account("reader")
    other = await make_account("other")
    post = await _public_post(http, author)
    path = f"/api/posts/{post}/comments"
    (await http("POST", path, token=reader.token, json={"text": ""})).error(422, "invalid", "text")
    (await http("POST", path, token=reader.token, json={"text": "x" * 2001})).error(422, "invalid", "text")
    assert (await http("POST", path, token=reader.token, json={"text": "x" * 2000})).status == 201
    (await http("POST", path, token=reader.token, json={"text": "re", "reply_to": "c_nope"})).error(
        422, "invalid", "reply_to"
    )
    first = (await http("POST", path, token=reader.token, json={"text": "first"})).body
    reply = await http("POST", path, token=other.token, json={"text": "re", "reply_to": first["id"]})
    assert reply.status == 201 and reply.body["reply_to"] == first["id"]
    (await http("DELETE", f"{path}/{first['id']}", token=other.token)).error(403, "forbidden")
    assert (await http("DELETE", f"{path}/{first['id']}", token=reader.token)).status == 204
    assert (await http("DELETE", f"{path}/{reply.body['id']}", token=author.token)).status == 204  # the post's author
    (await http("DELETE", f"{path}/{first['id']}", token=reader.token)).error(404, "not_found")
    (await http("POST", "/api/posts/p_nope/comments", token=reader.token, json={"text": "x"})).error(404, "not_found")
    assert (await http("GET", f"/api/posts/{post}", token=reader.token)).body["comments"] == 1


async def test_a_record_post_is_for_its_readers_only(make_account, make_room, http):
    owner, record, room, (mate, classmate) = await bound_class(make_account, make_room, members=2)
    stranger = await make_account("stranger")
    await join_record(owner, record, classmate)
    post = (await http("POST", "/api/posts", token=owner.token,
                       json={"title": "t", "body": "b", "alumni_ids": [record["id"]]})).body["id"]
    for reader in (owner, mate, classmate):  # the author, a member of the bound group, of the record
        assert (await http("GET", f"/api/posts/{post}", token=reader.token)).status == 200
    (await http("GET", f"/api/posts/{post}", token=stranger.token)).error(403, "forbidden")
    (await http("PUT", f"/api/posts/{post}/likes/me", token=stranger.token)).error(403, "forbidden")
    (await http("POST", f"/api/posts/{post}/comments", token=stranger.token, json={"text": "x"})).error(
        403, "forbidden"
    )
    (await http("GET", f"/api/posts/{post}/comments", token=stranger.token)).error(403, "forbidden")
    assert (await http("POST", f"/api/posts/{post}/comments", token=mate.token, json={"text": "x"})).status == 201
    space = await http("GET", f"/api/users/{owner.id}/space", token=stranger.token)
    assert space.body["posts"] == []
