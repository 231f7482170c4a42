"""search on PostgreSQL: a word index of messages by room, and indexes for ranked record search

Revision ID: 0008
Revises: 0007

PostgreSQL only (on SQLite nothing changes: FTS5 serves every search there).
`storage/pg_search.py` says how the searches read these indexes.

- `search_words(room, text)`: the words of a text (runs of ASCII letters and
  digits, lower-cased) as tsvector lexemes `<room>:<word>`, and a GIN index of
  the messages by it. The room in every lexeme makes a word's posting list the
  messages of one room, so a search reads the posting lists of the caller's rooms
  only (a pg_trgm index hands back every room's matches, to be read and thrown
  away). It is built of plain functions, not `to_tsvector`, whose parser splits
  some words (`5e971e6` becomes `5e971` and `e6`): a search may only ask the
  index for words it knows every matching text has. A word longer than 200
  characters in a long text is indexed in pieces of 200 (a lexeme must stay under
  2,047 bytes); search looks such a word up by its first 200.
- The pending lists of the messages' GIN indexes may grow to 8 MB (twice the
  default) before an insert has to merge them: the server's search indexer
  merges them in the background first.
- Records: `lower(name)` (the best match is the name itself), their creation
  order, and the bigrams of their searched text (pg_trgm has no trigram in a
  2-character query), so that ranked search reads one rank at a time, newest
  first, and stops when a page is full.
"""

from alembic import op


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MESSAGES_SEARCHABLE = "kind = 'text' AND NOT recalled AND text IS NOT NULL"  # as migration 0004 indexes them
MESSAGE_GIN_INDEXES = ("ix_messages_text_trgm", "ix_messages_words")
# The server merges the pending lists of these GIN indexes itself, several times a second
# (services/search_indexer.py); past this size an insert of the writer merges one, and waits.
PENDING_LIST_KB = 8192
RECORD_TEXT = ("coalesce(name, '') || chr(1) || coalesce(school, '') || chr(1) || coalesce(class_name, '') "
               "|| chr(1) || coalesce(description, '')")  # as migration 0004 indexes it

# One SQL expression (PostgreSQL inlines the function into the index and into queries; a
# function it cannot inline would be planned again for every inserted row).
_ROOM = "translate(room, ' ', '_') || ':'"  # a space would split the lexeme
_WORDS = (
    "CASE WHEN octet_length(value) < 1800 THEN regexp_replace(lower(value), '[^a-z0-9]+', ' ', 'g') "
    "ELSE regexp_replace(regexp_replace(lower(value), '[^a-z0-9]+', ' ', 'g'), '([a-z0-9]{200})', '\\1 ', 'g') END"
)
SEARCH_WORDS = (
    "CREATE FUNCTION search_words(room text, value text) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ "
    f"SELECT array_to_tsvector(array_remove(string_to_array({_ROOM} || replace(btrim({_WORDS}), ' ', ' ' || {_ROOM}), "
    f"' '), {_ROOM})) $$"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(SEARCH_WORDS)
    op.execute("CREATE INDEX ix_messages_words ON messages USING gin (search_words(room_id, text)) "
               f"WHERE {MESSAGES_SEARCHABLE}")
    for index in MESSAGE_GIN_INDEXES:
        op.execute(f"ALTER INDEX {index} SET (gin_pending_list_limit = {PENDING_LIST_KB})")
    op.execute("CREATE INDEX ix_alumni_records_name_lower ON alumni_records (lower(name))")
    op.execute("CREATE INDEX ix_alumni_records_created ON alumni_records (created, id)")
    op.execute("CREATE INDEX ix_alumni_records_bigrams ON alumni_records "
               f"USING gin (search_bigrams(lower({RECORD_TEXT})))")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER INDEX ix_messages_text_trgm RESET (gin_pending_list_limit)")
    for index in ("ix_alumni_records_bigrams", "ix_alumni_records_created", "ix_alumni_records_name_lower",
                  "ix_messages_words"):
        op.execute(f"DROP INDEX IF EXISTS {index}")
    op.execute("DROP FUNCTION IF EXISTS search_words(text, text)")
