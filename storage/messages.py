"""Messages: gapless per-room seqs, idempotent sends, history and replay.

`append_batch` stores many messages in the caller's transaction (group
commit). Seqs are taken from `rooms.last_seq` in that same transaction, so a
rolled-back batch leaves no gap and concurrent writers on other nodes queue
on the room row. Rooms are locked in id order so two batches never deadlock.
"""

from __future__ import annotations

import dataclasses
import functools

from sqlalchemy import Select, and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from . import files, rooms, timeline, users
from .db import now_ms
from .ids import new_id
from .keyset import key_params, key_table
from .models import Membership, Message as MessageRow, MessageEdit, Room as RoomRow, User as UserRow
from .prepared import prepared
from .records import Message, NewMessage, Reaction, Reply, Stored, Unchanged
from .timeline import Refused, Timeline

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
    MessageRow.edited_ts,
    MessageRow.pinned,
    MessageRow.update_data,
    MessageRow.files,
    *users.PREFIXED_COLUMNS,
).outerjoin(UserRow, UserRow.id == MessageRow.sender_id)


# The statements of `append_batch`, built once: SQLAlchemy then finds them in its compiled
# cache without walking them again, and each runs as one executemany.
_ROOM_KEY = ("id",)


@functools.cache
def _lock_rooms(dialect: str) -> Select:
    """Rooms' last seqs, locked, for the keys given to `key_params(dialect, _ROOM_KEY, ...)`.

    A key table, not an expanding `IN`: SQLAlchemy rewrites an expanding `IN` with a regular
    expression on every execution (~3 % of the instructions of a one-message commit).
    """
    keys = key_table(dialect, _ROOM_KEY)
    return prepared(
        select(RoomRow.id, RoomRow.last_seq)
        .join(keys, RoomRow.id == keys.c.id)
        .order_by(RoomRow.id)
        .with_for_update(key_share=True, of=RoomRow)
    )


_ROOMS = RoomRow.__table__
_SET_LAST_SEQ = prepared(update(_ROOMS).where(_ROOMS.c.id == bindparam("room")).values(last_seq=bindparam("last")))
_INSERT = prepared(insert(MessageRow.__table__))
_MEMBERSHIPS = Membership.__table__
_ADVANCE_READ_MARKER = prepared(
    update(_MEMBERSHIPS)
    .where(
        _MEMBERSHIPS.c.room_id == bindparam("r"),
        _MEMBERSHIPS.c.user_id == bindparam("u"),
        _MEMBERSHIPS.c.read_seq < bindparam("s"),
    )
    .values(read_seq=bindparam("s"))
)


_CID_KEY = ("rid", "uid", "cid")


@functools.cache
def _by_cid(dialect: str) -> Select:
    """Messages by (room, sender, cid), for the keys given to `key_params(dialect, _CID_KEY, ...)`."""
    keys = key_table(dialect, _CID_KEY)
    return prepared(_SELECT.join(
        keys, and_(MessageRow.room_id == keys.c.rid, MessageRow.sender_id == keys.c.uid, MessageRow.cid == keys.c.cid)
    ))


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
        update=row.update_data,
        edited_ts=row.edited_ts,
        pinned=bool(row.pinned),
        files=None if row.recalled else row.files,
    )


class NotMember(Exception):
    """The sender of a message is not a member of its room (any more)."""


async def append_batch(
    conn: AsyncConnection, batch: list[NewMessage], *, check_membership: bool = True
) -> list[Stored | NotMember | files.FilesRefused | Refused | Unchanged]:
    """Store a batch of messages and timeline updates; one result per input, in input order.

    A message whose (room, sender, cid) exists already, or repeats one earlier
    in the batch, is not stored again: its result is the first message with
    `dup=True`. A text message whose sender is not a member gives `NotMember`; one naming
    files that are missing or not the sender's gives `FilesRefused`. An update, a reply or
    mentions that break docs/protocol.md §6.4/§6.5 give `Refused`; an update that changes
    nothing gives `Unchanged` (no entry).
    """
    results: list[Stored | NotMember | Refused | Unchanged | None] = [None] * len(batch)

    # Lock the rooms first (id order) and read their last seqs: everything below sees a stable
    # state. NO KEY UPDATE, not UPDATE: it must not conflict with the key-share locks that
    # foreign-key checks take (a membership inserted earlier in the caller's transaction), or
    # concurrent joins deadlock.
    dialect = conn.dialect.name
    room_keys = [(room_id,) for room_id in sorted({m.room_id for m in batch})]
    locked = await conn.execute(_lock_rooms(dialect), key_params(dialect, _ROOM_KEY, room_keys))
    last_seqs: dict[str, int] = {room_id: last_seq for room_id, last_seq in locked}

    if check_membership:
        pairs = {(m.room_id, m.sender.id) for m in batch if m.sender is not None}
        members = await rooms.members_among(conn, pairs)
        for i, m in enumerate(batch):
            if m.sender is not None and (m.room_id, m.sender.id) not in members:
                results[i] = NotMember(m.room_id)

    existing = await _existing_by_cid(conn, [m for i, m in enumerate(batch) if results[i] is None])
    needing = [m for i, m in enumerate(batch) if results[i] is None and Timeline.needed(m)]
    state = Timeline()
    if needing:
        await state.load(conn, needing)
    attached = await files.resolve_for_messages(conn, batch)  # {index: carried files | FilesRefused}

    # Every statement below is one executemany whatever the number of rooms: its cost per
    # batch, not per room, is what bounds ingest (one statement is a round trip to the
    # database, or a hop to SQLite's thread).
    first_in_batch: dict[tuple, int] = {}
    rows: list[dict] = []
    read_markers: dict[tuple[str, str], int] = {}
    ts = now_ms()
    for i, m in enumerate(batch):
        if results[i] is not None:
            continue
        key = (m.room_id, m.sender.id, m.cid) if m.sender is not None and m.cid else None
        if key is not None and key in existing:
            results[i] = Stored(existing[key], dup=True)
            continue
        if key is not None and key in first_in_batch:
            results[i] = first_in_batch[key]  # resolved to a dup below
            continue
        if isinstance(attached.get(i), files.FilesRefused):
            results[i] = attached[i]
            continue
        seq = last_seqs[m.room_id] + 1
        outcome = None
        if needing and Timeline.needed(m):
            try:
                outcome = state.apply(m, seq, ts)
            except Refused as refused:
                results[i] = refused
                continue
            if outcome.unchanged:
                results[i] = Unchanged()
                continue
        if key is not None:
            first_in_batch[key] = i
        last_seqs[m.room_id] = seq
        message = Message(
            room_id=m.room_id,
            seq=seq,
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
            update=outcome.update if outcome else None,
            reply=outcome.reply if outcome else None,
            files=attached.get(i),
        )
        results[i] = Stored(message, dup=False, mentioned=outcome.mentioned if outcome else ())
        rows.append(_row(message))
        if m.sender is not None and m.update is None:
            # Update entries never move read markers (docs/protocol.md §6.4).
            read_markers[(m.room_id, m.sender.id)] = seq
    if rows:
        advanced = {row["room_id"] for row in rows}
        await conn.execute(_SET_LAST_SEQ, [{"room": r, "last": last_seqs[r]} for r in sorted(advanced)])
        await conn.execute(_INSERT, rows)
        if needing:
            await state.write(conn)
        if attached:
            await files.link_messages(conn, [r for r in results if isinstance(r, Stored)])
        if read_markers:
            # Sending a message moves the sender's read marker to it (docs/protocol.md §4.6).
            await conn.execute(
                _ADVANCE_READ_MARKER, [{"r": r, "u": u, "s": s} for (r, u), s in read_markers.items()]
            )

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
        "edited_ts": None,
        "pinned": False,
        "update_data": message.update,
        "files": message.files,
    }


async def _existing_by_cid(conn: AsyncConnection, batch: list[NewMessage]) -> dict[tuple, Message]:
    keyed = [m for m in batch if m.sender is not None and m.cid]
    if not keyed:
        return {}
    wanted = {(m.room_id, m.sender.id, m.cid) for m in keyed}
    dialect = conn.dialect.name
    rows = await conn.execute(_by_cid(dialect), key_params(dialect, _CID_KEY, wanted))
    found = {}
    for row in rows:
        key = (row.room_id, row.u_id, row.cid)
        if key in wanted:
            found[key] = _message(row)
    return found


async def get(conn: AsyncConnection, room_id: str, seq: int, *, viewer_id: str | None = None) -> Message | None:
    """One message; with `viewer_id`, folded like `history` shows it."""
    row = (
        await conn.execute(_SELECT.where(MessageRow.room_id == room_id, MessageRow.seq == seq))
    ).first()
    if row is None:
        return None
    found = await _with_replies(conn, [_message(row)])
    if viewer_id is not None:
        found = await _with_reactions(conn, found, viewer_id)
    return found[0]


async def history(
    conn: AsyncConnection,
    room_id: str,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
    viewer_id: str | None = None,
) -> tuple[list[Message], bool]:
    """A page of messages in ascending seq and whether more lie beyond it.

    `after` pages forward (the `limit` messages right after it); otherwise the
    page ends right before `before` (or at the newest message) and `more`
    tells whether older ones exist. Each message shows the effect of every
    update so far (docs/protocol.md §6.4): its row holds the current text,
    `edited_ts`, `pinned` and `recalled`; reactions come from the per-emoji
    aggregates (with `me` for `viewer_id`), so a page reads a bounded number
    of rows however many people reacted.
    """
    query = _SELECT.where(MessageRow.room_id == room_id)
    if before is not None:
        query = query.where(MessageRow.seq < before)
    if after is not None:
        query = query.where(MessageRow.seq > after)
        rows = (await conn.execute(query.order_by(MessageRow.seq).limit(limit + 1))).all()
        page, more = [_message(r) for r in rows[:limit]], len(rows) > limit
    else:
        rows = (await conn.execute(query.order_by(MessageRow.seq.desc()).limit(limit + 1))).all()
        page = [_message(r) for r in rows[:limit]]
        page.reverse()
        more = len(rows) > limit
    page = await _with_replies(conn, page)
    if viewer_id is not None:
        page = await _with_reactions(conn, page, viewer_id)
    return page, more


async def between(conn: AsyncConnection, room_id: str, after: int, upto: int) -> list[Message]:
    """Messages with `after < seq <= upto`, ascending: for resume and gap filling.

    Not folded with reactions: the update entries that follow carry them.
    """
    rows = await conn.execute(
        _SELECT.where(MessageRow.room_id == room_id, MessageRow.seq > after, MessageRow.seq <= upto).order_by(
            MessageRow.seq
        )
    )
    return await _with_replies(conn, [_message(r) for r in rows])


async def _with_replies(conn: AsyncConnection, found: list[Message]) -> list[Message]:
    """Give each reply its quote of the original's current text (docs/protocol.md §6.5)."""
    pairs = {(m.room_id, m.reply_to) for m in found if m.reply_to is not None and m.kind == "text"}
    if not pairs:
        return found
    originals = await timeline.load_targets(conn, pairs)
    out = []
    for m in found:
        original = originals.get((m.room_id, m.reply_to)) if m.reply_to is not None else None
        if original is not None and m.kind == "text":
            excerpt = "" if original.recalled else (original.text or "")[: timeline.EXCERPT]
            m = dataclasses.replace(m, reply=Reply(seq=m.reply_to, sender=original.sender, excerpt=excerpt))
        out.append(m)
    return out


async def _with_reactions(conn: AsyncConnection, found: list[Message], viewer_id: str) -> list[Message]:
    """Fold the reaction aggregates into text messages, `me` for the viewer: bounded reads."""
    pairs = {(m.room_id, m.seq) for m in found if m.kind == "text" and not m.recalled}
    counts = await timeline.reaction_counts(conn, pairs)
    mine = await timeline.reactions_of(conn, {(room, seq, viewer_id) for room, seq in counts})
    out = []
    for m in found:
        if (m.room_id, m.seq) in pairs:
            by_emoji = counts.get((m.room_id, m.seq), {})
            ordered = sorted(by_emoji.items(), key=lambda item: item[1][1])
            reactions = tuple(
                Reaction(emoji=e, count=c[0], me=(m.room_id, m.seq, e, viewer_id) in mine) for e, c in ordered
            )
            m = dataclasses.replace(m, reactions=reactions)
        out.append(m)
    return out


async def edits(conn: AsyncConnection, room_id: str, seq: int) -> list[tuple[str, int]]:
    """Earlier versions of a message as (text, ts), oldest first."""
    rows = await conn.execute(
        select(MessageEdit.text, MessageEdit.ts)
        .where(MessageEdit.room_id == room_id, MessageEdit.seq == seq)
        .order_by(MessageEdit.version)
    )
    return [(row.text, row.ts) for row in rows]


async def last_seq(conn: AsyncConnection, room_id: str) -> int | None:
    return (await conn.execute(select(RoomRow.last_seq).where(RoomRow.id == room_id))).scalar()


async def last_seqs(conn: AsyncConnection, room_ids: list[str] | set[str]) -> dict[str, int]:
    if not room_ids:
        return {}
    rows = await conn.execute(select(RoomRow.id, RoomRow.last_seq).where(RoomRow.id.in_(list(room_ids))))
    return {row.id: row.last_seq for row in rows}
