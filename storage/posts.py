"""Posts: stored once, linked to every alumni record they are published to.

A post shows in its author's space and in each linked record. Lists run
newest first by keyset on (created, id): a cursor names the last post seen,
so posts written meanwhile never shift a page already read. Each list reads
one index range (`ix_posts_author_created`, `ix_post_records_record`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import delete, exists, insert, or_, select, union, update
from sqlalchemy.ext.asyncio import AsyncConnection

from . import users
from .db import now_ms
from .ids import new_id
from .models import (
    AlumniMember,
    AlumniRecord,
    FeedEntry as FeedRow,
    Membership,
    Post as PostRow,
    PostRecord as LinkRow,
    User as UserRow,
)
from .records import Post, User

_SELECT = select(
    PostRow.id,
    PostRow.title,
    PostRow.body,
    PostRow.created,
    PostRow.updated,
    PostRow.like_count,
    PostRow.comment_count,
    PostRow.files,
    *users.PREFIXED_COLUMNS,
).join(UserRow, UserRow.id == PostRow.author_id)


def _post(row, alumni_ids: list[str]) -> Post:
    author = users.from_prefixed_row(row)
    return Post(
        id=row.id,
        author=author,
        title=row.title,
        body=row.body,
        created=row.created,
        updated=row.updated,
        alumni_ids=tuple(alumni_ids),
        likes=row.like_count,
        comments=row.comment_count,
        files=row.files,
    )


async def _with_records(conn: AsyncConnection, rows) -> list[Post]:
    """Posts from `_SELECT` rows, each with its record ids in the author's order (one query)."""
    rows = list(rows)
    if not rows:
        return []
    links: dict[str, list[str]] = defaultdict(list)
    found = await conn.execute(
        select(LinkRow.post_id, LinkRow.record_id)
        .where(LinkRow.post_id.in_([row.id for row in rows]))
        .order_by(LinkRow.post_id, LinkRow.position)
    )
    for link in found:
        links[link.post_id].append(link.record_id)
    return [_post(row, links[row.id]) for row in rows]


def older_than(query, created_col, id_col, before: tuple[int, str] | None, limit: int):
    """Keyset page: rows strictly older than `before` (created, id), newest first."""
    if before is not None:
        created, post_id = before
        # `created <= :created` bounds the index range; the OR only settles ties within one millisecond.
        query = query.where(created_col <= created, or_(created_col < created, id_col < post_id))
    return query.order_by(created_col.desc(), id_col.desc()).limit(limit)


async def create(
    conn: AsyncConnection, *, author: User, title: str, body: str, record_ids: list[str] = ()
) -> Post:
    """Store a post in the caller's transaction, published to `record_ids` (which must exist)."""
    post_id = new_id("p")
    now = now_ms()
    await conn.execute(
        insert(PostRow).values(id=post_id, author_id=author.id, title=title, body=body, created=now, updated=now)
    )
    await _link(conn, post_id, now, list(record_ids))
    return Post(post_id, author, title, body, now, now, tuple(record_ids))


async def _link(conn: AsyncConnection, post_id: str, created: int, record_ids: list[str]) -> None:
    if record_ids:
        await conn.execute(
            insert(LinkRow),
            [
                {"post_id": post_id, "record_id": r, "position": i, "post_created": created}
                for i, r in enumerate(record_ids)
            ],
        )


async def get(conn: AsyncConnection, post_id: str, *, for_update: bool = False) -> Post | None:
    """The post, or None. `for_update` locks it (PostgreSQL) so concurrent edits apply one by one."""
    query = _SELECT.where(PostRow.id == post_id)
    if for_update:
        query = query.with_for_update(of=PostRow)
    posts = await _with_records(conn, (await conn.execute(query)).all())
    return posts[0] if posts else None


async def edit(conn: AsyncConnection, post_id: str, *, title: str | None = None, body: str | None = None) -> int:
    """Change the title and/or body; returns the new `updated` time."""
    now = now_ms()
    fields: dict[str, Any] = {"updated": now}
    if title is not None:
        fields["title"] = title
    if body is not None:
        fields["body"] = body
    await conn.execute(update(PostRow).where(PostRow.id == post_id).values(**fields))
    return now


async def set_records(conn: AsyncConnection, post: Post, record_ids: list[str]) -> None:
    """Publish `post` to exactly `record_ids`, in that order."""
    wanted = list(dict.fromkeys(record_ids))
    if wanted != list(post.alumni_ids):
        # Few rows: rewriting them all keeps `position` in the author's order.
        await conn.execute(delete(LinkRow).where(LinkRow.post_id == post.id))
        await _link(conn, post.id, post.created, wanted)


async def delete_post(conn: AsyncConnection, post_id: str) -> bool:
    """Delete a post and its links (its feed entries are the feed module's: `feed.delete_for_post`)."""
    await conn.execute(delete(LinkRow).where(LinkRow.post_id == post_id))
    return (await conn.execute(delete(PostRow).where(PostRow.id == post_id))).rowcount > 0


async def set_files(conn: AsyncConnection, post_id: str, carried: list[dict[str, Any]] | None) -> None:
    """The files the post carries, as `FileMeta.carried()` gives them (docs/protocol.md §12.10)."""
    await conn.execute(update(PostRow).where(PostRow.id == post_id).values(files=carried or None))


async def set_feed_data(conn: AsyncConnection, post_id: str, data: dict[str, Any]) -> None:
    """Rewrite the `data` of the post's feed entries in every record, so an edit shows in feeds too."""
    await conn.execute(update(FeedRow).where(FeedRow.post_id == post_id).values(data=data))


def _linked(record_ids: list[str] | set[str] | None = None):
    """The post (in `PostRow`) is published to some record, or to one of `record_ids`."""
    clause = exists().where(LinkRow.post_id == PostRow.id)
    return clause.where(LinkRow.record_id.in_(list(record_ids))) if record_ids is not None else clause


async def _authored(conn: AsyncConnection, author_id: str, condition, before, limit: int) -> list[Post]:
    query = _SELECT.where(PostRow.author_id == author_id)
    if condition is not None:
        query = query.where(condition)
    rows = await conn.execute(older_than(query, PostRow.created, PostRow.id, before, limit))
    return await _with_records(conn, rows)


async def by_author(
    conn: AsyncConnection,
    author_id: str,
    *,
    audience: set[str] | None = None,
    before: tuple[int, str] | None = None,
    limit: int = 50,
) -> list[Post]:
    """The author's posts, newest first.

    `audience` None: all of them (the author's own view). Otherwise only the
    posts published to no record (the public part of a space) or to one of
    the records in `audience` (see `readable_records`).
    """
    condition = None if audience is None else or_(~_linked(), _linked(audience))
    return await _authored(conn, author_id, condition, before, limit)


async def unshared(
    conn: AsyncConnection,
    author_id: str,
    record_ids: list[str] | set[str],
    *,
    before: tuple[int, str] | None = None,
    limit: int = 50,
) -> list[Post]:
    """The author's posts published to none of `record_ids`, newest first.

    A personal feed shows the activity of the user's records, which already
    holds their posts there; this is the rest of their own posts.
    """
    return await _authored(conn, author_id, ~_linked(record_ids), before, limit)


async def in_record(
    conn: AsyncConnection, record_id: str, *, before: tuple[int, str] | None = None, limit: int = 50
) -> list[Post]:
    """The posts published to a record, newest first."""
    page = older_than(
        select(LinkRow.post_id, LinkRow.post_created).where(LinkRow.record_id == record_id),
        LinkRow.post_created,
        LinkRow.post_id,
        before,
        limit,
    ).subquery()
    rows = await conn.execute(
        _SELECT.join(page, page.c.post_id == PostRow.id).order_by(PostRow.created.desc(), PostRow.id.desc())
    )
    return await _with_records(conn, rows)


async def readable_records(conn: AsyncConnection, user_id: str) -> set[str]:
    """The records whose posts the user may read: those they belong to, and those bound to a
    group they are in (the group is told of each post, title and excerpt included)."""
    rows = await conn.execute(
        union(
            select(AlumniMember.record_id).where(AlumniMember.user_id == user_id),
            select(AlumniRecord.id)
            .join(Membership, Membership.room_id == AlumniRecord.room_id)
            .where(Membership.user_id == user_id),
        )
    )
    return {row[0] for row in rows}
