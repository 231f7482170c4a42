"""Record feeds: what happened in alumni records, newest first.

Entries belong to one record; a reader asks for several records at once
(a personal space shows every record the user belongs to). Paging is by
keyset on (ts, id), so new entries never shift a page already read.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from . import users
from .db import now_ms
from .ids import new_id
from .models import FeedEntry as FeedRow, User as UserRow
from .records import FeedEntry

TYPES = ("joined", "profile", "post", "bound")

_SELECT = select(
    FeedRow.id,
    FeedRow.record_id,
    FeedRow.ts,
    FeedRow.type,
    FeedRow.data,
    FeedRow.post_id,
    *users.PREFIXED_COLUMNS,
).join(UserRow, UserRow.id == FeedRow.actor_id)


def _entry(row) -> FeedEntry:
    actor = users.from_prefixed_row(row)
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
    """Up to `limit` entries of these records, newest first by (ts, id), older than `before`.

    Each record gives its own newest `limit` from its range of
    `ix_feed_entries_record_ts`, and only those are merged: a page reads about
    records x limit index rows however long the feeds are (one `IN` over all
    the records would sort every entry they hold: a feed page must not scan every entry).
    """
    record_ids = list(dict.fromkeys(record_ids))
    if not record_ids:
        return []
    params = {f"r{i}": record_id for i, record_id in enumerate(record_ids)}
    params["limit"] = limit
    if before is not None:
        params["ts"], params["id"] = before
    rows = await conn.execute(_newest_query(len(record_ids), before is not None), params)
    return [_entry(row) for row in rows]


@functools.lru_cache(maxsize=256)
def _newest_query(records: int, keyset: bool):
    """The statement of `entries` for this many records, built once: building a union of many
    selects costs far more than running it. Parameters: r0, r1, ..., limit, and ts, id."""
    table = FeedRow.__table__
    order = (table.c.ts.desc(), table.c.id.desc())
    per_record = []
    for i in range(records):
        query = select(table.c.id, table.c.ts).where(table.c.record_id == bindparam(f"r{i}"))
        if keyset:
            # `ts <= :ts` bounds the index range; the OR only settles ties within one millisecond.
            ts, entry_id = bindparam("ts"), bindparam("id")
            query = query.where(table.c.ts <= ts, or_(table.c.ts < ts, table.c.id < entry_id))
        # Wrapped in a subquery: SQLite takes no ORDER BY/LIMIT inside a bare UNION member.
        per_record.append(select(query.order_by(*order).limit(bindparam("limit")).subquery()))
    newest = union_all(*per_record).subquery()
    page = select(newest.c.id).order_by(newest.c.ts.desc(), newest.c.id.desc()).limit(bindparam("limit"))
    return _SELECT.where(FeedRow.id.in_(page)).order_by(*order)


async def delete_for_post(conn: AsyncConnection, post_id: str, record_id: str | None = None) -> int:
    """Remove a post's entries (all of them, or only from one record); returns how many."""
    query = delete(FeedRow).where(FeedRow.post_id == post_id)
    if record_id is not None:
        query = query.where(FeedRow.record_id == record_id)
    return (await conn.execute(query)).rowcount
