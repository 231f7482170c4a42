"""PostgreSQL: message search (docs/protocol.md §12.13), reading as few rows as it can.

The rooms of a busy server interleave in time, so one room's messages lie on about
as many heap pages as it has messages: every row a search reads costs a page visit,
and an index that answers for all rooms (pg_trgm's) hands back every room's matches
to be read and thrown away. So a search reads, cheapest first:

1. **Windows.** Each of the caller's rooms, newest first, a few rows deep (the
   primary key, backwards; `PROBE_ROWS` in all). The matches newer than the
   newest window floor are complete (every room's rows after it were read); when
   they fill the page, that is the page. The probe also says how common `q` is:
   when a deeper window (`WINDOW_ROWS` in all at most) should fill the page, that
   is read next.
2. **The word index** (migration 0008), when `q` holds a word that every text
   containing `q` has (`words_of`): its posting lists in the caller's rooms only,
   and the rows of each room the index has not read yet (`index` reads them
   after the commits, for the search indexer).
3. **The trigram index** (migration 0004), for 3 characters or more.
4. Otherwise (2 characters, no word) the caller's rooms are read whole.

A match is `strpos(lower(text), lower(q)) > 0`, what `ILIKE '%q%'` tests, but in
a form the planner cannot send to the trigram index: given a window's rows and an
ILIKE, it ran the whole trigram index once per room (seconds, where 20 ms was due).
Windows assume that a room's `ts` grows with its `seq`, as one writer stores them.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .search_sql import SEARCHABLE, SENDER, like_pattern

PROBE_ROWS = 800  # rows the first window reads, all rooms together (~1.5 ms)
WINDOW_ROWS = 10_000  # rows a deeper window reads at most, all rooms together (~15 ms)
LONGEST_WORD = 200  # migration 0008 indexes a longer word of a long text by its first (and last) 200
SHORTEST_USEFUL = 3  # a shorter piece of a word selects too much to be worth reading


@dataclass(frozen=True, slots=True)
class Word:
    """A piece of a word that every text containing `q` has: a whole word (it `begins` and
    `ends` one), a word's beginning, or a word's end."""

    text: str
    begins: bool
    ends: bool

    def lexeme(self, room: str) -> str:
        """This piece as a tsquery operand in `room`'s lexemes (migration 0008): the word, or a
        prefix of the words (or of the reversed words) that begin (or end) with it."""
        whole = self.begins and self.ends and len(self.text) <= LONGEST_WORD
        if self.begins:
            found = f"{room}:{self.text[:LONGEST_WORD]}"
        else:
            found = f"{room}<{self.text[::-1][:LONGEST_WORD]}"
        quoted = found.replace("\\", "\\\\").replace("'", "''")
        return f"'{quoted}'" + ("" if whole else ":*")


_RUN = re.compile(r"[a-z0-9]+")


def words_of(lowered: str) -> list[Word]:
    """The pieces of words that every text containing `q` has, given `lowered`, `lower(q)` as
    the database lowers it (a search matches `lower(text)` against it, and the word index splits
    `lower(text)` at every character but a-z and 0-9). A run of those characters in `lowered`
    begins a word of the text when another character precedes it, and ends one when another
    follows it; the run that is all of `lowered` may be inside a longer word: it gives nothing."""
    found = []
    for run in _RUN.finditer(lowered):
        begins, ends = run.start() > 0, run.end() < len(lowered)
        if begins or ends:
            found.append(Word(run.group(), begins, ends))
    return found


def words_queries(rooms: list[str], words: list[Word]) -> list[str]:
    """For each of `rooms`, the tsquery that finds `words` in it."""
    return [" & ".join(word.lexeme(room) for word in words) for room in rooms]


async def messages(conn: AsyncConnection, q: str, member_id: str, room_id: str | None, keyset: dict | None,
                   limit: int) -> list:
    """The newest `limit` messages containing `q` (after the `keyset`) in the rooms `member_id`
    is in (each statement reads the memberships as it runs), or in `room_id` alone; as rows of
    `room_id, seq, id, ts, text` and the sender's `u_` columns."""
    found = (await conn.execute(_ROOMS_AND_LOWERED[room_id is not None],
                                {"q": q, "me": member_id, "room": room_id})).one()
    rooms, lowered = found.rooms, found.lowered
    if not rooms:
        return []
    shape = (room_id is not None, keyset is not None)
    base = {"q": q, "rooms": rooms, "me": member_id, "limit": limit, **(keyset or {})}
    window: int | None = max(1, PROBE_ROWS // len(rooms))
    while window is not None:
        rows = list(await conn.execute(_window_query(*shape), {**base, "window": window}))
        read = rows[0]
        bound = read.bound  # None: every room was read whole
        complete = [row for row in rows if row.id is not None and (bound is None or row.ts > bound)]
        if bound is None or len(complete) >= limit:
            return complete[:limit]
        window = _deeper_window(read, window, len(rooms), keyset, limit)
    words = [word for word in words_of(lowered) if len(word.text) >= SHORTEST_USEFUL]
    if words and not any(" " in room for room in rooms):  # a space would split the room's lexemes
        return list(await conn.execute(_words_query(*shape), {**base, "words": words_queries(rooms, words)}))
    if len(q) >= 3:
        return list(await conn.execute(_trigram_query(*shape), {**base, "pattern": like_pattern(q)}))
    return list(await conn.execute(_whole_rooms_query(*shape), base))


# The rooms a search reads (for the word query and for sizing windows; each statement that
# reads messages reads the memberships again), and `q` lowered as the database lowers text.
_ROOMS_AND_LOWERED = {
    False: text("SELECT ARRAY(SELECT room_id FROM memberships WHERE user_id = :me) AS rooms, "
                "lower(CAST(:q AS TEXT)) AS lowered"),
    True: text("SELECT ARRAY[CAST(:room AS VARCHAR)] AS rooms, lower(CAST(:q AS TEXT)) AS lowered"),
}


def _deeper_window(read, window: int, rooms: int, keyset: dict | None, limit: int) -> int | None:
    """Rows per room the next window should read to fill the page, judging by the window just
    `read` (how many of its rows matched, how many were newer than the cursor); None when `q`
    was too rare there for a window within `WINDOW_ROWS` to fill it."""
    if not read.hits:
        return None
    newer = read.newer
    if keyset is not None and newer == read.seen and read.newest > read.oldest:
        # The cursor is older than all that was read: guess how much more is newer, by time.
        newer = read.seen * (read.newest - keyset["k_ts"]) / (read.newest - read.oldest)
    wanted = math.ceil((newer + 2 * limit * read.seen / read.hits) / rooms)
    most = WINDOW_ROWS // rooms
    deeper = min(most, max(wanted, 2 * window))
    return deeper if wanted <= most and deeper > window else None


_CONTAINS = "strpos(lower(m.text), lower(CAST(:q AS TEXT))) > 0"
_AFTER = "({p}ts, {p}room_id, {p}seq) < (CAST(:k_ts AS BIGINT), CAST(:k_room AS VARCHAR), CAST(:k_seq AS BIGINT))"
_NEWEST_FIRST = "ORDER BY {p}ts DESC, {p}room_id DESC, {p}seq DESC LIMIT :limit"
_HIT = "{p}room_id, {p}seq, {p}id, {p}ts, {p}text"


def _and_after(keyset: bool) -> str:
    """The condition that a message `m` comes after the cursor, as an `AND` to add (or nothing)."""
    return " AND " + _AFTER.format(p="m.") if keyset else ""


def _rooms(one_room: bool) -> str:
    """The rooms searched, read in the statement that reads their messages: a room left a moment
    ago is never searched, nor one joined a moment ago missed."""
    return ("SELECT unnest(CAST(:rooms AS VARCHAR[])) AS id" if one_room
            else "SELECT ms.room_id AS id FROM memberships ms WHERE ms.user_id = :me")


@functools.cache
def _window_query(one_room: bool, keyset: bool):
    """Each room's newest `:window` rows; of them, the matches after the cursor, newest first,
    and on every row (also the one row when none matches): how many rows were read (`seen`),
    matched (`hits`) and were not after the cursor (`newer`), their oldest and newest `ts`,
    and `bound`, the newest floor of a room that has older rows than its window."""
    after = _AFTER.format(p="w.") if keyset else "true"
    return text(
        f"WITH win AS MATERIALIZED (SELECT w.*, {after} AS after FROM ({_rooms(one_room)}) AS mine "
        f"CROSS JOIN LATERAL (SELECT {_HIT.format(p='m.')}, m.sender_id, ({SEARCHABLE} AND {_CONTAINS}) AS hit "
        "FROM messages m WHERE m.room_id = mine.id ORDER BY m.seq DESC LIMIT :window) AS w), "
        "seen AS (SELECT count(*) AS seen, count(*) FILTER (WHERE hit) AS hits, count(*) FILTER (WHERE NOT after) "
        "AS newer, min(ts) AS oldest, max(ts) AS newest FROM win), "
        "floors AS (SELECT max(floor) AS bound FROM (SELECT min(ts) AS floor FROM win GROUP BY room_id "
        "HAVING count(*) = :window) AS f) "
        "SELECT seen.*, floors.bound, h.* FROM seen CROSS JOIN floors LEFT JOIN LATERAL ("
        f"SELECT {_HIT.format(p='w.')}, {SENDER} FROM win w LEFT JOIN users u ON u.id = w.sender_id "
        f"WHERE w.hit AND w.after {_NEWEST_FIRST.format(p='w.')}) AS h ON true"
    )


@functools.cache
def _trigram_query(one_room: bool, keyset: bool):
    """The matches in the caller's rooms, newest first, found by the trigram index. Its
    `room_id = ANY` lets the planner narrow the index's answer by the primary key."""
    after = _and_after(keyset)
    return text(  # senders joined to the page only: the planner may expect thousands of rows
        f"SELECT h.*, {SENDER} FROM (SELECT {_HIT.format(p='m.')}, m.sender_id FROM messages m "
        "WHERE m.text ILIKE :pattern ESCAPE '\\' AND m.room_id = ANY(CAST(:rooms AS VARCHAR[])) "
        f"AND (m.room_id || '') IN ({_rooms(one_room)}) AND {SEARCHABLE}{after} "
        f"{_NEWEST_FIRST.format(p='m.')}) AS h LEFT JOIN users u ON u.id = h.sender_id " + _NEWEST_FIRST.format(p="h.")
    )


@functools.cache
def _words_query(one_room: bool, keyset: bool):
    """The matches in the caller's rooms, newest first: from the word index, room by room (a
    tsquery of all rooms at once cost more to evaluate than the rooms' postings did to read,
    and the planner, misjudging it, read the whole index), up to each room's progress (above
    it the index may hold rows written by edits), and above it from the messages themselves
    (`_whole_rooms_query`'s way). Each row is checked against the message as it reads now."""
    after = _and_after(keyset)
    member = "" if one_room else " WHERE mine.id IN (SELECT ms.room_id FROM memberships ms WHERE ms.user_id = :me)"
    return text(
        f"SELECT h.*, {SENDER} FROM (SELECT t.* FROM unnest(CAST(:rooms AS VARCHAR[]), CAST(:words AS TEXT[])) "
        "AS mine(id, words) LEFT JOIN message_words_progress p ON p.room_id = mine.id CROSS JOIN LATERAL ("
        f"SELECT {_HIT.format(p='m.')}, m.sender_id FROM message_words w JOIN messages m ON m.room_id = w.room_id "
        "AND m.seq = w.seq WHERE w.words @@ CAST(mine.words AS tsquery) AND w.seq <= p.upto "
        "AND (m.room_id || '') = mine.id "  # no key of an index: the planner must not read the room whole
        f"AND {SEARCHABLE} AND {_CONTAINS}{after} "
        f"UNION ALL SELECT {_HIT.format(p='m.')}, m.sender_id FROM messages m WHERE m.room_id = mine.id "
        f"AND m.seq > coalesce(p.upto, 0) AND {SEARCHABLE} AND {_CONTAINS}{after} "
        f"{_NEWEST_FIRST.format(p='')}) AS t{member} "
        f"{_NEWEST_FIRST.format(p='t.')}) AS h LEFT JOIN users u ON u.id = h.sender_id " + _NEWEST_FIRST.format(p="h.")
    )


@functools.cache
def _whole_rooms_query(one_room: bool, keyset: bool):
    """Each room read newest first until it has a page of matches; those merged, newest first."""
    after = _and_after(keyset)
    return text(
        f"SELECT h.*, {SENDER} FROM ({_rooms(one_room)}) AS mine CROSS JOIN LATERAL ("
        f"SELECT {_HIT.format(p='m.')}, m.sender_id FROM messages m WHERE m.room_id = mine.id AND {SEARCHABLE} "
        f"AND {_CONTAINS}{after} ORDER BY m.seq DESC LIMIT :limit) AS h LEFT JOIN users u ON u.id = h.sender_id "
        + _NEWEST_FIRST.format(p="h.")
    )


# ---------------------------------------------------------------------------- the indexer's part

# Which messages have words to index (as migration 0008 has it).
HAS_WORDS = f"{SEARCHABLE} AND lower(m.text) ~ '[a-z0-9]'"
_INDEXING = 0x5EA4C4  # advisory lock: one node indexes at a time
_BEHIND = "rooms r LEFT JOIN message_words_progress p ON p.room_id = r.id WHERE r.last_seq > coalesce(p.upto, 0)"
# A message the index already has a row of was edited since it was read (the trigger of
# migration 0008 wrote it): that row is the newer one.
_INDEX_WORDS = text(
    f"WITH todo AS (SELECT r.id, coalesce(p.upto, 0) AS upto, r.last_seq FROM {_BEHIND} LIMIT :rooms), "
    "added AS (INSERT INTO message_words (room_id, seq, words) SELECT m.room_id, m.seq, search_words(m.room_id, m.text) "
    f"FROM todo JOIN messages m ON m.room_id = todo.id AND m.seq > todo.upto AND m.seq <= todo.last_seq "
    f"WHERE {HAS_WORDS} ON CONFLICT (room_id, seq) DO NOTHING), "
    "moved AS (INSERT INTO message_words_progress (room_id, upto) SELECT id, last_seq FROM todo "
    "ON CONFLICT (room_id) DO UPDATE SET upto = greatest(message_words_progress.upto, excluded.upto)) "
    "SELECT coalesce(sum(last_seq - upto), 0) FROM todo"
)


async def index(conn: AsyncConnection, rooms: int) -> int:
    """Read the messages stored since the last time, in up to `rooms` rooms, into the word index
    (`message_words`), for the search indexer; one node at a time. Returns how many seqs it
    moved past (0: all is read, or another node is at it)."""
    if not (await conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _INDEXING})).scalar():
        return 0
    return int((await conn.execute(_INDEX_WORDS, {"rooms": rooms})).scalar())


async def unindexed(conn: AsyncConnection) -> int:
    """How many seqs of messages the word index has not read yet (all rooms together)."""
    behind = await conn.execute(text(f"SELECT coalesce(sum(r.last_seq - coalesce(p.upto, 0)), 0) FROM {_BEHIND}"))
    return int(behind.scalar())
