"""Requests to join alumni records: at most one pending per (record, user), decided by the owner."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from . import users
from .db import now_ms
from .ids import new_id
from .models import RecordRequest as RequestRow, User as UserRow
from .records import RecordRequest

STATUSES = ("pending", "approved", "declined")

_SELECT = select(
    RequestRow.id, RequestRow.record_id, RequestRow.note, RequestRow.status, RequestRow.created,
    *users.PREFIXED_COLUMNS,
).join(UserRow, UserRow.id == RequestRow.user_id)


def _request(row) -> RecordRequest:
    return RecordRequest(
        id=row.id, record_id=row.record_id, user=users.from_prefixed_row(row), note=row.note or "",
        status=row.status, created=row.created,
    )


async def create(conn: AsyncConnection, record_id: str, user_id: str, note: str) -> RecordRequest:
    """Store a pending request. A second pending one for the pair violates a unique index
    (IntegrityError), so two arriving at once cannot both be stored."""
    request_id = new_id("q")
    await conn.execute(
        insert(RequestRow).values(id=request_id, record_id=record_id, user_id=user_id, note=note,
                                  status="pending", created=now_ms(), decided=None)
    )
    return await get(conn, request_id)


async def get(conn: AsyncConnection, request_id: str) -> RecordRequest | None:
    row = (await conn.execute(_SELECT.where(RequestRow.id == request_id))).first()
    return _request(row) if row else None


async def pending_of(conn: AsyncConnection, record_id: str, user_id: str) -> RecordRequest | None:
    row = (
        await conn.execute(
            _SELECT.where(RequestRow.record_id == record_id, RequestRow.user_id == user_id,
                          RequestRow.status == "pending")
        )
    ).first()
    return _request(row) if row else None


async def for_record(conn: AsyncConnection, record_id: str, status: str | None = None) -> list[RecordRequest]:
    """The record's requests, newest first, optionally of one status."""
    query = _SELECT.where(RequestRow.record_id == record_id)
    if status is not None:
        query = query.where(RequestRow.status == status)
    rows = await conn.execute(query.order_by(RequestRow.created.desc(), RequestRow.id.desc()))
    return [_request(row) for row in rows]


async def decide(conn: AsyncConnection, request_id: str, status: str) -> RecordRequest | None:
    """Move a pending request to `status`; None if it was no longer pending (decided meanwhile)."""
    result = await conn.execute(
        update(RequestRow)
        .where(RequestRow.id == request_id, RequestRow.status == "pending")
        .values(status=status, decided=now_ms())
    )
    return await get(conn, request_id) if result.rowcount else None
