"""storage.keyset: composite keys as a table to join with, the same answer on both databases."""

import pytest
from sqlalchemy import and_, column, select, table, text

from storage.keyset import key_params, key_table

PAIRS = table("pairs", column("a"), column("b"))


@pytest.fixture
async def pairs(db):
    """A scratch table with a composite primary key, dropped afterwards."""
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE pairs (a VARCHAR(40), b VARCHAR(40), PRIMARY KEY (a, b))"))
        rows = [{"a": a, "b": b} for a in ("x", "y", "it's", "é😀") for b in ("1", "2", 'q"q')]
        await conn.execute(text("INSERT INTO pairs (a, b) VALUES (:a, :b)"), rows)
    yield
    async with db.transaction() as conn:
        await conn.execute(text("DROP TABLE pairs"))


async def _matching(db, keys):
    async with db.read() as conn:
        found = key_table(conn.dialect.name, ("ka", "kb"))
        rows = await conn.execute(
            select(PAIRS.c.a, PAIRS.c.b).join(found, and_(PAIRS.c.a == found.c.ka, PAIRS.c.b == found.c.kb)),
            key_params(conn.dialect.name, ("ka", "kb"), keys),
        )
        return sorted(tuple(row) for row in rows)


async def test_joins_exactly_the_rows_of_the_given_keys(db, pairs):
    keys = {("x", "1"), ("y", "2"), ("x", "9"), ("z", "1")}  # two absent: one key half matches each
    assert await _matching(db, keys) == [("x", "1"), ("y", "2")]


async def test_quotes_and_non_ascii_keys_match_literally(db, pairs):
    keys = {("it's", 'q"q'), ("é😀", "1"), ("it", "s")}
    assert await _matching(db, keys) == [("it's", 'q"q'), ("é😀", "1")]


async def test_no_keys_match_nothing(db, pairs):
    assert await _matching(db, set()) == []


async def test_many_keys_in_one_statement(db, pairs):
    keys = {(f"a{i}", "1") for i in range(2000)} | {("y", "1")}
    assert await _matching(db, keys) == [("y", "1")]


async def test_sqlite_probes_the_index_for_each_key_instead_of_scanning(db, pairs):
    """The reason the module exists: row-value IN made SQLite scan the whole index."""
    if not db.is_sqlite:
        pytest.skip("a SQLite query plan")
    async with db.read() as conn:
        found = key_table("sqlite", ("ka", "kb"))
        query = select(PAIRS.c.a).join(found, and_(PAIRS.c.a == found.c.ka, PAIRS.c.b == found.c.kb))
        compiled = query.compile(dialect=conn.dialect)
        (json_keys,) = key_params("sqlite", ("ka", "kb"), {("x", "1")}).values()
        plan = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", (json_keys,))
        details = [row[-1] for row in plan]
    assert any(d.startswith("SEARCH pairs") for d in details), details
    assert not any(d.startswith("SCAN pairs") for d in details), details
