"""Requests to join a group whose `join_policy` is `approval`."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from . import users
from .db import now_ms
from .ids import new_id
from .models import JoinRequest as RequestRow, User as UserRow
from .records import JoinRequest, User


class AlreadyPending(Exception):
    """The user has a pending request for this room already."""


_SELECT = select(
    RequestRow.id, RequestRow.room_id, RequestRow.note, RequestRow.status, RequestRow.created, *users.PREFIXED_COLUMNS
).join(UserRow, UserRow.id == RequestRow.user_id)


def _request(row) -> JoinRequest:
    return JoinRequest(id=row.id, room_id=row.room_id, user=users.from_prefixed_row(row), note=row.note,
                       status=row.status, created=row.created)


async def create(conn: AsyncConnection, room_id: str, user: User, note: str) -> JoinRequest:
    """A pending request; raises `AlreadyPending` (the unique index decides under concurrency)."""
    request = JoinRequest(id=new_id("jr"), room_id=room_id, user=user, note=note, status="pending", created=now_ms())
    try:
        async with conn.begin_nested():
            await conn.execute(insert(RequestRow).values(
                id=request.id, room_id=room_id, user_id=user.id, note=note, status="pending", created=request.created
            ))
    except IntegrityError:
        raise AlreadyPending(room_id) from None
    return request


async def get(conn: AsyncConnection, request_id: str, *, lock: bool = False) -> JoinRequest | None:
    query = _SELECT.where(RequestRow.id == request_id)
    if lock:
        query = query.with_for_update(of=RequestRow)
    row = (await conn.execute(query)).first()
    return _request(row) if row else None


async def list_for_room(conn: AsyncConnection, room_id: str, status: str | None = None) -> list[JoinRequest]:
    query = _SELECT.where(RequestRow.room_id == room_id)
    if status is not None:
        query = query.where(RequestRow.status == status)
    rows = await conn.execute(query.order_by(RequestRow.created.desc(), RequestRow.id.desc()).limit(500))
    return [_request(row) for row in rows]


async def decide(conn: AsyncConnection, request_id: str, status: str) -> bool:
    """Move a pending request to `status`; False when it was not pending."""
    result = await conn.execute(
        update(RequestRow)
        .where(RequestRow.id == request_id, RequestRow.status == "pending")
        .values(status=status, decided=now_ms())
    )
    return result.rowcount > 0
