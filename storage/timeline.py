"""Timeline updates, replies and mentions, decided inside the group commit (docs/protocol.md §6.4, §6.5).

`messages.append_batch` hands every entry of a batch that needs earlier
state (an update of an earlier message, a reply, mentions) to a `Timeline`:
it loads that state once for the whole batch (one statement per kind of
state, whatever the batch size), applies the rules entry by entry in seq
order in memory, and writes the outcome with a few executemany statements.
Reaction counts are kept as aggregates (`reaction_counts`, at most 20 rows a
message) so `history` folds them without reading who reacted.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, Select, and_, bindparam, cast, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from . import users
from .keyset import key_params, key_table
from .models import (
    Membership,
    Message as MessageRow,
    MessageEdit,
    MessageMention,
    MessageReaction,
    ReactionCount,
    User as UserRow,
)
from .records import NewMessage, Reply, User

MAX_EMOJI = 20  # distinct emoji on one message (docs/protocol.md §6.4)
EXCERPT = 100  # characters of the original a reply quotes
UPDATE_TYPES = frozenset({"edited", "reaction", "pinned", "unpinned", "recalled"})


def update_entry(room_id: str, actor: User, type_: str, target: int, **data) -> NewMessage:
    """A timeline update of message `target` made by `actor`, for `append_batch`."""
    assert type_ in UPDATE_TYPES, type_
    return NewMessage(room_id=room_id, sender=actor, text=None, update={"type": type_, "target": target, **data})


def edit_entry(room_id: str, author: User, target: int, text: str) -> NewMessage:
    return update_entry(room_id, author, "edited", target, text=text)


def reaction_entry(room_id: str, user: User, target: int, emoji: str, on: bool = True) -> NewMessage:
    return update_entry(room_id, user, "reaction", target, emoji=emoji, on=on)


def pin_entry(room_id: str, by: User, target: int, pinned: bool = True) -> NewMessage:
    """A `pinned` / `unpinned` update (for pins, docs/protocol.md §6.4): no entry if already so."""
    return update_entry(room_id, by, "pinned" if pinned else "unpinned", target)


def recall_entry(room_id: str, by: User, target: int) -> NewMessage:
    return update_entry(room_id, by, "recalled", target)


class Refused(Exception):
    """An entry the rules refuse; `code` is a protocol error code (`invalid`, `forbidden`, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class _Target:
    """A message as the batch sees it: loaded once, changed in memory, written back if dirty."""

    kind: str
    sender: User | None
    ts: int
    text: str | None
    recalled: bool
    pinned: bool
    edited_ts: int | None
    dirty: bool = False


@dataclass(slots=True)
class Outcome:
    """What applying one entry adds to it: the update's full data, a reply, who is mentioned."""

    update: dict | None = None
    reply: Reply | None = None
    mentioned: tuple[str, ...] = ()
    unchanged: bool = False


_SEQ_KEY = ("rid", "seq")
_MINE_KEY = ("rid", "seq", "uid")


@functools.cache
def _targets_query(dialect: str) -> Select:
    keys = key_table(dialect, _SEQ_KEY)
    return (
        select(
            MessageRow.room_id,
            MessageRow.seq,
            MessageRow.kind,
            MessageRow.ts,
            MessageRow.text,
            MessageRow.recalled,
            MessageRow.pinned,
            MessageRow.edited_ts,
            *users.PREFIXED_COLUMNS,
        )
        .join(keys, and_(MessageRow.room_id == keys.c.rid, MessageRow.seq == cast(keys.c.seq, BigInteger)))
        .outerjoin(UserRow, UserRow.id == MessageRow.sender_id)
    )


@functools.cache
def _counts_query(dialect: str) -> Select:
    keys = key_table(dialect, _SEQ_KEY)
    return select(ReactionCount.room_id, ReactionCount.seq, ReactionCount.emoji, ReactionCount.count,
                  ReactionCount.first_seq).join(
        keys, and_(ReactionCount.room_id == keys.c.rid, ReactionCount.seq == cast(keys.c.seq, BigInteger))
    )


@functools.cache
def _mine_query(dialect: str) -> Select:
    keys = key_table(dialect, _MINE_KEY)
    return select(MessageReaction.room_id, MessageReaction.seq, MessageReaction.emoji, MessageReaction.user_id).join(
        keys,
        and_(
            MessageReaction.room_id == keys.c.rid,
            MessageReaction.user_id == keys.c.uid,
            MessageReaction.seq == cast(keys.c.seq, BigInteger),
        ),
    )


def _seq_keys(pairs) -> list[tuple[str, str]]:
    return [(room, str(seq)) for room, seq in pairs]


async def load_targets(conn: AsyncConnection, pairs: set[tuple[str, int]]) -> dict[tuple[str, int], _Target]:
    """The messages at these (room, seq), by key; absent keys do not exist."""
    if not pairs:
        return {}
    dialect = conn.dialect.name
    rows = await conn.execute(_targets_query(dialect), key_params(dialect, _SEQ_KEY, _seq_keys(pairs)))
    return {
        (row.room_id, row.seq): _Target(
            kind=row.kind,
            sender=users.from_prefixed_row(row),
            ts=row.ts,
            text=row.text,
            recalled=bool(row.recalled),
            pinned=bool(row.pinned),
            edited_ts=row.edited_ts,
        )
        for row in rows
    }


async def reaction_counts(
    conn: AsyncConnection, pairs: set[tuple[str, int]]
) -> dict[tuple[str, int], dict[str, list[int]]]:
    """(room, seq) -> {emoji: [count, first_seq]} from the aggregate table."""
    found: dict[tuple[str, int], dict[str, list[int]]] = {}
    if not pairs:
        return found
    dialect = conn.dialect.name
    rows = await conn.execute(_counts_query(dialect), key_params(dialect, _SEQ_KEY, _seq_keys(pairs)))
    for row in rows:
        found.setdefault((row.room_id, row.seq), {})[row.emoji] = [row.count, row.first_seq]
    return found


async def reactions_of(conn: AsyncConnection, keys: set[tuple[str, int, str]]) -> set[tuple[str, int, str, str]]:
    """The (room, seq, emoji, user) reactions of these users on these messages (room, seq, user)."""
    if not keys:
        return set()
    dialect = conn.dialect.name
    rows = await conn.execute(
        _mine_query(dialect), key_params(dialect, _MINE_KEY, [(r, str(s), u) for r, s, u in keys])
    )
    return {(row.room_id, row.seq, row.emoji, row.user_id) for row in rows}


class Timeline:
    """The earlier state a batch needs, and the rules applied against it in seq order."""

    def __init__(self) -> None:
        self.targets: dict[tuple[str, int], _Target] = {}
        self.members: dict[str, set[str]] = {}
        self._mine_before: set[tuple[str, int, str, str]] = set()
        self.mine: set[tuple[str, int, str, str]] = set()
        self._counts_before: dict[tuple[str, int, str], tuple[int, int]] = {}
        self.counts: dict[tuple[str, int], dict[str, list[int]]] = {}
        self.edits: list[dict] = []
        self.mention_rows: list[dict] = []

    @staticmethod
    def needed(m: NewMessage) -> bool:
        return m.update is not None or m.reply_to is not None or bool(m.mentions)

    async def load(self, conn: AsyncConnection, entries: list[NewMessage]) -> None:
        target_keys: set[tuple[str, int]] = set()
        reaction_keys: set[tuple[str, int]] = set()
        mine_keys: set[tuple[str, int, str]] = set()
        mention_rooms: set[str] = set()
        for m in entries:
            if m.update is not None:
                key = (m.room_id, m.update["target"])
                target_keys.add(key)
                if m.update["type"] == "reaction":
                    reaction_keys.add(key)
                    mine_keys.add((*key, m.sender.id))
            if m.reply_to is not None:
                target_keys.add((m.room_id, m.reply_to))
            if m.mentions:
                mention_rooms.add(m.room_id)
        self.targets = await load_targets(conn, target_keys)
        self.counts = await reaction_counts(conn, reaction_keys)
        self._counts_before = {
            (room, seq, emoji): (c[0], c[1]) for (room, seq), by in self.counts.items() for emoji, c in by.items()
        }
        self._mine_before = await reactions_of(conn, mine_keys)
        self.mine = set(self._mine_before)
        if mention_rooms:
            rows = await conn.execute(
                select(Membership.room_id, Membership.user_id).where(Membership.room_id.in_(sorted(mention_rooms)))
            )
            for row in rows:
                self.members.setdefault(row.room_id, set()).add(row.user_id)

    def apply(self, m: NewMessage, seq: int, ts: int) -> Outcome:
        """Check one entry against the state so far and change that state; raises `Refused`."""
        if m.update is not None:
            return self._update(m, seq, ts)
        outcome = Outcome()
        if m.reply_to is not None:
            original = self.targets.get((m.room_id, m.reply_to))
            if original is None or original.kind != "text":
                raise Refused("invalid", "reply_to: must be the seq of a text message of this room")
            excerpt = "" if original.recalled else (original.text or "")[:EXCERPT]
            outcome.reply = Reply(seq=m.reply_to, sender=original.sender, excerpt=excerpt)
        if m.mentions:
            members = self.members.get(m.room_id, set())
            if m.mentions == "all":
                mentioned = tuple(sorted(members - {m.sender.id}))
            else:
                strangers = [u for u in m.mentions if u not in members]
                if strangers:
                    raise Refused("invalid", f"mentions: not members of this room: {', '.join(strangers[:5])}")
                mentioned = tuple(u for u in m.mentions if u != m.sender.id)
            outcome.mentioned = mentioned
            self.mention_rows.extend({"user_id": u, "room_id": m.room_id, "seq": seq} for u in mentioned)
        return outcome

    def _update(self, m: NewMessage, seq: int, ts: int) -> Outcome:
        kind = m.update["type"]
        target_seq = m.update["target"]
        target = self.targets.get((m.room_id, target_seq))
        if target is None:
            raise Refused("not_found", f"message {target_seq} does not exist in this room")
        if target.kind != "text":
            raise Refused("invalid", "seq: system messages and updates cannot be changed")
        data = {"type": kind, "target": target_seq}
        if kind == "recalled":
            if target.recalled:
                return Outcome(unchanged=True)
            target.recalled, target.text, target.dirty = True, None, True
            return Outcome(update=data)
        if target.recalled:
            raise Refused("invalid", "seq: the message was recalled")
        if kind == "edited":
            if target.sender is None or target.sender.id != m.sender.id:
                raise Refused("forbidden", "only the author may edit a message")
            # The replaced version, keyed by the seq of the edit that replaced it: oldest first.
            self.edits.append(
                {"room_id": m.room_id, "seq": target_seq, "version": seq, "text": target.text or "",
                 "ts": target.edited_ts or target.ts}
            )
            target.text, target.edited_ts, target.dirty = m.update["text"], ts, True
            return Outcome(update={**data, "text": m.update["text"], "edited_ts": ts})
        if kind in ("pinned", "unpinned"):
            pinned = kind == "pinned"
            if target.pinned == pinned:
                return Outcome(unchanged=True)
            target.pinned, target.dirty = pinned, True
            return Outcome(update=data)
        # reaction
        emoji, on = m.update["emoji"], m.update["on"]
        mine = (m.room_id, target_seq, emoji, m.sender.id)
        if (mine in self.mine) == on:
            return Outcome(unchanged=True)  # the same way twice: no entry (docs/protocol.md §6.4)
        counts = self.counts.setdefault((m.room_id, target_seq), {})
        if on:
            if emoji not in counts and len(counts) >= MAX_EMOJI:
                raise Refused("conflict", f"a message carries at most {MAX_EMOJI} different emoji")
            self.mine.add(mine)
            counts.setdefault(emoji, [0, seq])[0] += 1
        else:
            self.mine.discard(mine)
            counts[emoji][0] -= 1
            if counts[emoji][0] <= 0:
                del counts[emoji]
        return Outcome(update={**data, "emoji": emoji, "on": on})

    async def write(self, conn: AsyncConnection) -> None:
        """Store what the applied entries changed (each kind of change in one executemany)."""
        dirty = [(key, t) for key, t in self.targets.items() if t.dirty]
        if dirty:
            await conn.execute(
                _UPDATE_TARGET,
                [
                    {"r": room, "s": seq, "t_text": t.text, "t_recalled": t.recalled, "t_pinned": t.pinned,
                     "t_edited_ts": t.edited_ts}
                    for (room, seq), t in dirty
                ],
            )
        if self.edits:
            await conn.execute(insert(MessageEdit), self.edits)
        added = self.mine - self._mine_before
        removed = self._mine_before - self.mine
        if removed:
            await conn.execute(_DELETE_REACTION, [{"r": r, "s": s, "e": e, "u": u} for r, s, e, u in removed])
        if added:
            await conn.execute(
                insert(MessageReaction), [{"room_id": r, "seq": s, "emoji": e, "user_id": u} for r, s, e, u in added]
            )
        after = {
            (room, seq, emoji): (c[0], c[1]) for (room, seq), by in self.counts.items() for emoji, c in by.items()
        }
        gone = [k for k in self._counts_before if k not in after]
        new = [k for k in after if k not in self._counts_before]
        changed = [k for k in after if k in self._counts_before and after[k] != self._counts_before[k]]
        if gone:
            await conn.execute(_DELETE_COUNT, [{"r": r, "s": s, "e": e} for r, s, e in gone])
        if new:
            await conn.execute(
                insert(ReactionCount),
                [{"room_id": r, "seq": s, "emoji": e, "count": after[(r, s, e)][0],
                  "first_seq": after[(r, s, e)][1]} for r, s, e in new],
            )
        if changed:
            await conn.execute(_SET_COUNT, [{"r": r, "s": s, "e": e, "c": after[(r, s, e)][0]} for r, s, e in changed])
        if self.mention_rows:
            await conn.execute(insert(MessageMention), self.mention_rows)


_MESSAGES = MessageRow.__table__
_UPDATE_TARGET = (
    update(_MESSAGES)
    .where(_MESSAGES.c.room_id == bindparam("r"), _MESSAGES.c.seq == bindparam("s"))
    .values(
        text=bindparam("t_text"),
        recalled=bindparam("t_recalled"),
        pinned=bindparam("t_pinned"),
        edited_ts=bindparam("t_edited_ts"),
    )
)
_REACTIONS = MessageReaction.__table__
_DELETE_REACTION = delete(_REACTIONS).where(
    _REACTIONS.c.room_id == bindparam("r"),
    _REACTIONS.c.seq == bindparam("s"),
    _REACTIONS.c.emoji == bindparam("e"),
    _REACTIONS.c.user_id == bindparam("u"),
)
_COUNTS = ReactionCount.__table__
_DELETE_COUNT = delete(_COUNTS).where(
    _COUNTS.c.room_id == bindparam("r"), _COUNTS.c.seq == bindparam("s"), _COUNTS.c.emoji == bindparam("e")
)
_SET_COUNT = (
    update(_COUNTS)
    .where(_COUNTS.c.room_id == bindparam("r"), _COUNTS.c.seq == bindparam("s"), _COUNTS.c.emoji == bindparam("e"))
    .values(count=bindparam("c"))
)
