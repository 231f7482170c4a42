"""Likes and comments on posts (docs/protocol.md §12.12).

Each post keeps its like and comment counts on its own row, changed in the
same transaction as the like or comment, so every list of posts shows them
without counting. Comments page like history: newest first by keyset on
(created, id), each page then turned oldest first.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from . import users
from .db import now_ms
from .ids import new_id
from .posts import older_than
from .models import Post as PostRow, PostComment, PostLike, User as UserRow
from .records import Comment, User


async def like(conn: AsyncConnection, post_id: str, user_id: str) -> tuple[bool, int]:
    """Like a post once; (newly liked, the like count now)."""
    try:
        async with conn.begin_nested():
            await conn.execute(insert(PostLike).values(post_id=post_id, user_id=user_id, created=now_ms()))
        added = True
    except IntegrityError:  # liked already (or concurrently)
        added = False
    if added:
        await conn.execute(update(PostRow).where(PostRow.id == post_id).values(like_count=PostRow.like_count + 1))
    return added, await _likes(conn, post_id)


async def unlike(conn: AsyncConnection, post_id: str, user_id: str) -> bool:
    result = await conn.execute(delete(PostLike).where(PostLike.post_id == post_id, PostLike.user_id == user_id))
    if result.rowcount > 0:
        await conn.execute(update(PostRow).where(PostRow.id == post_id).values(like_count=PostRow.like_count - 1))
        return True
    return False


async def _likes(conn: AsyncConnection, post_id: str) -> int:
    return (await conn.execute(select(PostRow.like_count).where(PostRow.id == post_id))).scalar() or 0


async def liked_among(conn: AsyncConnection, user_id: str, post_ids: list[str]) -> set[str]:
    """Which of these posts the user liked."""
    if not post_ids:
        return set()
    rows = await conn.execute(
        select(PostLike.post_id).where(PostLike.user_id == user_id, PostLike.post_id.in_(post_ids))
    )
    return {row.post_id for row in rows}


_SELECT = select(
    PostComment.id, PostComment.post_id, PostComment.text, PostComment.reply_to, PostComment.created,
    *users.PREFIXED_COLUMNS,
).join(UserRow, UserRow.id == PostComment.author_id)


def _comment(row) -> Comment:
    return Comment(id=row.id, post_id=row.post_id, author=users.from_prefixed_row(row), text=row.text,
                   reply_to=row.reply_to, created=row.created)


async def add_comment(conn: AsyncConnection, post_id: str, author: User, text: str, reply_to: str | None) -> Comment:
    comment = Comment(new_id("c"), post_id, author, text, reply_to, now_ms())
    await conn.execute(
        insert(PostComment).values(id=comment.id, post_id=post_id, author_id=author.id, text=text,
                                   reply_to=reply_to, created=comment.created)
    )
    await conn.execute(
        update(PostRow).where(PostRow.id == post_id).values(comment_count=PostRow.comment_count + 1)
    )
    return comment


async def get_comment(conn: AsyncConnection, comment_id: str) -> Comment | None:
    row = (await conn.execute(_SELECT.where(PostComment.id == comment_id))).first()
    return _comment(row) if row else None


async def delete_comment(conn: AsyncConnection, comment: Comment) -> bool:
    result = await conn.execute(delete(PostComment).where(PostComment.id == comment.id))
    if result.rowcount > 0:
        await conn.execute(
            update(PostRow).where(PostRow.id == comment.post_id).values(comment_count=PostRow.comment_count - 1)
        )
        return True
    return False


async def comments(
    conn: AsyncConnection, post_id: str, *, before: tuple[int, str] | None = None, limit: int = 50
) -> list[Comment]:
    """Up to `limit` comments older than `before` (created, id), newest first."""
    query = _SELECT.where(PostComment.post_id == post_id)
    rows = await conn.execute(older_than(query, PostComment.created, PostComment.id, before, limit))
    return [_comment(row) for row in rows]
