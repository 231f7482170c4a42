"""The message path's hot statements, run straight on SQLite's driver inside an inline transaction.

A one-message group commit on SQLite is six statements. Through SQLAlchemy's execution
machinery (cache key, execution context, events, result object) they cost ~1.76 M
instructions; the same statements on the driver, with the SQL that SQLAlchemy compiled
once and SQLAlchemy's own type conversions, ~0.83 M (callgrind on `scripts/bench_commit.py`'s
path): at 1,000 members, ~0.2 µs of every delivery at low send rates.

Only statements marked with `prepared()` take this path, and only inside
`Database.inline_transaction()` or `Database.inline_read()` on SQLite
(`_InlineConnection.execute`); everywhere else
they run through SQLAlchemy as usual, so each is still written once, in SQLAlchemy Core.
A statement qualifies if SQLAlchemy would add nothing at execution: no Python-side column
defaults and no expanding `IN` (`prepared()` refuses those when first compiled). A result
offers iteration over rows with attribute access, `all()`, `first()`, `scalar()` and
`rowcount`: the part of `Result` the message path uses.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

_PREPARED: dict[int, ClauseElement] = {}  # id -> statement: kept alive, so an id is never reused
_PLANS: dict[tuple[int, tuple[str, ...] | None], _Plan] = {}


def prepared(statement: ClauseElement) -> ClauseElement:
    """Mark a statement built once (a module constant or a cached builder's result) as hot."""
    _PREPARED[id(statement)] = statement
    return statement


def plan_for(statement: Any, parameters: Any, dialect: Dialect) -> _Plan | None:
    """The driver-level plan for a `prepared()` statement with these parameters' keys, else None."""
    if id(statement) not in _PREPARED:
        return None
    first = parameters[0] if isinstance(parameters, list) and parameters else parameters
    keys = tuple(first) if isinstance(first, dict) else None
    plan = _PLANS.get((id(statement), keys))
    if plan is None:
        plan = _PLANS[(id(statement), keys)] = _Plan(statement, keys, dialect)
    return plan


class Rows:
    """A plan's result."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list, rowcount: int):
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator:
        return iter(self._rows)

    def all(self) -> list:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None


class _Plan:
    """One statement compiled for one dialect and one set of parameter keys."""

    def __init__(self, statement: Any, keys: tuple[str, ...] | None, dialect: Dialect):
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)
        if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
            raise ValueError("prepared(): a statement with Python-side column defaults needs SQLAlchemy")
        binds = compiled.binds
        self.names = tuple(compiled.positiontup or ())
        if any(binds[name].expanding for name in self.names):
            raise ValueError("prepared(): an expanding IN is rewritten per execution by SQLAlchemy")
        self.sql = compiled.string
        # Each positional parameter: its name, the value the statement itself holds (a literal in a
        # WHERE), and SQLAlchemy's conversion for the dialect (JSON to text, say), if any.
        self.params = tuple(
            (name, binds[name].effective_value, binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in self.names
        )
        columns = list(getattr(statement, "selected_columns", ()))
        processors = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
        self.result_processors = processors if any(processors) else None
        self.row_type: type | None = None

    def _values(self, given: dict) -> tuple:
        values = []
        for name, held, convert in self.params:
            value = given.get(name, held)
            values.append(convert(value) if convert is not None and value is not None else value)
        return tuple(values)

    def run(self, driver: Any, parameters: Any) -> Rows:
        """Execute on a DB-API connection (`sqlite3`); one executemany for a list of parameter sets."""
        if isinstance(parameters, list):
            cursor = driver.executemany(self.sql, [self._values(p) for p in parameters])
        else:
            cursor = driver.execute(self.sql, self._values(parameters or {}))
        if cursor.description is None:
            return Rows([], cursor.rowcount)
        if self.row_type is None:
            self.row_type = collections.namedtuple("Row", [d[0] for d in cursor.description], rename=True)
        rows = cursor.fetchall()
        if self.result_processors is not None:
            processors = self.result_processors
            rows = [[p(v) if p is not None else v for p, v in zip(processors, row)] for row in rows]
        make = self.row_type._make
        return Rows([make(row) for row in rows], cursor.rowcount)
