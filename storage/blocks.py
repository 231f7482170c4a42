"""Blocks between users (docs/protocol.md §12.13): who refuses whom.

`blocked()` is the one check other features call: invitations skip a user
who blocked the inviter, and a direct room cannot be opened with someone who
blocked the opener.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from . import users
from .db import now_ms
from .models import Block, User as UserRow
from .records import User


async def blocked(db: AsyncConnection, blocker_id: str, blocked_id: str) -> bool:
    """True when `blocker_id` has blocked `blocked_id`."""
    row = await db.execute(
        select(Block.created).where(Block.blocker_id == blocker_id, Block.blocked_id == blocked_id)
    )
    return row.first() is not None


async def blockers_among(db: AsyncConnection, blocked_id: str, user_ids: list[str] | set[str]) -> set[str]:
    """Which of these users have blocked `blocked_id` (an inviter's invitees to skip)."""
    if not user_ids:
        return set()
    rows = await db.execute(
        select(Block.blocker_id).where(Block.blocked_id == blocked_id, Block.blocker_id.in_(list(user_ids)))
    )
    return {row.blocker_id for row in rows}


async def block(db: AsyncConnection, blocker_id: str, blocked_id: str) -> None:
    """Block (blocking twice changes nothing)."""
    if await blocked(db, blocker_id, blocked_id):
        return
    try:
        async with db.begin_nested():
            await db.execute(insert(Block).values(blocker_id=blocker_id, blocked_id=blocked_id, created=now_ms()))
    except IntegrityError:  # the same block committed concurrently
        pass


async def unblock(db: AsyncConnection, blocker_id: str, blocked_id: str) -> None:
    await db.execute(delete(Block).where(Block.blocker_id == blocker_id, Block.blocked_id == blocked_id))


async def blocked_by(db: AsyncConnection, blocker_id: str) -> list[User]:
    """The users `blocker_id` has blocked, most recent first."""
    rows = await db.execute(
        select(*users.COLUMNS)
        .join(Block, Block.blocked_id == UserRow.id)
        .where(Block.blocker_id == blocker_id)
        .order_by(Block.created.desc(), UserRow.id)
    )
    return [users.from_row(row) for row in rows]
