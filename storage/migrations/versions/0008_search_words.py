"""search on PostgreSQL: a word index of messages by room, filled after the commits; indexes for
ranked record search

Revision ID: 0008
Revises: 0007

PostgreSQL only (on SQLite nothing changes: FTS5 serves every search there).
`storage/pg_search.py` says how the searches read these indexes.

- `search_words(room, text)`: the words of a text (runs of ASCII letters and
  digits, lower-cased) as tsvector lexemes `<room>:<word>`, and each word reversed
  as `<room><<drow>` (a query's first word may be the end of a word: "promotion
  customer" is in "...promotion customers"). The room in every lexeme makes a
  word's posting list the messages of one room, so a search reads the posting
  lists of the caller's rooms only (a pg_trgm index hands back every room's
  matches, to be read and thrown away). It is built of plain functions, not
  `to_tsvector`, whose parser splits some words (`5e971e6` becomes `5e971` and
  `e6`): a search may only ask the index for words it knows every matching text
  has. A word longer than 200 characters in a long text is indexed in pieces of
  200 (a lexeme must stay under 2,047 bytes); search looks such a word up by its
  first (or, reversed, last) 200.
- `message_words`: those words of each text message that has any (Chinese text,
  say, has none), in a GIN index. Computing them in the writer's commit cost it
  ~8 µs a message, a tenth of its throughput, so the search indexer adds them
  after the commits (when the writer is idle, as on SQLite), room by room:
  `message_words_progress.upto` is the last seq of a room it has read; a search
  reads the rows above it from `messages` itself. Edits and recalls reach `message_words` by a trigger (also of messages
  not read yet: the indexer then keeps that newer row), deletes by another; a
  search checks every row it finds against the message as it is now.
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

# PostgreSQL: which messages have words to index, as storage/pg_search.py reads them.
HAS_WORDS = "{r}kind = 'text' AND NOT {r}recalled AND {r}text IS NOT NULL AND lower({r}text) ~ '[a-z0-9]'"
RECORD_TEXT = ("coalesce(name, '') || chr(1) || coalesce(school, '') || chr(1) || coalesce(class_name, '') "
               "|| chr(1) || coalesce(description, '')")  # as migration 0004 indexes it

# One SQL expression, which PostgreSQL inlines into the statements that call it (as a
# function of its own it cost the indexer half again). The words joined by spaces become
# `<room>:<word>` by putting `<room>:` before the string and after each space (an empty word,
# at the text's ends, leaves `<room>:` alone, which is removed); the reversed text's words
# likewise `<room><<drow>` (`<room><` marks them). Room ids hold no spaces (storage/ids.py;
# search does not use this index for a room with one).
_WORDS = (
    "CASE WHEN octet_length(value) < 1800 THEN regexp_replace({s}, '[^a-z0-9]+', ' ', 'g') ELSE "
    "regexp_replace(regexp_replace({s}, '[^a-z0-9]+', ' ', 'g'), '([a-z0-9]{{200}})', '\\1 ', 'g') END"
)
SEARCH_WORDS = (
    "CREATE FUNCTION search_words(room text, value text) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ "
    "SELECT array_to_tsvector(array_remove(array_remove(string_to_array("
    f"room || ':' || replace({_WORDS.format(s='lower(value)')}, ' ', ' ' || room || ':') || ' ' || "
    f"room || '<' || replace({_WORDS.format(s='reverse(lower(value))')}, ' ', ' ' || room || '<'), ' '), "
    "room || ':'), room || '<')) $$"
)
# An edit or recall of a message: its words follow at once (the indexer never overwrites a row).
FOLLOW_EDITS = (
    "CREATE FUNCTION message_words_follow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"IF {HAS_WORDS.format(r='NEW.')} THEN "
    "INSERT INTO message_words (room_id, seq, words) VALUES (NEW.room_id, NEW.seq, search_words(NEW.room_id, NEW.text)) "
    "ON CONFLICT (room_id, seq) DO UPDATE SET words = excluded.words; "
    "ELSE DELETE FROM message_words WHERE room_id = NEW.room_id AND seq = NEW.seq; END IF; "
    "RETURN NULL; END $$"
)

# Deleted messages take their words along, a statement at a time (a foreign key would check
# and lock each message the indexer adds words of: it cost more than the words).
FOLLOW_DELETES = (
    "CREATE FUNCTION message_words_gone() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "DELETE FROM message_words w USING gone g WHERE w.room_id = g.room_id AND w.seq = g.seq; RETURN NULL; END $$"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(SEARCH_WORDS)
    op.execute("CREATE TABLE message_words (room_id VARCHAR(40) NOT NULL, seq BIGINT NOT NULL, "
               "words tsvector NOT NULL, PRIMARY KEY (room_id, seq))")
    op.execute("CREATE TABLE message_words_progress (room_id VARCHAR(40) PRIMARY KEY "
               "REFERENCES rooms (id) ON DELETE CASCADE, upto BIGINT NOT NULL)")
    op.execute(FOLLOW_EDITS)
    op.execute("CREATE TRIGGER message_words_follow AFTER UPDATE OF text, kind, recalled ON messages FOR EACH ROW "
               "WHEN (OLD.text IS DISTINCT FROM NEW.text OR OLD.kind IS DISTINCT FROM NEW.kind "
               "OR OLD.recalled IS DISTINCT FROM NEW.recalled) EXECUTE FUNCTION message_words_follow()")
    op.execute(FOLLOW_DELETES)
    op.execute("CREATE TRIGGER message_words_gone AFTER DELETE ON messages REFERENCING OLD TABLE AS gone "
               "FOR EACH STATEMENT EXECUTE FUNCTION message_words_gone()")
    # The messages there are now (in the same transaction as their rooms' progress).
    op.execute("INSERT INTO message_words (room_id, seq, words) SELECT room_id, seq, search_words(room_id, text) "
               f"FROM messages WHERE {HAS_WORDS.format(r='')}")
    op.execute("INSERT INTO message_words_progress (room_id, upto) SELECT id, last_seq FROM rooms")
    # No pending list: a search reads the index once for each of the caller's rooms, and would
    # read a pending list as many times.
    op.execute("CREATE INDEX ix_message_words ON message_words USING gin (words) WITH (fastupdate = off)")
    op.execute("CREATE INDEX ix_alumni_records_name_lower ON alumni_records (lower(name))")
    op.execute("CREATE INDEX ix_alumni_records_created ON alumni_records (created, id)")
    op.execute("CREATE INDEX ix_alumni_records_bigrams ON alumni_records "
               f"USING gin (search_bigrams(lower({RECORD_TEXT})))")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in ("ix_alumni_records_bigrams", "ix_alumni_records_created", "ix_alumni_records_name_lower"):
        op.execute(f"DROP INDEX IF EXISTS {index}")
    for trigger in ("message_words_follow", "message_words_gone"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON messages")
        op.execute(f"DROP FUNCTION IF EXISTS {trigger}()")
    op.execute("DROP TABLE IF EXISTS message_words_progress")
    op.execute("DROP TABLE IF EXISTS message_words")
    op.execute("DROP FUNCTION IF EXISTS search_words(text, text)")
