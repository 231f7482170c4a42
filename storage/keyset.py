"""A batch of key tuples as a table to join with: one index probe per key, one SQL text.

Matching rows against many composite keys has two obvious spellings, and both
are slow where it matters. Row-value `IN` makes SQLite scan the whole index
(its plan tests every entry against the list), and PostgreSQL expands it into
an OR of every key, a new statement (planned and prepared again) for every
batch size. Separate `IN` lists per column probe every combination of them.
Joining with the keys as a table gives one probe per key on both databases,
with SQL text that does not change with the number of keys: SQLite reads them
from one JSON parameter (`json_each`), PostgreSQL from one array per column
(`unnest`).

Build a statement with `key_table()` once per dialect (it holds parameters,
not values) and execute it with `key_params()`.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence

import msgspec
from sqlalchemy import String, column, text
from sqlalchemy.sql import Subquery


@functools.cache
def key_table(dialect: str, names: tuple[str, ...]) -> Subquery:
    """A subquery `keys` with string columns `names`, filled by `key_params()`."""
    if dialect == "postgresql":
        arrays = ", ".join(f"CAST(:{name} AS VARCHAR[])" for name in names)
        sql = f"SELECT * FROM unnest({arrays}) AS k({', '.join(names)})"
    else:
        picks = ", ".join(f"json_extract(value, '$[{i}]') AS {name}" for i, name in enumerate(names))
        sql = f"SELECT {picks} FROM json_each(:{_JSON_PARAM})"
    return text(sql).columns(*(column(name, String) for name in names)).subquery("keys")


def key_params(dialect: str, names: Sequence[str], keys: Collection[Sequence[str]]) -> dict:
    """The parameters that fill `key_table(dialect, names)` with `keys` (in the order of `names`)."""
    if dialect == "postgresql":
        return {name: [key[i] for key in keys] for i, name in enumerate(names)}
    # msgspec: ~20x the standard library's json here, which was 3 % of a message's CPU in the
    # fan-out benchmark's server (three lookups a group commit). Text, not bytes: SQLite would
    # take bytes for its binary JSONB.
    return {_JSON_PARAM: msgspec.json.encode(list(keys)).decode()}


_JSON_PARAM = "keys_json"
