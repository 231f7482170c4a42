"""Invitations into alumni records: at most one pending per (record, invitee).

A pending invitation past its lifetime becomes `expired` lazily: callers run
`expire_stale` in their transaction before reading or inviting, so no
background job is needed and every node agrees.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from .db import now_ms
from .ids import new_id
from .models import Invitation as InvitationRow, User as UserRow
from .records import Invitation, User

STATUSES = ("pending", "accepted", "declined", "expired")

_inviter = aliased(UserRow)
_invitee = aliased(UserRow)


def _people(*aliases):
    for alias, prefix in aliases:
        for key in ("id", "name", "display", "bot", "owner_id", "avatar"):
            yield getattr(alias, key).label(f"{prefix}_{key}")


_SELECT = (
    select(
        InvitationRow.id,
        InvitationRow.record_id,
        InvitationRow.note,
        InvitationRow.status,
        InvitationRow.created,
        *_people((_inviter, "inviter"), (_invitee, "invitee")),
    )
    .join(_inviter, _inviter.id == InvitationRow.inviter_id)
    .join(_invitee, _invitee.id == InvitationRow.invitee_id)
)


def _person(row, prefix: str) -> User:
    def get(key):
        return getattr(row, f"{prefix}_{key}")

    return User(id=get("id"), name=get("name"), display=get("display"), bot=bool(get("bot")), owner_id=get("owner_id"),
                avatar=get("avatar"))


def _invitation(row) -> Invitation:
    return Invitation(
        id=row.id,
        record_id=row.record_id,
        inviter=_person(row, "inviter"),
        invitee=_person(row, "invitee"),
        note=row.note or "",
        status=row.status,
        created=row.created,
    )


async def expire_stale(
    conn: AsyncConnection, older_than: int, *, record_id: str | None = None, invitee_id: str | None = None
) -> int:
    """Mark pending invitations created before `older_than` (ms) expired; returns how many."""
    query = update(InvitationRow).where(InvitationRow.status == "pending", InvitationRow.created < older_than)
    if record_id is not None:
        query = query.where(InvitationRow.record_id == record_id)
    if invitee_id is not None:
        query = query.where(InvitationRow.invitee_id == invitee_id)
    return (await conn.execute(query.values(status="expired", decided=now_ms()))).rowcount


async def pending_among(conn: AsyncConnection, record_id: str, user_ids: list[str] | set[str]) -> set[str]:
    """Which of these users hold a pending invitation into the record."""
    if not user_ids:
        return set()
    rows = await conn.execute(
        select(InvitationRow.invitee_id).where(
            InvitationRow.record_id == record_id,
            InvitationRow.status == "pending",
            InvitationRow.invitee_id.in_(list(user_ids)),
        )
    )
    return {row.invitee_id for row in rows}


async def create_many(
    conn: AsyncConnection, *, record_id: str, inviter_id: str, invitee_ids: list[str], note: str = ""
) -> list[Invitation]:
    """Store one pending invitation per invitee, in order. A second pending one for the same
    (record, invitee) violates a unique index (IntegrityError), so concurrent batches cannot both win."""
    if not invitee_ids:
        return []
    now = now_ms()
    ids = [new_id("i") for _ in invitee_ids]
    await conn.execute(
        insert(InvitationRow),
        [
            {"id": i, "record_id": record_id, "inviter_id": inviter_id, "invitee_id": invitee, "note": note,
             "status": "pending", "created": now, "decided": None}
            for i, invitee in zip(ids, invitee_ids)
        ],
    )
    rows = await conn.execute(_SELECT.where(InvitationRow.id.in_(ids)))
    by_id = {row.id: _invitation(row) for row in rows}
    return [by_id[i] for i in ids]


async def get(conn: AsyncConnection, invitation_id: str) -> Invitation | None:
    row = (await conn.execute(_SELECT.where(InvitationRow.id == invitation_id))).first()
    return _invitation(row) if row else None


async def for_invitee(conn: AsyncConnection, user_id: str, status: str | None = None) -> list[Invitation]:
    """The user's invitations, newest first, optionally of one status."""
    query = _SELECT.where(InvitationRow.invitee_id == user_id)
    if status is not None:
        query = query.where(InvitationRow.status == status)
    rows = await conn.execute(query.order_by(InvitationRow.created.desc(), InvitationRow.id.desc()))
    return [_invitation(row) for row in rows]


async def decide(conn: AsyncConnection, invitation_id: str, status: str) -> Invitation | None:
    """Move a pending invitation to `status`; None if it was no longer pending (decided meanwhile)."""
    result = await conn.execute(
        update(InvitationRow)
        .where(InvitationRow.id == invitation_id, InvitationRow.status == "pending")
        .values(status=status, decided=now_ms())
    )
    return await get(conn, invitation_id) if result.rowcount else None


async def lock_inviter(conn: AsyncConnection, inviter_id: str) -> None:
    """Serialize one inviter's batches (PostgreSQL row lock; SQLite has one writer anyway), so two
    concurrent batches cannot both pass the quota."""
    await conn.execute(select(UserRow.id).where(UserRow.id == inviter_id).with_for_update())


async def created_since(conn: AsyncConnection, inviter_id: str, since: int) -> list[int]:
    """Creation times (ms, oldest first) of the inviter's invitations since `since`: the quota's window."""
    rows = await conn.execute(
        select(InvitationRow.created)
        .where(InvitationRow.inviter_id == inviter_id, InvitationRow.created >= since)
        .order_by(InvitationRow.created)
    )
    return [row.created for row in rows]
