"""Pinned messages of a room: which (`messages.pinned`, kept by the timeline) and by whom (`room_pins`)."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from . import users
from .models import Message as MessageRow, RoomPin, User as UserRow
from .records import User


async def count(conn: AsyncConnection, room_id: str) -> int:
    query = select(func.count()).where(MessageRow.room_id == room_id, MessageRow.pinned == true())
    return (await conn.execute(query)).scalar() or 0


async def record(conn: AsyncConnection, room_id: str, seq: int, by_id: str, ts: int) -> None:
    """Remember who pinned `seq` (replacing an earlier pin of it)."""
    await conn.execute(delete(RoomPin).where(RoomPin.room_id == room_id, RoomPin.seq == seq))
    await conn.execute(insert(RoomPin).values(room_id=room_id, seq=seq, by_id=by_id, ts=ts))


async def forget(conn: AsyncConnection, room_id: str, seq: int) -> None:
    await conn.execute(delete(RoomPin).where(RoomPin.room_id == room_id, RoomPin.seq == seq))


async def pinned(conn: AsyncConnection, room_id: str) -> list[tuple[int, User | None, int | None]]:
    """(seq, by, ts) of every pinned message, newest pin first (by and ts None if not recorded)."""
    rows = await conn.execute(
        select(MessageRow.seq, RoomPin.ts, *users.PREFIXED_COLUMNS)
        .select_from(MessageRow)
        .outerjoin(RoomPin, (RoomPin.room_id == MessageRow.room_id) & (RoomPin.seq == MessageRow.seq))
        .outerjoin(UserRow, UserRow.id == RoomPin.by_id)
        .where(MessageRow.room_id == room_id, MessageRow.pinned == true())
        .order_by(RoomPin.ts.desc(), MessageRow.seq.desc())
    )
    return [(row.seq, users.from_prefixed_row(row), row.ts) for row in rows]
