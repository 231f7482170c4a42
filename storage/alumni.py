"""Alumni records: the record, its members with their profiles, and its bound group."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from . import users
from .db import now_ms
from .ids import new_id
from .models import AlumniMember as MemberRow, AlumniRecord as RecordRow, User as UserRow
from .records import AlumniMember, AlumniRecord

_member_count = (
    select(func.count())
    .where(MemberRow.record_id == RecordRow.id)
    .correlate(RecordRow)
    .scalar_subquery()
    .label("member_count")
)
RECORD_SELECT = select(
    RecordRow.id,
    RecordRow.name,
    RecordRow.school,
    RecordRow.year,
    RecordRow.class_name,
    RecordRow.description,
    RecordRow.owner_id,
    RecordRow.room_id,
    _member_count,
)


def record_from_row(row) -> AlumniRecord:
    return AlumniRecord(
        id=row.id,
        name=row.name,
        school=row.school,
        year=row.year,
        class_name=row.class_name,
        description=row.description,
        owner_id=row.owner_id,
        room_id=row.room_id,
        member_count=row.member_count,
    )


async def create_record(
    conn: AsyncConnection,
    *,
    name: str,
    school: str,
    owner_id: str,
    year: int | None = None,
    class_name: str | None = None,
    description: str | None = None,
) -> AlumniRecord:
    """Create a record whose owner is its first member (with an empty profile)."""
    record_id = new_id("a")
    await conn.execute(
        insert(RecordRow).values(
            id=record_id,
            name=name,
            school=school,
            year=year,
            class_name=class_name,
            description=description,
            owner_id=owner_id,
            room_id=None,
            created=now_ms(),
        )
    )
    await add_member(conn, record_id, owner_id)
    return await get_record(conn, record_id)


async def get_record(conn: AsyncConnection, record_id: str) -> AlumniRecord | None:
    row = (await conn.execute(RECORD_SELECT.where(RecordRow.id == record_id))).first()
    return record_from_row(row) if row else None


async def record_for_room(conn: AsyncConnection, room_id: str) -> AlumniRecord | None:
    """The record bound to this group, if any."""
    row = (await conn.execute(RECORD_SELECT.where(RecordRow.room_id == room_id))).first()
    return record_from_row(row) if row else None


async def set_room(conn: AsyncConnection, record_id: str, room_id: str | None) -> AlumniRecord | None:
    """Bind the record to a group (or unbind with None). The caller checks the one-to-one rule first;
    the unique index still refuses a concurrent second binding (IntegrityError)."""
    await conn.execute(update(RecordRow).where(RecordRow.id == record_id).values(room_id=room_id))
    return await get_record(conn, record_id)


async def is_member(conn: AsyncConnection, record_id: str, user_id: str) -> bool:
    row = await conn.execute(
        select(MemberRow.user_id).where(MemberRow.record_id == record_id, MemberRow.user_id == user_id)
    )
    return row.first() is not None


async def members_among(conn: AsyncConnection, record_id: str, user_ids: list[str] | set[str]) -> set[str]:
    """Which of these users are members of the record."""
    if not user_ids:
        return set()
    rows = await conn.execute(
        select(MemberRow.user_id).where(MemberRow.record_id == record_id, MemberRow.user_id.in_(list(user_ids)))
    )
    return {row.user_id for row in rows}


async def record_ids_for_user(conn: AsyncConnection, user_id: str) -> list[str]:
    """The records the user belongs to, oldest membership first."""
    rows = await conn.execute(
        select(MemberRow.record_id).where(MemberRow.user_id == user_id).order_by(MemberRow.joined)
    )
    return [row.record_id for row in rows]


async def records_for_user(conn: AsyncConnection, user_id: str) -> list[AlumniRecord]:
    rows = await conn.execute(
        RECORD_SELECT.join(MemberRow, MemberRow.record_id == RecordRow.id)
        .where(MemberRow.user_id == user_id)
        .order_by(MemberRow.joined, RecordRow.id)
    )
    return [record_from_row(row) for row in rows]


async def add_member(conn: AsyncConnection, record_id: str, user_id: str) -> bool:
    """Add a member with an empty profile; False if they already are one."""
    if await is_member(conn, record_id, user_id):
        return False
    await conn.execute(
        insert(MemberRow).values(record_id=record_id, user_id=user_id, joined=now_ms(), profile={}, visibility={})
    )
    return True


_MEMBER = select(
    *users.COLUMNS,
    MemberRow.joined,
    MemberRow.profile,
    MemberRow.visibility,
).join(MemberRow, MemberRow.user_id == UserRow.id)


def _member(row) -> AlumniMember:
    return AlumniMember(user=users.from_row(row), joined=row.joined, profile=row.profile or {}, visibility=row.visibility or {})


async def members(conn: AsyncConnection, record_id: str) -> list[AlumniMember]:
    """Every member with their whole profile, in joining order; the caller hides what a reader may not see."""
    rows = await conn.execute(
        _MEMBER.where(MemberRow.record_id == record_id).order_by(MemberRow.joined, UserRow.name)
    )
    return [_member(row) for row in rows]


async def get_member(conn: AsyncConnection, record_id: str, user_id: str) -> AlumniMember | None:
    row = (
        await conn.execute(_MEMBER.where(MemberRow.record_id == record_id, MemberRow.user_id == user_id))
    ).first()
    return _member(row) if row else None


async def set_profile(
    conn: AsyncConnection, record_id: str, user_id: str, profile: dict[str, Any], visibility: dict[str, str]
) -> AlumniMember | None:
    """Replace a member's stored profile and visibility (the service merges changes into them)."""
    await conn.execute(
        update(MemberRow)
        .where(MemberRow.record_id == record_id, MemberRow.user_id == user_id)
        .values(profile=profile, visibility=visibility)
    )
    return await get_member(conn, record_id, user_id)


async def update_record(conn: AsyncConnection, record_id: str, **fields) -> AlumniRecord | None:
    """Change any of name, school, year, class_name, description; the record as it is now."""
    if fields:
        await conn.execute(update(RecordRow).where(RecordRow.id == record_id).values(**fields))
    return await get_record(conn, record_id)


async def delete_record(conn: AsyncConnection, record_id: str) -> bool:
    """Delete a record with its members, invitations, requests, feed and post links (by cascade);
    the posts themselves stay in their authors' spaces."""
    return (await conn.execute(delete(RecordRow).where(RecordRow.id == record_id))).rowcount > 0


async def remove_member(conn: AsyncConnection, record_id: str, user_id: str) -> bool:
    result = await conn.execute(
        delete(MemberRow).where(MemberRow.record_id == record_id, MemberRow.user_id == user_id)
    )
    return result.rowcount > 0
