"""Record feeds: what happened in alumni records, newest first.

Entries belong to one record; a reader asks for several records at once
(a personal space shows every record the user belongs to). Paging is by
keyset on (ts, id), so new entries never shift a page already read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import now_ms
from .ids import new_id
from .models import FeedEntry as FeedRow, User as UserRow
from .records import FeedEntry, User

TYPES = ("joined", "profile", "post", "bound")

_SELECT = select(
    FeedRow.id,
    FeedRow.record_id,
    FeedRow.ts,
    FeedRow.type,
    FeedRow.data,
    FeedRow.post_id,
    UserRow.id.label("u_id"),
    UserRow.name.label("u_name"),
    UserRow.display.label("u_display"),
    UserRow.bot.label("u_bot"),
    UserRow.owner_id.label("u_owner_id"),
).join(UserRow, UserRow.id == FeedRow.actor_id)


def _entry(row) -> FeedEntry:
    actor = User(id=row.u_id, name=row.u_name, display=row.u_display, bot=bool(row.u_bot), owner_id=row.u_owner_id)
    return FeedEntry(
        id=row.id,
        record_id=row.record_id,
        ts=row.ts,
        type=row.type,
        actor=actor,
        data=row.data or {},
        post_id=row.post_id,
    )


async def add_entry(
    conn: AsyncConnection,
    *,
    record_id: str,
    type: str,
    actor_id: str,
    data: dict[str, Any],
    post_id: str | None = None,
    ts: int | None = None,
) -> FeedEntry:
    """Append an entry to a record's feed in the caller's transaction.

    `data` must hold nothing a non-member of the record may not see (no
    members-only profile field): entries also surface outside the record.
    """
    if type not in TYPES:
        raise ValueError(f"feed entry type must be one of {TYPES}, not {type!r}")
    entry_id = new_id("f")
    ts = now_ms() if ts is None else ts
    await conn.execute(
        insert(FeedRow).values(
            id=entry_id, record_id=record_id, ts=ts, type=type, actor_id=actor_id, data=data, post_id=post_id
        )
    )
    row = (await conn.execute(_SELECT.where(FeedRow.id == entry_id))).one()
    return _entry(row)


async def entries(
    conn: AsyncConnection,
    record_ids: list[str],
    *,
    before: tuple[int, str] | None = None,
    limit: int = 50,
) -> list[FeedEntry]:
    """Up to `limit` entries of these records, newest first by (ts, id), older than `before`."""
    if not record_ids:
        return []
    query = _SELECT.where(FeedRow.record_id.in_(list(record_ids)))
    if before is not None:
        ts, entry_id = before
        query = query.where(or_(FeedRow.ts < ts, and_(FeedRow.ts == ts, FeedRow.id < entry_id)))
    rows = await conn.execute(query.order_by(FeedRow.ts.desc(), FeedRow.id.desc()).limit(limit))
    return [_entry(row) for row in rows]


async def delete_for_post(conn: AsyncConnection, post_id: str, record_id: str | None = None) -> int:
    """Remove a post's entries (all of them, or only from one record); returns how many."""
    query = delete(FeedRow).where(FeedRow.post_id == post_id)
    if record_id is not None:
        query = query.where(FeedRow.record_id == record_id)
    return (await conn.execute(query)).rowcount
