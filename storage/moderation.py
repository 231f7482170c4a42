"""Mutes and bans of a room's members, and the state that decides who may send.

Both live in tables of their own, not on the membership: a mute outlives
leaving and rejoining, and a ban is about someone who is not a member.
"""

from __future__ import annotations

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from . import users
from .db import now_ms
from .models import Membership, Room as RoomRow, RoomBan, RoomMute, User as UserRow
from .records import Ban, RoomPolicyState, User


async def mute(conn: AsyncConnection, room_id: str, user_id: str, until: int, by_id: str) -> None:
    """Mute (or re-mute, replacing the end) a user in a room until `until` (ms)."""
    changed = await conn.execute(
        update(RoomMute).where(RoomMute.room_id == room_id, RoomMute.user_id == user_id).values(until=until, by_id=by_id)
    )
    if changed.rowcount == 0:
        await conn.execute(insert(RoomMute).values(room_id=room_id, user_id=user_id, until=until, by_id=by_id))


async def unmute(conn: AsyncConnection, room_id: str, user_id: str) -> bool:
    """Lift a mute; False when there was none in force."""
    where = (RoomMute.room_id == room_id, RoomMute.user_id == user_id)
    until = (await conn.execute(select(RoomMute.until).where(*where))).scalar()
    await conn.execute(delete(RoomMute).where(*where))  # an expired one goes too
    return until is not None and until > now_ms()


async def policy_state(conn: AsyncConnection, room_id: str) -> RoomPolicyState | None:
    """Mute-all, owner and admins, and the mutes in force (None: no such room)."""
    muted = (await conn.execute(select(RoomRow.muted).where(RoomRow.id == room_id))).first()
    if muted is None:
        return None
    admins = await conn.execute(
        select(Membership.user_id).where(Membership.room_id == room_id, Membership.role.in_(("owner", "admin")))
    )
    mutes = await conn.execute(
        select(RoomMute.user_id, RoomMute.until).where(RoomMute.room_id == room_id, RoomMute.until > now_ms())
    )
    return RoomPolicyState(
        muted=bool(muted[0]), admins=frozenset(row.user_id for row in admins), mutes={r.user_id: r.until for r in mutes}
    )


# ------------------------------------------------------------------ bans

_BY = aliased(UserRow)


async def ban(conn: AsyncConnection, room_id: str, user_id: str, by_id: str, reason: str) -> bool:
    """Ban a user; False (and nothing changed) when they were banned already."""
    if await is_banned(conn, room_id, user_id):
        return False
    await conn.execute(insert(RoomBan).values(room_id=room_id, user_id=user_id, by_id=by_id, reason=reason, ts=now_ms()))
    return True


async def unban(conn: AsyncConnection, room_id: str, user_id: str) -> bool:
    result = await conn.execute(delete(RoomBan).where(RoomBan.room_id == room_id, RoomBan.user_id == user_id))
    return result.rowcount > 0


async def is_banned(conn: AsyncConnection, room_id: str, user_id: str) -> bool:
    found = await conn.execute(select(RoomBan.ts).where(RoomBan.room_id == room_id, RoomBan.user_id == user_id))
    return found.first() is not None


_BANS = (
    select(RoomBan.room_id, RoomBan.reason, RoomBan.ts, *users.PREFIXED_COLUMNS,
           *(column.label(f"b_{column.key}") for column in (_BY.id, _BY.name, _BY.display, _BY.bot, _BY.owner_id)))
    .join(UserRow, UserRow.id == RoomBan.user_id)
    .join(_BY, _BY.id == RoomBan.by_id)
)


def _ban(row) -> Ban:
    by = User(id=row.b_id, name=row.b_name, display=row.b_display, bot=bool(row.b_bot), owner_id=row.b_owner_id)
    return Ban(room_id=row.room_id, user=users.from_prefixed_row(row), by=by, reason=row.reason, ts=row.ts)


async def get_ban(conn: AsyncConnection, room_id: str, user_id: str) -> Ban | None:
    row = (await conn.execute(_BANS.where(and_(RoomBan.room_id == room_id, RoomBan.user_id == user_id)))).first()
    return _ban(row) if row else None


async def bans(conn: AsyncConnection, room_id: str) -> list[Ban]:
    rows = await conn.execute(_BANS.where(RoomBan.room_id == room_id).order_by(RoomBan.ts.desc(), RoomBan.user_id))
    return [_ban(row) for row in rows]
