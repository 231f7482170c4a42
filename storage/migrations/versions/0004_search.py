"""blocks, record join requests, and the search indexes (FTS5 trigram / pg_trgm)

Revision ID: 0004
Revises: 0005

The search indexes are the ones `storage/search.py` reads (its docstring says
how). SQLite: a contentless FTS5 table with the `trigram` tokenizer per
searched table (and its fts5vocab table), kept in step by triggers (so edits, recalls and deletes need
no code of their own). PostgreSQL: `pg_trgm` GIN indexes on the searched
columns; the messages' one covers only text that is not recalled.
"""

from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.String(length=40)


def upgrade() -> None:
    op.create_table(
        "blocks",
        sa.Column("blocker_id", ID, nullable=False),
        sa.Column("blocked_id", ID, nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["blocker_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["blocked_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("blocker_id", "blocked_id"),
    )
    # "Who blocked this inviter?" reads by the blocked side.
    op.create_index("ix_blocks_blocked", "blocks", ["blocked_id", "blocker_id"])
    op.create_table(
        "record_requests",
        sa.Column("id", ID, nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("decided", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["record_id"], ["alumni_records.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_record_requests_record", "record_requests", ["record_id", "created"])
    op.create_index(
        "uq_record_requests_pending", "record_requests", ["record_id", "user_id"], unique=True,
        sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for table, columns, condition in INDEXED:
            for statement in _fts5(table, columns, condition):
                op.execute(statement)
        for statement in _deferred_messages():
            op.execute(statement)
    else:
        opclass = _pg_trgm(bind)
        for table, columns, condition in INDEXED:
            where = f" WHERE {_where(condition)}" if condition else ""
            if table == "alumni_records":  # one index of all four: one scan, where four made the
                # planner prefer reading the table (measured 39 ms for 10,000 records)
                op.execute(f"CREATE INDEX ix_alumni_records_text_trgm ON alumni_records USING gin "
                           f"(({RECORD_TEXT}) {opclass})")
                continue
            for column in columns:
                op.execute(f"CREATE INDEX ix_{table}_{column}_trgm ON {table} USING gin ({column} {opclass}){where}")
        # A 2-character query has no trigram; people are searched by it often (a Chinese name is
        # often 2 characters), so their name and display also get an index of their bigrams.
        op.execute(
            "CREATE FUNCTION search_bigrams(value text) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS "
            "$$ SELECT coalesce(array_agg(DISTINCT substr(value, i, 2)), '{}') "
            "FROM generate_series(1, length(value) - 1) AS i $$"
        )
        op.execute(f"CREATE INDEX ix_users_bigrams ON users USING gin ({USER_BIGRAMS})")


# (table, searched columns, which rows are searchable: SQL where `{r}` prefixes each column)
INDEXED = (
    ("users", ("name", "display"), None),
    ("rooms", ("name", "topic"), None),
    ("alumni_records", ("name", "school", "class_name", "description"), None),
    ("messages", ("text",), "{r}kind = 'text' AND NOT {r}recalled AND {r}text IS NOT NULL"),
)
MESSAGES_INDEXED = INDEXED[-1][2]
# PostgreSQL: a record's searched text, as storage/search.py matches it (chr(1) between the
# fields: no query crosses from one into the next).
RECORD_TEXT = ("coalesce(name, '') || chr(1) || coalesce(school, '') || chr(1) || coalesce(class_name, '') "
               "|| chr(1) || coalesce(description, '')")
# PostgreSQL: the expression storage/search.py matches 2-character people queries against.
USER_BIGRAMS = "search_bigrams(lower(name || ' ' || display))"


def _where(condition: str | None, prefix: str = "") -> str:
    return "1 = 1" if condition is None else condition.format(r=prefix)


def _fts5(table: str, columns: tuple[str, ...], condition: str | None) -> list[str]:
    """A contentless FTS5 trigram index of `table` keyed by its rowid, its vocabulary, and the
    triggers that keep it in step: a row is indexed while `condition` holds and leaves when it
    stops (a recalled message), so an edit, a recall or a delete needs no code of its own.

    Each value is indexed with a space after it, so that every occurrence of any 2 characters
    starts some trigram of the index: a 2-character query is the trigrams the vocabulary holds
    that begin with it (see storage/search.py)."""
    fts = f"{table}_fts"
    cols = ", ".join(columns)

    def values(prefix: str) -> str:
        return ", ".join(f"coalesce({prefix}{c}, '') || ' '" for c in columns)

    new_holds, old_holds = _where(condition, "new."), _where(condition, "old.")
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='', tokenize='trigram')",
        f"CREATE VIRTUAL TABLE {fts}_terms USING fts5vocab({fts}, 'row')",
        f"INSERT INTO {fts}(rowid, {cols}) SELECT rowid, {values('')} FROM {table} WHERE {_where(condition)}",
        f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} WHEN {new_holds} BEGIN "
        f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.rowid, {values('new.')}); END",
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} WHEN {old_holds} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {values('old.')}); END",
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {cols}{_condition_columns(condition)} ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {cols}) SELECT 'delete', old.rowid, {values('old.')} WHERE {old_holds}; "
        f"INSERT INTO {fts}(rowid, {cols}) SELECT new.rowid, {values('new.')} WHERE {new_holds}; END",
    ]


def _deferred_messages() -> list[str]:
    """SQLite indexes new messages after their commit, not in it (storage.search.index_messages,
    run when the writer is idle): trigram indexing costs more than storing a message, and the
    single SQLite writer is what bounds ingest. `search_progress.upto` is the last rowid indexed;
    search reads the index up to it and scans the few rows above it. Edits, recalls and deletes
    of indexed rows still follow in their own transaction, and deleting the newest rows lowers
    `upto`, since SQLite hands their rowids out again."""
    fts, holds = "messages_fts", _where(MESSAGES_INDEXED, "old.")
    upto = "(SELECT upto FROM search_progress WHERE name = 'messages')"
    top = "(SELECT coalesce(max(rowid), 0) FROM messages)"
    return [
        "CREATE TABLE search_progress (name VARCHAR(40) PRIMARY KEY, upto BIGINT NOT NULL)",
        f"INSERT INTO search_progress (name, upto) SELECT 'messages', {top}",
        f"DROP TRIGGER {fts}_ai",
        f"DROP TRIGGER {fts}_ad",
        f"DROP TRIGGER {fts}_au",
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON messages BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, text) SELECT 'delete', old.rowid, coalesce(old.text, '') || ' ' "
        f"WHERE {holds} AND old.rowid <= {upto}; "
        f"UPDATE search_progress SET upto = {top} WHERE name = 'messages' AND upto > {top}; END",
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF text, kind, recalled ON messages WHEN old.rowid <= {upto} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, text) SELECT 'delete', old.rowid, coalesce(old.text, '') || ' ' "
        f"WHERE {holds}; "
        f"INSERT INTO {fts}(rowid, text) SELECT new.rowid, coalesce(new.text, '') || ' ' "
        f"WHERE {_where(MESSAGES_INDEXED, 'new.')}; END",
    ]


def _condition_columns(condition: str | None) -> str:
    return "" if condition is None else ", kind, recalled"


def _pg_trgm(bind) -> str:
    """Install pg_trgm (in `public` when there is one, so a schema dropped with CASCADE cannot take
    it, and the indexes of other schemas, along) and name its operator class, schema-qualified."""
    has_public = bind.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = 'public'")).first()
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm" + (" SCHEMA public" if has_public else ""))
    schema = bind.execute(sa.text(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    )).scalar_one()
    return f'"{schema}".gin_trgm_ops'


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS search_progress")
    for table, columns, _ in INDEXED:
        if bind.dialect.name == "sqlite":
            for suffix in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {table}_fts_terms")
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
        else:
            for column in columns:
                op.execute(f"DROP INDEX IF EXISTS ix_{table}_{column}_trgm")
    if bind.dialect.name != "sqlite":
        op.execute("DROP INDEX IF EXISTS ix_alumni_records_text_trgm")
        op.execute("DROP INDEX IF EXISTS ix_users_bigrams")
        op.execute("DROP FUNCTION IF EXISTS search_bigrams(text)")
    op.drop_table("record_requests")
    op.drop_table("blocks")
