"""Messages: gapless per-room seqs, idempotent sends, history and replay.

`append_batch` stores many messages in the caller's transaction (group
commit). Seqs are taken from `rooms.last_seq` in that same transaction, so a
rolled-back batch leaves no gap and concurrent writers on other nodes queue
on the room row. Rooms are locked in id order so two batches never deadlock.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from . import rooms, users
from .db import now_ms
from .ids import new_id
from .models import Membership, Message as MessageRow, Room as RoomRow, User as UserRow
from .records import Message, NewMessage, Stored

_SELECT = select(
    MessageRow.room_id,
    MessageRow.seq,
    MessageRow.id,
    MessageRow.ts,
    MessageRow.kind,
    MessageRow.text,
    MessageRow.cid,
    MessageRow.reply_to,
    MessageRow.mentions,
    MessageRow.recalled,
    MessageRow.system_type,
    MessageRow.system_data,
    *users.PREFIXED_COLUMNS,
).outerjoin(UserRow, UserRow.id == MessageRow.sender_id)


def _message(row) -> Message:
    sender = users.from_prefixed_row(row)
    return Message(
        room_id=row.room_id,
        seq=row.seq,
        id=row.id,
        ts=row.ts,
        sender=sender,
        kind=row.kind,
        text=None if row.recalled else row.text,
        cid=row.cid,
        reply_to=row.reply_to,
        mentions=row.mentions,
        recalled=bool(row.recalled),
        system_type=row.system_type,
        system_data=row.system_data,
    )


class NotMember(Exception):
    """The sender of a message is not a member of its room (any more)."""


async def append_batch(
    conn: AsyncConnection, batch: list[NewMessage], *, check_membership: bool = True
) -> list[Stored | NotMember]:
    """Store a batch of messages; one result per input, in input order.

    A message whose (room, sender, cid) exists already, or repeats one earlier
    in the batch, is not stored again: its result is the first message with
    `dup=True`. A text message whose sender is not a member gives `NotMember`.
    """
    results: list[Stored | NotMember | None] = [None] * len(batch)
    room_ids = sorted({m.room_id for m in batch})

    # Lock the rooms first (id order): everything below sees a stable state. NO KEY UPDATE,
    # not UPDATE: it must not conflict with the key-share locks that foreign-key checks take
    # (a membership inserted earlier in the caller's transaction), or concurrent joins deadlock.
    await conn.execute(
        select(RoomRow.id).where(RoomRow.id.in_(room_ids)).order_by(RoomRow.id).with_for_update(key_share=True)
    )

    if check_membership:
        pairs = {(m.room_id, m.sender.id) for m in batch if m.sender is not None}
        members = await rooms.members_among(conn, pairs)
        for i, m in enumerate(batch):
            if m.sender is not None and (m.room_id, m.sender.id) not in members:
                results[i] = NotMember(m.room_id)

    existing = await _existing_by_cid(conn, [m for i, m in enumerate(batch) if results[i] is None])

    to_store: dict[str, list[int]] = defaultdict(list)
    first_in_batch: dict[tuple, int] = {}
    for i, m in enumerate(batch):
        if results[i] is not None:
            continue
        key = (m.room_id, m.sender.id, m.cid) if m.sender is not None and m.cid else None
        if key is not None and key in existing:
            results[i] = Stored(existing[key], dup=True)
        elif key is not None and key in first_in_batch:
            results[i] = first_in_batch[key]  # resolved to a dup below
        else:
            if key is not None:
                first_in_batch[key] = i
            to_store[m.room_id].append(i)

    rows = []
    ts = now_ms()
    for room_id in sorted(to_store):
        indexes = to_store[room_id]
        last = (
            await conn.execute(
                update(RoomRow)
                .where(RoomRow.id == room_id)
                .values(last_seq=RoomRow.last_seq + len(indexes))
                .returning(RoomRow.last_seq)
            )
        ).scalar_one()
        for offset, i in enumerate(indexes):
            m = batch[i]
            message = Message(
                room_id=room_id,
                seq=last - len(indexes) + 1 + offset,
                id=new_id("m"),
                ts=ts,
                sender=m.sender,
                kind=m.kind,
                text=m.text,
                cid=m.cid,
                reply_to=m.reply_to,
                mentions=m.mentions,
                system_type=m.system_type,
                system_data=m.system_data,
            )
            results[i] = Stored(message, dup=False)
            rows.append(_row(message))
    if rows:
        await conn.execute(insert(MessageRow), rows)
        senders = [
            {"r": r["room_id"], "u": r["sender_id"], "s": r["seq"]} for r in rows if r["sender_id"] is not None
        ]
        if senders:
            await _advance_read_markers(conn, senders)

    for i, result in enumerate(results):
        if isinstance(result, int):  # a repeat within the batch
            first = results[result]
            results[i] = Stored(first.message, dup=True)
    return results  # type: ignore[return-value]


def _row(message: Message) -> dict:
    return {
        "room_id": message.room_id,
        "seq": message.seq,
        "id": message.id,
        "ts": message.ts,
        "sender_id": message.sender.id if message.sender else None,
        "kind": message.kind,
        "text": message.text,
        "cid": message.cid,
        "reply_to": message.reply_to,
        "mentions": message.mentions,
        "recalled": False,
        "system_type": message.system_type,
        "system_data": message.system_data,
    }


async def _existing_by_cid(conn: AsyncConnection, batch: list[NewMessage]) -> dict[tuple, Message]:
    keyed = [m for m in batch if m.sender is not None and m.cid]
    if not keyed:
        return {}
    wanted = {(m.room_id, m.sender.id, m.cid) for m in keyed}
    rows = await conn.execute(
        _SELECT.where(
            MessageRow.room_id.in_({k[0] for k in wanted}),
            MessageRow.sender_id.in_({k[1] for k in wanted}),
            MessageRow.cid.in_({k[2] for k in wanted}),
        )
    )
    found = {}
    for row in rows:
        key = (row.room_id, row.u_id, row.cid)
        if key in wanted:
            found[key] = _message(row)
    return found


async def _advance_read_markers(conn: AsyncConnection, senders: list[dict]) -> None:
    """Sending a message moves the sender's read marker to it (PROTOCOL §2.1.6)."""
    await conn.execute(
        update(Membership)
        .where(
            Membership.room_id == bindparam("r"),
            Membership.user_id == bindparam("u"),
            Membership.read_seq < bindparam("s"),
        )
        .values(read_seq=bindparam("s"))
        .execution_options(synchronize_session=False),
        senders,
    )


async def get(conn: AsyncConnection, room_id: str, seq: int) -> Message | None:
    row = (
        await conn.execute(_SELECT.where(MessageRow.room_id == room_id, MessageRow.seq == seq))
    ).first()
    return _message(row) if row else None


async def history(
    conn: AsyncConnection,
    room_id: str,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> tuple[list[Message], bool]:
    """A page of messages in ascending seq and whether more lie beyond it.

    `after` pages forward (the `limit` messages right after it); otherwise the
    page ends right before `before` (or at the newest message) and `more`
    tells whether older ones exist.
    """
    query = _SELECT.where(MessageRow.room_id == room_id)
    if before is not None:
        query = query.where(MessageRow.seq < before)
    if after is not None:
        query = query.where(MessageRow.seq > after)
        rows = (await conn.execute(query.order_by(MessageRow.seq).limit(limit + 1))).all()
        return [_message(r) for r in rows[:limit]], len(rows) > limit
    rows = (await conn.execute(query.order_by(MessageRow.seq.desc()).limit(limit + 1))).all()
    page = [_message(r) for r in rows[:limit]]
    page.reverse()
    return page, len(rows) > limit


async def between(conn: AsyncConnection, room_id: str, after: int, upto: int) -> list[Message]:
    """Messages with `after < seq <= upto`, ascending: for resume and gap filling."""
    rows = await conn.execute(
        _SELECT.where(MessageRow.room_id == room_id, MessageRow.seq > after, MessageRow.seq <= upto).order_by(
            MessageRow.seq
        )
    )
    return [_message(r) for r in rows]


async def last_seq(conn: AsyncConnection, room_id: str) -> int | None:
    return (await conn.execute(select(RoomRow.last_seq).where(RoomRow.id == room_id))).scalar()


async def last_seqs(conn: AsyncConnection, room_ids: list[str] | set[str]) -> dict[str, int]:
    if not room_ids:
        return {}
    rows = await conn.execute(select(RoomRow.id, RoomRow.last_seq).where(RoomRow.id.in_(list(room_ids))))
    return {row.id: row.last_seq for row in rows}


async def recall(conn: AsyncConnection, room_id: str, seq: int) -> bool:
    """Mark a message recalled and erase its text; its seq stays."""
    result = await conn.execute(
        update(MessageRow)
        .where(and_(MessageRow.room_id == room_id, MessageRow.seq == seq))
        .values(recalled=True, text=None)
    )
    return result.rowcount > 0
