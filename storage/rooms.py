"""Rooms (groups), memberships with roles, and read markers."""

from __future__ import annotations

import dataclasses
import functools

from sqlalchemy import Select, and_, delete, false, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from . import users
from .db import now_ms
from .ids import new_id
from .keyset import key_params, key_table
from .prepared import prepared
from . import notices
from .models import Membership, Message as MessageRow, MessageMention, Room as RoomRow, RoomMute, User as UserRow
from .records import Member, Room, RoomState

_member_count = (
    select(func.count())
    .where(Membership.room_id == RoomRow.id)
    .correlate(RoomRow)
    .scalar_subquery()
    .label("member_count")
)
ROOM_COLUMNS = (
    RoomRow.id,
    RoomRow.name,
    RoomRow.topic,
    RoomRow.join_policy,
    RoomRow.owner_id,
    RoomRow.last_seq,
    RoomRow.muted,
    RoomRow.kind,
    _member_count,
    RoomRow.avatar,
)


def room_from_row(row) -> Room:
    return Room(
        id=row.id,
        name=row.name,
        topic=row.topic or "",
        join_policy=row.join_policy,
        owner_id=row.owner_id,
        last_seq=row.last_seq,
        member_count=row.member_count,
        muted=bool(row.muted),
        kind=row.kind,
        avatar=row.avatar,
    )


async def create(
    conn: AsyncConnection, *, name: str, topic: str, join_policy: str, owner_id: str
) -> Room:
    """Create a room whose owner is its first member. Creating posts nothing (last_seq 0)."""
    room_id = new_id("r")
    now = now_ms()
    await conn.execute(
        insert(RoomRow).values(
            id=room_id,
            name=name,
            topic=topic,
            join_policy=join_policy,
            owner_id=owner_id,
            last_seq=0,
            created=now,
        )
    )
    await conn.execute(
        insert(Membership).values(room_id=room_id, user_id=owner_id, role="owner", joined=now, read_seq=0)
    )
    return Room(room_id, name, topic, join_policy, owner_id, last_seq=0, member_count=1)


def direct_key(a: str, b: str) -> str:
    """The one key of a pair of users, whichever of them asks."""
    return ":".join(sorted((a, b)))


async def get_direct(conn: AsyncConnection, a: str, b: str) -> Room | None:
    row = (await conn.execute(select(*ROOM_COLUMNS).where(RoomRow.direct_key == direct_key(a, b)))).first()
    return room_from_row(row) if row else None


async def create_direct(conn: AsyncConnection, *, name: str, creator_id: str, other_id: str) -> Room:
    """A direct room of two users, both `member` (docs/protocol.md §12.11); raises IntegrityError
    if the pair has one already (a concurrent create won)."""
    room_id = new_id("r")
    now = now_ms()
    await conn.execute(
        insert(RoomRow).values(
            id=room_id, name=name, topic="", join_policy="invite", owner_id=creator_id, last_seq=0, created=now,
            kind="direct", direct_key=direct_key(creator_id, other_id),
        )
    )
    await conn.execute(
        insert(Membership),
        [{"room_id": room_id, "user_id": u, "role": "member", "joined": now, "read_seq": 0}
         for u in (creator_id, other_id)],
    )
    return Room(room_id, name, "", "invite", creator_id, last_seq=0, member_count=2, kind="direct")


async def get(conn: AsyncConnection, room_id: str) -> Room | None:
    """The room with its newest announcement."""
    row = (await conn.execute(select(*ROOM_COLUMNS).where(RoomRow.id == room_id))).first()
    if row is None:
        return None
    return (await _with_announcements(conn, [room_from_row(row)]))[0]


async def _with_announcements(conn: AsyncConnection, found: list[Room]) -> list[Room]:
    newest = await notices.newest_of(conn, [room.id for room in found])
    return [dataclasses.replace(room, announcement=newest[room.id]) if room.id in newest else room
            for room in found]


async def delete_room(conn: AsyncConnection, room_id: str) -> bool:
    """Delete a room and, by cascade, everything in it (messages, memberships, mutes, bans ...).

    A bound alumni record is unbound by its foreign key (ON DELETE SET NULL).
    """
    result = await conn.execute(delete(RoomRow).where(RoomRow.id == room_id))
    return result.rowcount > 0


async def member_count(conn: AsyncConnection, room_id: str) -> int:
    return (await conn.execute(select(func.count()).where(Membership.room_id == room_id))).scalar() or 0


async def set_nickname(conn: AsyncConnection, room_id: str, user_id: str, nickname: str | None) -> Member | None:
    await conn.execute(
        update(Membership)
        .where(Membership.room_id == room_id, Membership.user_id == user_id)
        .values(nickname=nickname)
    )
    return await get_member(conn, room_id, user_id)


async def lock(conn: AsyncConnection, room_id: str) -> bool:
    """Lock the room's row for this transaction (False: no such room).

    The same lock, taken first, as `messages.append_batch` takes before it touches
    memberships: a change of membership that locked the member's row first and the
    room's second could deadlock with a commit of that member's messages.
    """
    locked = await conn.execute(select(RoomRow.id).where(RoomRow.id == room_id).with_for_update(key_share=True))
    return locked.first() is not None


async def update_room(conn: AsyncConnection, room_id: str, **fields) -> Room | None:
    """Change `name`, `topic`, `join_policy`, `muted` or `owner_id`; returns the room as it is now."""
    if fields:
        await conn.execute(update(RoomRow).where(RoomRow.id == room_id).values(**fields))
    return await get(conn, room_id)


async def list_for_user(conn: AsyncConnection, user_id: str) -> list[Room]:
    """The user's rooms, each with `mentions`: its unread messages that mention the user."""
    rows = await conn.execute(
        select(*ROOM_COLUMNS, _unread_mentions(user_id).label("mentions"))
        .join(Membership, Membership.room_id == RoomRow.id)
        .where(Membership.user_id == user_id)
        .order_by(RoomRow.created, RoomRow.id)
    )
    return await _with_announcements(conn, [dataclasses.replace(room_from_row(row), mentions=row.mentions) for row in rows])


async def room_ids_for_user(conn: AsyncConnection, user_id: str) -> set[str]:
    rows = await conn.execute(select(Membership.room_id).where(Membership.user_id == user_id))
    return {row.room_id for row in rows}


def _member(row) -> Member:
    until = row.muted_until if row.muted_until is not None and row.muted_until > now_ms() else None
    return Member(user=users.from_row(row), role=row.role, joined=row.joined, read_seq=row.read_seq,
                  nickname=row.nickname, muted_until=until)


_MEMBER_QUERY = select(
    *users.COLUMNS,
    Membership.role,
    Membership.joined,
    Membership.read_seq,
    Membership.nickname,
    RoomMute.until.label("muted_until"),
).join(Membership, Membership.user_id == UserRow.id).outerjoin(
    RoomMute, and_(RoomMute.room_id == Membership.room_id, RoomMute.user_id == Membership.user_id)
)


async def get_member(conn: AsyncConnection, room_id: str, user_id: str) -> Member | None:
    row = (
        await conn.execute(
            _MEMBER_QUERY.where(Membership.room_id == room_id, Membership.user_id == user_id)
        )
    ).first()
    return _member(row) if row else None


async def members(conn: AsyncConnection, room_id: str) -> list[Member]:
    rows = await conn.execute(
        _MEMBER_QUERY.where(Membership.room_id == room_id).order_by(Membership.joined, UserRow.name)
    )
    return [_member(row) for row in rows]


async def member_ids(conn: AsyncConnection, room_id: str) -> list[str]:
    rows = await conn.execute(select(Membership.user_id).where(Membership.room_id == room_id))
    return [row.user_id for row in rows]


_PAIR_KEY = ("rid", "uid")


@functools.cache
def _memberships_of_pairs(dialect: str) -> Select:
    keys = key_table(dialect, _PAIR_KEY)
    return prepared(select(Membership.room_id, Membership.user_id).join(
        keys, and_(Membership.room_id == keys.c.rid, Membership.user_id == keys.c.uid)
    ))


async def members_among(conn: AsyncConnection, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of the given (room_id, user_id) pairs are memberships."""
    if not pairs:
        return set()
    dialect = conn.dialect.name
    rows = await conn.execute(_memberships_of_pairs(dialect), key_params(dialect, _PAIR_KEY, pairs))
    return {(row.room_id, row.user_id) for row in rows} & pairs


async def add_member(conn: AsyncConnection, room_id: str, user_id: str, role: str = "member") -> bool:
    """Add a membership; False if the user already is a member.

    The read marker starts at the room's last seq: nothing from before joining is unread.
    """
    if await get_member(conn, room_id, user_id) is not None:
        return False
    last_seq = select(RoomRow.last_seq).where(RoomRow.id == room_id).scalar_subquery()
    await conn.execute(
        insert(Membership).values(
            room_id=room_id, user_id=user_id, role=role, joined=now_ms(), read_seq=func.coalesce(last_seq, 0)
        )
    )
    return True


async def remove_member(conn: AsyncConnection, room_id: str, user_id: str) -> bool:
    result = await conn.execute(
        delete(Membership).where(Membership.room_id == room_id, Membership.user_id == user_id)
    )
    return result.rowcount > 0


async def set_role(conn: AsyncConnection, room_id: str, user_id: str, role: str) -> Member | None:
    await conn.execute(
        update(Membership)
        .where(Membership.room_id == room_id, Membership.user_id == user_id)
        .values(role=role)
    )
    return await get_member(conn, room_id, user_id)


async def set_read(conn: AsyncConnection, room_id: str, user_id: str, seq: int) -> int | None:
    """Move the read marker forward to `seq` (capped at the room's last seq, never back).

    Returns the marker as it is now, or None if the user is not a member.
    """
    last_seq = (await conn.execute(select(RoomRow.last_seq).where(RoomRow.id == room_id))).scalar()
    if last_seq is None:
        return None
    target = min(seq, last_seq)
    await conn.execute(
        update(Membership)
        .where(Membership.room_id == room_id, Membership.user_id == user_id, Membership.read_seq < target)
        .values(read_seq=target)
    )
    return (
        await conn.execute(
            select(Membership.read_seq).where(Membership.room_id == room_id, Membership.user_id == user_id)
        )
    ).scalar()


async def states_for_user(conn: AsyncConnection, user_id: str) -> list[RoomState]:
    """Every room of the user with last seq, read marker and unread count (for `welcome`).

    Unread counts messages of others, system ones included, past the read marker.
    """
    unread = (
        select(func.count())
        .where(
            MessageRow.room_id == Membership.room_id,
            MessageRow.seq > Membership.read_seq,
            or_(MessageRow.sender_id.is_(None), MessageRow.sender_id != user_id),
            MessageRow.kind != "update",  # update entries never count (docs/protocol.md §6.4)
        )
        .correlate(Membership)
        .scalar_subquery()
    )
    rows = await conn.execute(
        select(
            RoomRow.id, RoomRow.name, RoomRow.last_seq, RoomRow.kind, Membership.read_seq, Membership.role,
            unread.label("unread"), _unread_mentions(user_id).label("mentions"),
        )
        .join(Membership, and_(Membership.room_id == RoomRow.id, Membership.user_id == user_id))
        .order_by(RoomRow.created, RoomRow.id)
    )
    return [
        RoomState(
            id=row.id,
            name=row.name,
            last_seq=row.last_seq,
            read_seq=row.read_seq,
            unread=row.unread,
            role=row.role,
            mentions=row.mentions,
            kind=row.kind,
        )
        for row in rows
    ]


def _unread_mentions(user_id: str):
    """Unread messages (past the read marker) that mention the user, not recalled (docs/protocol.md §6.5)."""
    return (
        select(func.count())
        .select_from(MessageMention)
        .join(MessageRow, and_(MessageRow.room_id == MessageMention.room_id, MessageRow.seq == MessageMention.seq))
        .where(
            MessageMention.user_id == user_id,
            MessageMention.room_id == Membership.room_id,
            MessageMention.seq > Membership.read_seq,
            MessageRow.recalled == false(),
        )
        .correlate(Membership)
        .scalar_subquery()
    )


async def read_markers_of(conn: AsyncConnection, user_ids: set[str]) -> dict[str, dict[str, int]]:
    """For each user, their rooms and read markers: `{user_id: {room_id: read_seq}}` (one query)."""
    result: dict[str, dict[str, int]] = {user_id: {} for user_id in user_ids}
    if not user_ids:
        return result
    rows = await conn.execute(
        select(Membership.user_id, Membership.room_id, Membership.read_seq).where(
            Membership.user_id.in_(list(user_ids))
        )
    )
    for row in rows:
        result[row.user_id][row.room_id] = row.read_seq
    return result
