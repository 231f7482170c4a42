"""Group announcements (群公告), newest first."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from . import users
from .db import now_ms
from .ids import new_id
from .models import RoomNotice, User as UserRow
from .records import Notice, User

_SELECT = select(RoomNotice.id, RoomNotice.room_id, RoomNotice.text, RoomNotice.ts, *users.PREFIXED_COLUMNS).join(
    UserRow, UserRow.id == RoomNotice.by_id
)
_NEWEST_FIRST = (RoomNotice.ts.desc(), RoomNotice.id.desc())


def _notice(row) -> Notice:
    return Notice(id=row.id, room_id=row.room_id, text=row.text, by=users.from_prefixed_row(row), ts=row.ts)


async def add(conn: AsyncConnection, room_id: str, text: str, by: User) -> Notice:
    notice = Notice(id=new_id("an"), room_id=room_id, text=text, by=by, ts=now_ms())
    await conn.execute(insert(RoomNotice).values(id=notice.id, room_id=room_id, text=text, by_id=by.id, ts=notice.ts))
    return notice


async def list_for_room(conn: AsyncConnection, room_id: str, limit: int = 100) -> list[Notice]:
    rows = await conn.execute(_SELECT.where(RoomNotice.room_id == room_id).order_by(*_NEWEST_FIRST).limit(limit))
    return [_notice(row) for row in rows]


async def remove(conn: AsyncConnection, room_id: str, notice_id: str) -> bool:
    result = await conn.execute(delete(RoomNotice).where(RoomNotice.room_id == room_id, RoomNotice.id == notice_id))
    return result.rowcount > 0


async def newest_of(conn: AsyncConnection, room_ids: list[str]) -> dict[str, Notice]:
    """The newest announcement of each of these rooms that has one (one query)."""
    if not room_ids:
        return {}
    newest = (
        select(RoomNotice.room_id, func.max(RoomNotice.ts).label("ts"))
        .where(RoomNotice.room_id.in_(room_ids))
        .group_by(RoomNotice.room_id)
        .subquery()
    )
    rows = await conn.execute(
        _SELECT.join(newest, (newest.c.room_id == RoomNotice.room_id) & (newest.c.ts == RoomNotice.ts))
        .order_by(RoomNotice.id)
    )
    found: dict[str, Notice] = {}
    for row in rows:  # two in the same millisecond: the greater id wins, as in `list_for_room`
        found[row.room_id] = _notice(row)
    return found
