"""storage/prepared.py: the message path's statements straight on SQLite's driver give what
SQLAlchemy gives (types converted both ways), and statements it cannot run are refused."""

import pytest
from sqlalchemy import bindparam, select

from storage import messages
from storage.models import Message as MessageRow, Room as RoomRow, User as UserRow
from storage.prepared import plan_for, prepared
from storage.records import NewMessage


async def test_stored_through_the_driver_reads_back_the_same_through_sqlalchemy(db, alice, bob, room):
    """JSON, booleans and NULLs go in through the prepared INSERT and come back alike through
    SQLAlchemy (`history`) and through the prepared lookup of a resend (`dup`)."""
    new = [
        NewMessage(room_id=room.id, sender=alice, text="plain", cid="a1"),
        NewMessage(room_id=room.id, sender=bob, text="hi @alice", cid="b1", mentions=[alice.id]),
        NewMessage(room_id=room.id, sender=alice, text="hi @bob", cid="a2", mentions=[bob.id]),
        NewMessage(room_id=room.id, sender=None, text=None, system_type="member.joined",
                   system_data={"user": bob.id, "n": [1, 2], "ok": True}),
    ]
    async with db.inline_transaction() as conn:
        first = await messages.append_batch(conn, new)
    async with db.inline_transaction() as conn:  # the same cids again: found, not stored twice
        again = await messages.append_batch(conn, [m for m in new if m.cid])
    async with db.read() as conn:
        page, _ = await messages.history(conn, room.id)

    assert [s.dup for s in first] == [False] * 4 and [s.dup for s in again] == [True] * 3
    by_seq = {m.seq: m for m in page}
    for stored in [*first, *again]:
        read = by_seq[stored.message.seq]
        for field in ("id", "ts", "kind", "text", "cid", "reply_to", "mentions", "recalled", "system_type",
                      "system_data", "pinned", "files"):
            assert getattr(stored.message, field) == getattr(read, field), field
        assert stored.message.sender == read.sender
    assert by_seq[2].mentions == [alice.id] and by_seq[3].mentions == [bob.id]
    assert by_seq[4].system_data == {"user": bob.id, "n": [1, 2], "ok": True} and by_seq[4].sender is None
    assert by_seq[1].recalled is False


async def test_the_driver_path_is_taken_only_inside_an_inline_sqlite_transaction(db, alice, room):
    statement = messages._SET_LAST_SEQ
    async with db.transaction() as conn:  # aiosqlite / asyncpg: SQLAlchemy as usual
        assert type(await conn.execute(statement, [{"room": room.id, "last": 0}])).__module__.startswith("sqlalchemy")
    async with db.inline_transaction() as conn:
        result = await conn.execute(statement, [{"room": room.id, "last": 0}])
    assert type(result).__module__ == ("storage.prepared" if db.is_sqlite else "sqlalchemy.engine.cursor")


def test_statements_sqlalchemy_must_rewrite_per_execution_are_refused(db):
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect(paramstyle="qmark")
    expanding = prepared(select(RoomRow.id).where(RoomRow.id.in_(bindparam("ids", expanding=True))))
    with pytest.raises(ValueError, match="expanding"):
        plan_for(expanding, {"ids": ["r"]}, dialect)
    unmarked = select(UserRow.id)
    assert plan_for(unmarked, None, dialect) is None


def test_a_literal_held_by_the_statement_is_bound():
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect(paramstyle="qmark")
    statement = prepared(select(MessageRow.seq).where(MessageRow.kind == "text", MessageRow.room_id == bindparam("r")))
    plan = plan_for(statement, {"r": "room"}, dialect)
    assert plan._values({"r": "room"}) == ("text", "room")
