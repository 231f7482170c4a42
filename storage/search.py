"""Search: people, alumni records, groups and messages by what they contain (docs/protocol.md §12.13).

A query `q` matches text that contains it, in any case and any script (a
Chinese query of 2 or more characters finds any text holding those
characters in a row). One function per kind of result; each reads an index
that migration 0004 made and that the database keeps in step by itself:

- SQLite: a contentless FTS5 table per searched table with the `trigram`
  tokenizer (case folded), each value indexed with a space after it. A phrase
  of 3+ characters is a substring match read from the index. A 2-character
  query has no trigram of its own; it becomes the trigrams of the index that
  begin with it (read from the table's fts5vocab, an ordered range): thanks to
  the space, every occurrence of any 2 characters begins one. Rows come newest
  first by `rowid` (insertion order), which FTS5 walks backwards, stopping as
  soon as a page is full. New messages are indexed just after their commit,
  not in it (`index_messages`, run when the writer is idle: trigram indexing
  costs more than storing a message, and SQLite's one writer bounds ingest);
  a search reads the few rows above the indexer's progress with `LIKE` first.
- PostgreSQL: `pg_trgm` GIN indexes answer `ILIKE '%q%'` for 3+ characters.
  A 2-character pattern has no trigram (the index would read all of itself),
  so it is written as `strpos(lower(...))`, which the planner cannot send to
  the index, over rows bounded otherwise (people and records: a GIN index of
  bigrams). Records are read one rank at a time, newest first (migration
  0008), so a query that matches thousands of them reads a page. Messages:
  `storage/pg_search.py` (windows of each room's newest rows, a word index by
  room, then the trigram index).

`%`, `_` and `\\` in `q` are escaped: they match themselves. Paging is by
keyset (the `next` cursor names the last row of a page), so rows stored
while a client pages never shift or repeat what it has read.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from sqlalchemy import Integer, and_, case, column, func, literal, literal_column, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from . import alumni, pg_search, rooms, users
from .models import AlumniRecord as RecordRow, Room as RoomRow, User as UserRow
from .records import AlumniRecord, Room, User
from .search_sql import SEARCHABLE, SENDER, like_pattern

TRIGRAM = 3  # the shortest query an FTS5 trigram index or a pg_trgm index can answer
PUBLIC_POLICIES = ("open", "approval")  # groups anyone may find (never `invite` groups or direct rooms)
# PostgreSQL: a record's searched text, as migration 0004 indexes it.
RECORD_TEXT = ("coalesce(alumni_records.name, '') || chr(1) || coalesce(alumni_records.school, '') || chr(1) "
               "|| coalesce(alumni_records.class_name, '') || chr(1) || coalesce(alumni_records.description, '')")
_RECORD_TEXT_COLUMN = literal_column(f"({RECORD_TEXT})")


def _has_bigram(searched: str, q: str) -> ColumnElement:
    """PostgreSQL: the 2-character `q` is among the bigrams of `searched` (SQL) lowered, by the
    GIN index of `search_bigrams` over it (migrations 0004 and 0008): pg_trgm has no trigram to
    narrow such a query with."""
    return text(f"search_bigrams(lower({searched})) @> ARRAY[lower(CAST(:bigram AS TEXT))]").bindparams(bigram=q)


class BadCursor(ValueError):
    """A `before` cursor this search did not hand out."""


# ---------------------------------------------------------------------------- matching


def fts_phrase(q: str) -> str:
    """`q` as one FTS5 phrase: with the trigram tokenizer, a case-folded substring match."""
    return '"' + q.replace('"', '""') + '"'


async def fts_match(conn: AsyncConnection, table: str, q: str) -> str | None:
    """The FTS5 query that finds `q` in `table`'s index (SQLite): the phrase itself for 3+
    characters; for 2, any trigram of the index that begins with them (None: there is none,
    so nothing contains them)."""
    if _indexed(q):
        return fts_phrase(q)
    low = q.lower()  # the trigram tokenizer folds case the same way
    rows = await conn.execute(
        text(f"SELECT term FROM {table}_fts_terms WHERE term >= :low AND term < :high"),
        {"low": low, "high": low + "\U0010ffff"},
    )
    terms = [row.term for row in rows]
    return " OR ".join(fts_phrase(term) for term in terms) if terms else None


async def _plan_for_these_values(conn: AsyncConnection) -> None:
    """PostgreSQL: plan each search for its own pattern. asyncpg prepares statements, and after a
    few runs PostgreSQL may keep one generic plan whatever the pattern: one blind to how many rows
    a pattern's trigrams select (measured: 70 ms planned for the pattern, 2.4 s generic). And no
    parallel workers: starting them cost a page of results more than reading it did."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
                                "set_config('max_parallel_workers_per_gather', '0', true)"))  # SET LOCAL, both


def _indexed(q: str) -> bool:
    return len(q) >= TRIGRAM


def _contains(dialect: str, col: ColumnElement, q: str) -> ColumnElement:
    """`col` contains `q`, case-insensitively, in a form that reads the trigram index when `q` is long
    enough for it (PostgreSQL) and stays off it when not."""
    if dialect == "postgresql":
        if _indexed(q):
            return col.ilike(like_pattern(q), escape="\\")
        return func.strpos(func.lower(col), func.lower(literal(q))) > 0  # lower() as the database has it
    return col.like(like_pattern(q), escape="\\")  # SQLite's LIKE ignores ASCII case


def _where_matches(dialect: str, table, columns: list[ColumnElement], q: str, match: str | None) -> ColumnElement:
    """Some of `columns` of `table` contain `q`: on SQLite the rows of its index that `match`
    (from `fts_match`) finds."""
    if dialect == "sqlite":
        fts = f"{table.name}_fts"
        hits = text(f"SELECT rowid FROM {fts} WHERE {fts} MATCH :match").bindparams(match=match)
        rowids = select(hits.columns(column("rowid", Integer)).subquery().c.rowid)
        return literal_column(f"{table.name}.rowid").in_(rowids)
    return or_(*(_contains(dialect, col, q) for col in columns))


async def _match_or_nothing(conn: AsyncConnection, table, q: str | None) -> tuple[bool, str | None]:
    """(False, _) when `q` cannot match anything in `table` (SQLite knows from the index's
    vocabulary); else (True, the FTS5 query, None on PostgreSQL or without `q`)."""
    if not q or conn.dialect.name != "sqlite":
        return True, None
    match = await fts_match(conn, table.name, q)
    return match is not None, match


# ---------------------------------------------------------------------------- people


async def people(conn: AsyncConnection, q: str, *, after: str | None = None, limit: int = 20) -> list[User]:
    """Users (bots too, not retired ones) whose name or display contains `q`, by name;
    `after` is the last name of the previous page."""
    dialect = conn.dialect.name
    await _plan_for_these_values(conn)
    table = UserRow.__table__
    possible, match = await _match_or_nothing(conn, table, q)
    if not possible:
        return []
    found = _where_matches(dialect, table, [UserRow.name, UserRow.display], q, match)
    if dialect == "postgresql" and not _indexed(q):  # the bigram index of migration 0004
        found = and_(_has_bigram("users.name || ' ' || users.display", q), found)
    query = (
        select(*users.COLUMNS)
        .where(found, UserRow.deleted.is_(False))
        .order_by(UserRow.name)
        .limit(limit)
    )
    if after is not None:
        query = query.where(UserRow.name > after)
    return [users.from_row(row) for row in await conn.execute(query)]


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Ranked:
    """A result with its place in a best-match-first order: (rank, created, id), the keyset."""

    item: object
    rank: int
    created: int
    id: str

    def cursor(self) -> str:
        return f"{self.rank}.{self.created}.{self.id}"


def parse_ranked_cursor(raw: str | None) -> tuple[int, int, str] | None:
    if not raw:
        return None
    parts = raw.split(".", 2)
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts[:2]) or not parts[2]:
        raise BadCursor(raw)
    return int(parts[0]), int(parts[1]), parts[2]


def _ranks(dialect: str, q: str | None, best: ColumnElement, good: list[ColumnElement]) -> list[ColumnElement]:
    """What puts a match in rank 0, 1 and 2 (the first that holds): `best` is `q` itself (any
    case), `best` contains it, one of `good` does; rank 3 is the rest. No ranks without `q`."""
    if not q:
        return []
    itself = func.lower(literal(q)) if dialect == "postgresql" else q.lower()  # as LIKE / ILIKE fold case
    return [
        func.lower(best) == itself,
        _contains(dialect, best, q),
        or_(*(_contains(dialect, col, q) for col in good)),
    ]


def _rank(ranks: list[ColumnElement]) -> ColumnElement:
    """The rank of a row, by `_ranks`."""
    if not ranks:
        return literal(0)
    return case(*((held, rank) for rank, held in enumerate(ranks)), else_=len(ranks))


def _after_ranked(rank: ColumnElement, created, ident, before: tuple[int, int, str] | None):
    """Rows after `before` in the order rank ASC, created DESC, id DESC."""
    if before is None:
        return None
    r, c, i = before
    return or_(rank > r, and_(rank == r, or_(created < c, and_(created == c, ident < i))))


async def records(
    conn: AsyncConnection,
    *,
    q: str | None = None,
    school: str | None = None,
    year: int | None = None,
    class_name: str | None = None,
    before: tuple[int, int, str] | None = None,
    limit: int = 20,
) -> list[Ranked]:
    """Alumni records, best match first: `q` in the name, then in school or class, then in the
    description; newest first among equals. `school` and `class_name` are contained (any case),
    `year` equal."""
    dialect = conn.dialect.name
    await _plan_for_these_values(conn)
    table = RecordRow.__table__
    possible, match = await _match_or_nothing(conn, table, q)
    if not possible:
        return []
    where = []
    if q and dialect == "postgresql":  # the one trigram index of all four (migration 0004)
        where.append(_record_contains(q))
    elif q:
        where.append(_where_matches(
            dialect, table, [RecordRow.name, RecordRow.school, RecordRow.class_name, RecordRow.description], q, match
        ))
    for col, value in ((RecordRow.school, school), (RecordRow.class_name, class_name)):
        if not value:
            continue
        where.append(_contains(dialect, col, value))
        if dialect == "postgresql" and _indexed(value):  # the same, narrowed by the one trigram index
            where.append(_contains(dialect, _RECORD_TEXT_COLUMN, value))
    if year is not None:
        where.append(RecordRow.year == year)
    ranks = _ranks(dialect, q, RecordRow.name, [RecordRow.school, RecordRow.class_name])
    if dialect == "postgresql":
        return await _records_rank_by_rank(conn, where, ranks, before, limit)
    rank = _rank(ranks).label("rank")
    query = alumni.RECORD_SELECT.add_columns(rank, RecordRow.created).where(*where)
    after = _after_ranked(rank, RecordRow.created, RecordRow.id, before)
    if after is not None:
        query = query.where(after)
    query = query.order_by(rank, RecordRow.created.desc(), RecordRow.id.desc()).limit(limit)
    return [
        Ranked(alumni.record_from_row(row), row.rank, row.created, row.id) for row in await conn.execute(query)
    ]


def _record_contains(q: str) -> ColumnElement:
    """PostgreSQL: some searched field of a record contains `q`, by an index of all four
    (migration 0004's trigrams; for 2 characters, migration 0008's bigrams)."""
    found = _contains("postgresql", _RECORD_TEXT_COLUMN, q)
    return found if _indexed(q) else and_(_has_bigram(RECORD_TEXT, q), found)


async def _records_rank_by_rank(conn: AsyncConnection, where: list[ColumnElement], ranks: list[ColumnElement],
                                before: tuple[int, int, str] | None, limit: int) -> list[Ranked]:
    """PostgreSQL: the records of one rank at a time, newest first (migration 0008's index of
    their creation order, or of `lower(name)`), until the page is full. Sorting every match by
    rank read every match: a school's name matches thousands of records."""
    first = before[0] if before else 0
    found: list[Ranked] = []
    for rank in range(first, len(ranks) + 1):
        query = alumni.RECORD_SELECT.add_columns(RecordRow.created).where(
            *where, *(held.is_not(True) for held in ranks[:rank]), *ranks[rank:rank + 1]
        )
        if before is not None and rank == first:
            _, created, ident = before
            query = query.where(tuple_(RecordRow.created, RecordRow.id) < tuple_(literal(created), literal(ident)))
        query = query.order_by(RecordRow.created.desc(), RecordRow.id.desc()).limit(limit - len(found))
        found += [Ranked(alumni.record_from_row(row), rank, row.created, row.id) for row in await conn.execute(query)]
        if len(found) >= limit:
            break
    return found


# ---------------------------------------------------------------------------- groups


async def groups(
    conn: AsyncConnection, q: str | None = None, *, before: tuple[int, int, str] | None = None, limit: int = 20
) -> list[Ranked]:
    """Groups anyone may find (`open` and `approval`), best match first: `q` in the name, then in
    the topic; newest first among equals."""
    dialect = conn.dialect.name
    await _plan_for_these_values(conn)
    table = RoomRow.__table__
    rank = _rank(_ranks(dialect, q, RoomRow.name, [RoomRow.topic])).label("rank")
    query = select(*rooms.ROOM_COLUMNS, rank, RoomRow.created).where(
        RoomRow.join_policy.in_(PUBLIC_POLICIES), RoomRow.kind == "group"
    )
    possible, match = await _match_or_nothing(conn, table, q)
    if not possible:
        return []
    if q:
        query = query.where(_where_matches(dialect, table, [RoomRow.name, RoomRow.topic], q, match))
    after = _after_ranked(rank, RoomRow.created, RoomRow.id, before)
    if after is not None:
        query = query.where(after)
    query = query.order_by(rank, RoomRow.created.desc(), RoomRow.id.desc()).limit(limit)
    return [Ranked(rooms.room_from_row(row), row.rank, row.created, row.id) for row in await conn.execute(query)]


# ---------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class MessageHit:
    room_id: str
    seq: int
    id: str
    ts: int
    sender: User | None
    text: str
    cursor: str  # this hit's place in the newest-first order, as `before` takes it


def parse_message_cursor(dialect: str, raw: str | None) -> dict | None:
    """The keyset parameters in a message cursor: SQLite orders by rowid, PostgreSQL by (ts, room, seq)."""
    if not raw:
        return None
    try:
        if dialect == "sqlite":
            if not (raw.isascii() and raw.isdigit()):
                raise ValueError
            return {"k": int(raw)}
        ts, seq, room = raw.split(".", 2)
        if not (ts.isascii() and ts.isdigit() and seq.isascii() and seq.isdigit() and room):
            raise ValueError
        return {"k_ts": int(ts), "k_room": room, "k_seq": int(seq)}
    except ValueError:
        raise BadCursor(raw) from None


_UPTO = "(SELECT upto FROM search_progress WHERE name = 'messages')"


@functools.cache
def _sqlite_message_query(part: str, one_room: bool, keyset: bool):
    """SQLite: the SQL of `messages` for one shape of query, built once. `part` is "index" (rows
    up to the indexer's progress, FTS5 driving newest rowid first) or "tail" (the rows above it,
    scanned with LIKE)."""
    rooms_ = "m.room_id = :room" if one_room else (
        "m.room_id IN (SELECT ms.room_id FROM memberships ms WHERE ms.user_id = :me)"
    )
    if part == "index":
        source, key = "messages_fts f JOIN messages m ON m.rowid = f.rowid", "f.rowid"
        match = "messages_fts MATCH :match"
    else:
        source, key = "messages m", "m.rowid"
        match = f"m.rowid > {_UPTO} AND m.text LIKE :pattern ESCAPE '\\'"
    after = f" AND {key} < :k" if keyset else ""
    return text(
        f"SELECT {key} AS k, m.room_id, m.seq, m.id, m.ts, m.text, {SENDER} "
        f"FROM {source} LEFT JOIN users u ON u.id = m.sender_id "
        f"WHERE {match} AND {rooms_} AND {SEARCHABLE}{after} "
        f"ORDER BY {key} DESC LIMIT :limit"
    )


async def messages(
    conn: AsyncConnection,
    q: str,
    *,
    member_id: str,
    room_id: str | None = None,
    before: str | None = None,
    limit: int = 20,
) -> list[MessageHit]:
    """Text messages (current text, never recalled) containing `q`, newest first, in the rooms
    `member_id` belongs to now (or only `room_id`, which the caller checked they belong to).
    Raises `BadCursor` for a `before` this function did not hand out.

    On SQLite the newest messages may not be indexed yet (`index_messages`): they are read
    first, by scanning the rows above the indexer's progress, and the index gives the rest.
    PostgreSQL: `storage/pg_search.py`."""
    dialect = conn.dialect.name
    keyset = parse_message_cursor(dialect, before)
    await _plan_for_these_values(conn)
    if dialect == "sqlite":
        base: dict = {"limit": limit, **(keyset or {})}
        base.update({"room": room_id} if room_id is not None else {"me": member_id})
        shape = (room_id is not None, keyset is not None)
        rows = list(await conn.execute(_sqlite_message_query("tail", *shape), {**base, "pattern": like_pattern(q)}))
        match = await fts_match(conn, "messages", q) if len(rows) < limit else None
        if match is not None:
            rows += await conn.execute(_sqlite_message_query("index", *shape),
                                       {**base, "match": match, "limit": limit - len(rows)})
    else:
        rows = await pg_search.messages(conn, q, member_id, room_id, keyset, limit)
    return [
        MessageHit(
            room_id=row.room_id, seq=row.seq, id=row.id, ts=row.ts, sender=users.from_prefixed_row(row),
            text=row.text, cursor=str(row.k) if dialect == "sqlite" else f"{row.ts}.{row.seq}.{row.room_id}",
        )
        for row in rows
    ]


async def index_messages(conn: AsyncConnection, limit: int = 1000) -> int:
    """SQLite: add to the index up to `limit` messages stored since the last call (in rowid
    order); returns how many rowids it moved past (0: all is indexed). PostgreSQL: the same for
    the word index, in up to `limit` rooms (`pg_search.index`), counting seqs."""
    if conn.dialect.name != "sqlite":
        return await pg_search.index(conn, limit)
    upto = (await conn.execute(text(f"SELECT {_UPTO}"))).scalar()
    top = (await conn.execute(text("SELECT coalesce(max(rowid), 0) FROM messages"))).scalar()
    new = min(top, upto + limit)
    if new <= upto:
        return 0
    await conn.execute(
        text(
            "INSERT INTO messages_fts(rowid, text) SELECT rowid, text || ' ' FROM messages m "
            f"WHERE rowid > :upto AND rowid <= :new AND {SEARCHABLE}"
        ),
        {"upto": upto, "new": new},
    )
    await conn.execute(text("UPDATE search_progress SET upto = :new WHERE name = 'messages'"), {"new": new})
    return new - upto


async def unindexed(conn: AsyncConnection) -> int:
    """How many messages the index has not reached yet (SQLite: rowids; PostgreSQL: seqs of the
    word index, `pg_search.unindexed`)."""
    if conn.dialect.name != "sqlite":
        return await pg_search.unindexed(conn)
    return (await conn.execute(text(f"SELECT coalesce(max(rowid), 0) - {_UPTO} FROM messages"))).scalar()


# ---------------------------------------------------------------------------- snippets

SNIPPET_BEFORE = 30  # characters of context before the first match
SNIPPET_LENGTH = 160


def snippet(body: str, q: str) -> str:
    """A window of `body` around the first match of `q`, each match in it marked `[`…`]`
    (any case); `…` where the window cuts the text."""
    pattern = re.compile(re.escape(q), re.IGNORECASE)
    first = pattern.search(body)
    start = max(0, first.start() - SNIPPET_BEFORE) if first else 0
    end = min(len(body), start + SNIPPET_LENGTH)
    if first and first.end() > end:  # a long query: the window holds the whole first match
        end = first.end()
    window = pattern.sub(lambda m: f"[{m.group(0)}]", body[start:end])
    return ("…" if start else "") + window + ("…" if end < len(body) else "")


__all__ = [
    "BadCursor", "MessageHit", "PUBLIC_POLICIES", "Ranked", "fts_phrase", "groups", "index_messages", "like_pattern",
    "messages", "unindexed",
    "parse_message_cursor", "parse_ranked_cursor", "people", "records", "snippet",
]
