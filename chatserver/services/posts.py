"""Use cases of posts and personal spaces (docs/protocol.md §12.8).

A post is stored once and linked to every record it is published to. Each
change is one transaction that also writes the records' feed entries and the
system messages of their bound groups (`post.published`, `post.updated`,
`post.deleted`), so a post never shows somewhere without its announcement or
the other way round; the messages are published on the bus after the commit.

Who may read a post: its author; when it is published to records, the
members of those records and of their bound groups (the groups are told of
it, title and excerpt included); when published to no record, any signed-in
user (the public part of the author's space). So a record's posts never
reach strangers through the author's space.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from client_proto.frames import MAX_FILES
from storage import alumni as alumni_store
from storage import feed as feed_store
from storage import post_reactions
from storage import files as file_store
from storage import posts as post_store
from storage import users as user_store
from storage.db import Database
from storage.records import AlumniRecord, Comment, FeedEntry, Post, User

from ..announcements import Announcement, Announcer, Person, PostDeleted, PostPublished, PostRef, PostUpdated
from ..bus.base import Bus
from ..bus.events import Notified
from ..views import user_json
from ..errors import forbidden, invalid, not_found

if TYPE_CHECKING:
    from .files import FileService

MAX_TITLE = 200
MAX_BODY = 100_000
MAX_RECORDS = 100  # records one post may be published to
EXCERPT = 200
MAX_COMMENT = 2000
Cursor = tuple[int, str]  # (ts, id) of the last item of the previous page


def post_ref(post: Post, *, excerpt: bool = True) -> PostRef:
    """What groups and feeds carry about a post: `{id, title, excerpt, author}` (no excerpt once deleted)."""
    return PostRef(id=post.id, title=post.title, author=Person.of(post.author),
                   excerpt=post.body[:EXCERPT] if excerpt else None)


def summary(post: Post) -> dict[str, Any]:
    """`post_ref` as the JSON object a feed entry stores."""
    return msgspec.to_builtins(post_ref(post))


@dataclass(frozen=True, slots=True)
class Space:
    """A user's space as one viewer sees it; `more` tells whether older posts exist."""

    user: User
    posts: list[Post]
    more: bool
    records: list[tuple[AlumniRecord, User]]  # with each record's owner


class PostService:
    def __init__(
        self, db: Database, announcer: Announcer, files: FileService | None = None, bus: Bus | None = None
    ):
        self._db = db
        self._announcer = announcer
        self._files = files  # files on posts (docs/protocol.md §12.10)
        self._bus = bus  # `notify` of likes and comments (None: a reader that changes nothing)

    async def create(
        self, author: User, title: str, body: str, alumni_ids: list[str] | None = None,
        files: list[str] | None = None,
    ) -> Post:
        """Write a post in the author's space, published to each record of `alumni_ids`, carrying
        `files` (the author's own uploads)."""
        _check_text(title, body)
        record_ids = _unique_ids(alumni_ids or [])
        async with self._db.transaction() as db:
            records = await _records_of_author(db, author, record_ids)
            post = await post_store.create(db, author=author, title=title, body=body, record_ids=record_ids)
            if files:
                post = await self._attach(db, author, post, files)
            announced = await self._announcer.store_many(db, await _publish(db, post, records, ts=post.created))
        self._announcer.publish(*announced)
        return post

    async def get(self, viewer: User, post_id: str) -> Post:
        async with self._db.read() as db:
            post = await post_store.get(db, post_id)
            if post is None:
                raise not_found("post")
            if not await may_read(db, viewer, post):
                raise forbidden("this post is shared with its records and their groups only")
            [post] = await _with_liked(db, viewer, [post])
        return post

    # -------------------------------------------------------------- likes and comments (§12.12)

    async def like(self, user: User, post_id: str) -> int:
        """Like a post the caller may read (once); the like count. The author is told (not of their own)."""
        async with self._db.transaction() as db:
            post = await self._readable(db, user, post_id)
            added, count = await post_reactions.like(db, post.id, user.id)
        if added:
            self._notify(post, "like", user)
        return count

    async def unlike(self, user: User, post_id: str) -> None:
        async with self._db.transaction() as db:
            post = await self._readable(db, user, post_id)
            await post_reactions.unlike(db, post.id, user.id)

    async def comment(self, user: User, post_id: str, text: str, reply_to: str | None = None) -> Comment:
        if not 1 <= len(text) <= MAX_COMMENT or not text.strip():
            raise invalid(f"text: 1 to {MAX_COMMENT} characters")
        async with self._db.transaction() as db:
            post = await self._readable(db, user, post_id)
            if reply_to is not None:
                original = await post_reactions.get_comment(db, reply_to)
                if original is None or original.post_id != post.id:
                    raise invalid("reply_to: must be a comment of this post")
            comment = await post_reactions.add_comment(db, post.id, user, text, reply_to)
        self._notify(post, "comment", user)
        return comment

    async def comments(
        self, user: User, post_id: str, *, before: Cursor | None = None, limit: int = 50
    ) -> tuple[list[Comment], bool]:
        """A page of comments: the newest before `before`, oldest first within the page; and `more`."""
        async with self._db.read() as db:
            post = await self._readable(db, user, post_id)
            found = await post_reactions.comments(db, post.id, before=before, limit=limit + 1)
        page = found[:limit]
        page.reverse()
        return page, len(found) > limit

    async def delete_comment(self, user: User, post_id: str, comment_id: str) -> None:
        """By the comment's author or the post's."""
        async with self._db.transaction() as db:
            post = await self._readable(db, user, post_id)
            comment = await post_reactions.get_comment(db, comment_id)
            if comment is None or comment.post_id != post.id:
                raise not_found("comment")
            if user.id not in (comment.author.id, post.author.id):
                raise forbidden("only the comment's author or the post's may delete it")
            await post_reactions.delete_comment(db, comment)

    async def _readable(self, db, user: User, post_id: str) -> Post:
        post = await post_store.get(db, post_id)
        if post is None:
            raise not_found("post")
        if not await may_read(db, user, post):
            raise forbidden("this post is shared with its records and their groups only")
        return post

    def _notify(self, post: Post, type_: str, by: User) -> None:
        """`notify` `comment` / `like` to the post's author, on every node; never for their own."""
        if by.id != post.author.id and self._bus is not None:
            self._bus.publish_control(
                Notified(user_ids=[post.author.id], type=type_, payload={"post": post.id, "by": user_json(by)})
            )

    async def update(
        self,
        author: User,
        post_id: str,
        *,
        title: str | None = None,
        body: str | None = None,
        alumni_ids: list[str] | None = None,
        files: list[str] | None = None,
    ) -> Post:
        """Change the text, the records and/or the files (the whole new list) of a post everywhere it shows.

        Records that stay get `post.updated` when the text changed; a record
        added gets `post.published` (once: it was not there before); a record
        removed loses the post and its feed entry, and its group gets
        `post.deleted`.
        """
        _check_text(title, body)
        async with self._db.transaction() as db:
            before = await _own_post(db, author, post_id)
            wanted = list(before.alumni_ids) if alumni_ids is None else _unique_ids(alumni_ids)
            text_changed = (title is not None and title != before.title) or (
                body is not None and body != before.body
            )
            if files is not None and [f["id"] for f in before.files or ()] != list(dict.fromkeys(files)):
                before = await self._attach(db, author, before, files)
                text_changed = True  # the post shows differently: `post.updated` tells its groups
            if not text_changed and wanted == list(before.alumni_ids):
                return before
            added = await _records_of_author(db, author, [r for r in wanted if r not in before.alumni_ids])
            removed = await _records(db, [r for r in before.alumni_ids if r not in wanted])
            kept = await _records(db, [r for r in wanted if r in before.alumni_ids])
            await post_store.edit(db, before.id, title=title, body=body)
            await post_store.set_records(db, before, wanted)
            post = await post_store.get(db, before.id)
            [post] = await _with_liked(db, author, [post])
            for record in removed:
                await feed_store.delete_for_post(db, post.id, record.id)
            pending = _withdraw(post, removed)
            if text_changed:
                await post_store.set_feed_data(db, post.id, {"post": summary(post)})
                pending += _system_in(kept, PostUpdated(post=post_ref(post)), _text(post, "updated"))
            pending += await _publish(db, post, added)
            announced = await self._announcer.store_many(db, pending)
        self._announcer.publish(*announced)
        return post

    async def delete(self, author: User, post_id: str) -> None:
        """Delete a post: gone from the space, every record and every feed; groups get `post.deleted`.

        The group messages that announced it keep their seqs: history is not rewritten.
        """
        async with self._db.transaction() as db:
            post = await _own_post(db, author, post_id)
            records = await _records(db, list(post.alumni_ids))
            await feed_store.delete_for_post(db, post.id)
            await post_store.delete_post(db, post.id)
            announced = await self._announcer.store_many(db, _withdraw(post, records))
        self._announcer.publish(*announced)

    async def in_record(
        self, viewer: User, record_id: str, *, before: Cursor | None = None, limit: int = 50
    ) -> tuple[list[Post], bool]:
        """A record's posts, newest first, for its members; and whether older ones exist."""
        async with self._db.read() as db:
            if await alumni_store.get_record(db, record_id) is None:
                raise not_found("alumni record")
            if not await alumni_store.is_member(db, record_id, viewer.id):
                raise forbidden("only members of the record may list its posts")
            posts = await post_store.in_record(db, record_id, before=before, limit=limit + 1)
            posts = await _with_liked(db, viewer, posts)
        return posts[:limit], len(posts) > limit

    async def create_in_record(
        self, author: User, record_id: str, title: str, body: str, files: list[str] | None = None
    ) -> Post:
        """The same post written from the record's side; it shows in the author's space too."""
        return await self.create(author, title, body, [record_id], files)

    async def space(self, viewer: User, user_id: str, *, before: Cursor | None = None, limit: int = 50) -> Space:
        """A user's space: who, their posts the viewer may read (newest first), the records they are in."""
        async with self._db.read() as db:
            user = await user_store.get(db, user_id)
            if user is None:
                raise not_found("user")
            audience = None if viewer.id == user.id else await post_store.readable_records(db, viewer.id)
            posts = await post_store.by_author(db, user.id, audience=audience, before=before, limit=limit + 1)
            posts = await _with_liked(db, viewer, posts)
            records = await alumni_store.records_for_user(db, user.id)
            owners = await user_store.get_many(db, {r.owner_id for r in records})
        return Space(user, posts[:limit], len(posts) > limit, [(r, owners[r.owner_id]) for r in records])

    async def feed(
        self, user: User, *, before: Cursor | None = None, limit: int = 50
    ) -> tuple[list[FeedEntry | Post], bool]:
        """The activity of every record the user belongs to, merged with their own posts, newest first.

        Their posts in those records come as the records' `post` entries; the
        rest of their posts come as the posts themselves. Both sources page by
        keyset on (ts, id) from the same cursor, so the merge of their first
        `limit + 1` is exactly the page, and new entries never shift it.
        """
        async with self._db.read() as db:
            record_ids = await alumni_store.record_ids_for_user(db, user.id)
            entries = await feed_store.entries(db, record_ids, before=before, limit=limit + 1)
            own = await post_store.unshared(db, user.id, record_ids, before=before, limit=limit + 1)
            own = await _with_liked(db, user, own)
        merged = sorted([*entries, *own], key=feed_key, reverse=True)
        return merged[:limit], len(merged) > limit

    async def _attach(self, db, author: User, post: Post, file_ids: list[str]) -> Post:
        """Make the post carry exactly these files of the author's."""
        file_ids = list(dict.fromkeys(file_ids))
        if len(file_ids) > MAX_FILES:
            raise invalid(f"files: at most {MAX_FILES}")
        carried = [meta.carried() for meta in await self._files.own(db, author, file_ids)]
        await post_store.set_files(db, post.id, carried)
        await file_store.link_post(db, post.id, file_ids)
        return dataclasses.replace(post, files=carried or None)


def feed_key(item: FeedEntry | Post) -> Cursor:
    """Where an item sits in a personal feed: (ts, id); a post sits at its creation."""
    return (item.created, item.id) if isinstance(item, Post) else (item.ts, item.id)


# ------------------------------------------------------------------ checks


def _check_text(title: str | None, body: str | None) -> None:
    if title is not None:
        if len(title) > MAX_TITLE:
            raise invalid(f"title: at most {MAX_TITLE} characters (this one has {len(title)})")
        if not title.strip():
            raise invalid("title: must not be empty")
    if body is not None and len(body) > MAX_BODY:
        raise invalid(f"body: at most {MAX_BODY} characters (this one has {len(body)})")


def _unique_ids(record_ids: list[str]) -> list[str]:
    unique = list(dict.fromkeys(record_ids))
    if len(unique) > MAX_RECORDS:
        raise invalid(f"alumni_ids: at most {MAX_RECORDS} records")
    return unique


async def _records(db, record_ids: list[str]) -> list[AlumniRecord]:
    """The records, in order; `not_found` if one does not exist."""
    found = []
    for record_id in record_ids:
        record = await alumni_store.get_record(db, record_id)
        if record is None:
            raise not_found(f"alumni record {record_id}")
        found.append(record)
    return found


async def _records_of_author(db, author: User, record_ids: list[str]) -> list[AlumniRecord]:
    """The records to publish to: each must exist (404) and have the author as a member (403)."""
    records = await _records(db, record_ids)
    if records:
        mine = set(await alumni_store.record_ids_for_user(db, author.id))
        for record in records:
            if record.id not in mine:
                raise forbidden(f"you are not a member of the alumni record {record.id}")
    return records


async def _own_post(db, author: User, post_id: str) -> Post:
    """The post, locked for the change; `not_found`, or `forbidden` if someone else wrote it."""
    post = await post_store.get(db, post_id, for_update=True)
    if post is None:
        raise not_found("post")
    if post.author.id != author.id:
        raise forbidden("only the author may change or delete a post")
    return post


async def _with_liked(db, viewer: User, posts: list[Post]) -> list[Post]:
    """The posts with `liked` for this viewer (one query for the page)."""
    liked = await post_reactions.liked_among(db, viewer.id, [p.id for p in posts])
    return [dataclasses.replace(p, liked=True) if p.id in liked else p for p in posts]


async def may_read(db, viewer: User, post: Post) -> bool:
    if viewer.id == post.author.id or not post.alumni_ids:
        return True
    return not set(post.alumni_ids).isdisjoint(await post_store.readable_records(db, viewer.id))


# ------------------------------------------------------------------ announcements

def _text(post: Post, verb: str) -> str:
    return f"{post.author.display} {verb} the post \u201c{post.title}\u201d"


def _system_in(records: list[AlumniRecord], payload, text: str) -> list[Announcement]:
    """One system message in the bound group of each record that has one."""
    return [(r.room_id, payload, text) for r in records if r.room_id is not None]


async def _publish(db, post: Post, records: list[AlumniRecord], ts: int | None = None) -> list[Announcement]:
    """Show the post in each record: a `post` feed entry there, and `post.published` in its group."""
    data = {"post": summary(post)}
    for record in records:
        await feed_store.add_entry(
            db, record_id=record.id, type="post", actor_id=post.author.id, data=data, post_id=post.id, ts=ts
        )
    return _system_in(records, PostPublished(post=post_ref(post)), _text(post, "published"))


def _withdraw(post: Post, records: list[AlumniRecord]) -> list[Announcement]:
    return _system_in(records, PostDeleted(post=post_ref(post, excerpt=False)), _text(post, "deleted"))
