"""SQL that every message search shares, on both databases: which messages are found at all,
the sender's columns, and `q` as a LIKE pattern."""

from __future__ import annotations

from . import users

# Text messages as they read now: never system messages, never recalled ones.
SEARCHABLE = "m.kind = 'text' AND NOT m.recalled AND m.text IS NOT NULL"
# The sender as `users.from_prefixed_row` reads it, for raw SQL that joins `users u`.
SENDER = ", ".join(f"u.{column.name} AS u_{column.key}" for column in users.COLUMNS)


def like_pattern(q: str) -> str:
    """`%q%` with LIKE's wildcards (and the escape character) in `q` escaped by `\\`."""
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
