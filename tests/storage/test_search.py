"""storage.search on SQLite (FTS5 trigram) and PostgreSQL (pg_trgm): what is found, what never is,
and that the indexes follow inserts, edits, recalls and deletes."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import delete, update

from storage import alumni, messages, pg_search, rooms, search, timeline, users
from storage.db import MIGRATIONS_DIR
from storage.models import Message as MessageRow, Room as RoomRow


async def _texts(db, q, member, **kw):
    """What a search finds; on SQLite the same again once the indexer has caught up (before it,
    new messages are read from the rows above its progress)."""
    async with db.read() as conn:
        found = [hit.text for hit in await search.messages(conn, q, member_id=member.id, **kw)]
    await _index_all(db)
    async with db.read() as conn:
        assert [hit.text for hit in await search.messages(conn, q, member_id=member.id, **kw)] == found, q
    return found


async def _index_all(db) -> None:
    while True:
        async with db.transaction() as conn:
            if not await search.index_messages(conn, 2):  # small steps: several rounds
                return


async def test_people_by_name_or_display_any_case_any_script(db, make_user):
    alice = await make_user("alice")
    await make_user("bob")
    async with db.transaction() as conn:
        await users.set_display(conn, alice.id, "张伟 Wonderland")
    async with db.read() as conn:
        for q in ("ALI", "al", "wonder", "WONDERLAND", "张伟", "伟 W"):
            assert [u.name for u in await search.people(conn, q)] == ["alice"], q
        assert await search.people(conn, "张三") == []


async def test_people_pages_by_name_and_escapes_wildcards(db, make_user):
    for name in ("ann_a", "annxa", "ann_b", "ann%c"):
        await make_user(name)
    async with db.read() as conn:
        assert [u.name for u in await search.people(conn, "n_")] == ["ann_a", "ann_b"]
        assert [u.name for u in await search.people(conn, "nn_")] == ["ann_a", "ann_b"]
        assert [u.name for u in await search.people(conn, "%c")] == ["ann%c"]
        first = await search.people(conn, "ann", limit=2)
        rest = await search.people(conn, "ann", after=first[-1].name, limit=10)
    assert [u.name for u in first + rest] == ["ann%c", "ann_a", "ann_b", "annxa"]


async def test_messages_only_in_rooms_the_member_is_in_now(db, make_user, make_room, send_message):
    alice, bob = await make_user("alice"), await make_user("bob")
    shared = await make_room(alice, bob)
    private = await make_room(alice)
    await send_message(shared.id, alice, "lunch at noon")
    await send_message(private.id, alice, "lunch secret")
    assert await _texts(db, "lunch", bob) == ["lunch at noon"]
    assert await _texts(db, "lunch", alice) == ["lunch secret", "lunch at noon"]
    async with db.transaction() as conn:
        await rooms.remove_member(conn, shared.id, bob.id)
    assert await _texts(db, "lunch", bob) == []
    assert await _texts(db, "lunch", alice, room_id=private.id) == ["lunch secret"]


async def test_messages_chinese_two_or_more_characters_and_english_any_case(db, make_user, make_room, send_message):
    alice = await make_user("alice")
    room = await make_room(alice)
    await send_message(room.id, alice, "我们明天去北京大学开同学会")
    await send_message(room.id, alice, "Reunion at Peking University")
    for q in ("北京", "京大", "北京大学", "同学会", "我们明天去北京大学开同学会"):
        assert await _texts(db, q, alice) == ["我们明天去北京大学开同学会"], q
    for q in ("reunion", "PEKING UNIV", "at"):
        assert await _texts(db, q, alice) == ["Reunion at Peking University"], q
    assert await _texts(db, "上海", alice) == []
    assert await _texts(db, "大学同", alice) == []


async def test_messages_escape_like_wildcards(db, make_user, make_room, send_message):
    alice = await make_user("alice")
    room = await make_room(alice)
    await send_message(room.id, alice, "100% sure")
    await send_message(room.id, alice, "1000 sure")
    await send_message(room.id, alice, "snake_case")
    await send_message(room.id, alice, "snakeXcase")
    await send_message(room.id, alice, "back\\slash")
    assert await _texts(db, "0%", alice) == ["100% sure"]
    assert await _texts(db, "00% s", alice) == ["100% sure"]
    assert await _texts(db, "e_c", alice) == ["snake_case"]
    assert await _texts(db, "_c", alice) == ["snake_case"]
    assert await _texts(db, "k\\s", alice) == ["back\\slash"]
    assert await _texts(db, '"quoted', alice) == []


async def test_index_follows_edits_recalls_deletes_and_skips_system(db, make_user, make_room, send_message,
                                                                   tiny_windows):
    alice = await make_user("alice")
    room = await make_room(alice)
    edited = await send_message(room.id, alice, "old words")
    recalled = await send_message(room.id, alice, "regret this")
    await send_message(room.id, None, "alice joined words", system_type="member.joined", system_data={})
    async with db.transaction() as conn:
        # An edit and a recall are timeline entries that change their target's row; the index follows.
        await messages.append_batch(conn, [
            timeline.edit_entry(room.id, alice, edited.message.seq, "new phrase"),
            timeline.update_entry(room.id, alice, "recalled", recalled.message.seq),
        ])
    assert await _texts(db, "old words", alice) == []
    assert await _texts(db, "words", alice) == []  # the system message is never found
    assert await _texts(db, "new phrase", alice) == ["new phrase"]
    assert await _texts(db, "regret", alice) == []
    assert await _texts(db, "re", alice) == []
    async with db.transaction() as conn:  # an edit of a message the index already holds
        await messages.append_batch(conn, [timeline.edit_entry(room.id, alice, edited.message.seq, "third try")])
    assert await _texts(db, "new phrase", alice) == []
    assert await _texts(db, "third", alice) == ["third try"]
    assert await _texts(db, "third try", alice) == ["third try"]  # PostgreSQL: its words follow, too
    async with db.transaction() as conn:
        await conn.execute(delete(MessageRow).where(MessageRow.room_id == room.id))
    assert await _texts(db, "phrase", alice) == []


async def test_a_message_edited_before_the_indexer_read_it_is_found_once(db, make_user, make_room, send_message,
                                                                         tiny_windows):
    """PostgreSQL: an edit writes the message's words at once, also above its room's progress,
    where search reads the messages themselves: one hit, before and after the indexer reads it."""
    alice = await make_user("alice")
    room = await make_room(alice)
    await send_message(room.id, alice, "beta gamma, the old one")
    await _index_all(db)
    late = await send_message(room.id, alice, "not yet read")
    for i in range(8):
        await send_message(room.id, alice, f"padding {i}")
    async with db.transaction() as conn:
        await messages.append_batch(conn, [timeline.edit_entry(room.id, alice, late.message.seq, "beta gamma delta")])
    assert await _texts(db, "beta gamma", alice) == ["beta gamma delta", "beta gamma, the old one"]


async def test_message_pages_are_stable_under_concurrent_inserts(db, make_user, make_room, send_message):
    alice = await make_user("alice")
    for q in ("note", "no"):  # the index path and the 2-character path
        room = await make_room(alice)
        for i in range(5):
            await send_message(room.id, alice, f"note {i}")
        async with db.read() as conn:
            page = await search.messages(conn, q, member_id=alice.id, room_id=room.id, limit=2)
        seen = [hit.text for hit in page]
        while page:
            await send_message(room.id, alice, "note, newer than every page")  # arrives between two pages
            async with db.read() as conn:
                page = await search.messages(conn, q, member_id=alice.id, room_id=room.id,
                                             before=page[-1].cursor, limit=2)
            seen += [hit.text for hit in page]
        assert seen == [f"note {i}" for i in range(4, -1, -1)], q


async def test_bad_message_cursor(db, make_user):
    alice = await make_user("alice")
    async with db.read() as conn:
        with pytest.raises(search.BadCursor):
            await search.messages(conn, "abc", member_id=alice.id, before="x.y")


async def test_records_best_match_first_with_filters(db, make_user):
    owner = await make_user("owner")
    async with db.transaction() as conn:
        desc = await alumni.create_record(conn, name="Old friends", school="No 1 School", owner_id=owner.id,
                                          description="we met in 北京大学")
        school = await alumni.create_record(conn, name="Class 3", school="北京大学", year=2010, owner_id=owner.id)
        contains = await alumni.create_record(conn, name="北京大学 2012", school="PKU", year=2012, owner_id=owner.id,
                                              class_name="Physics")
        exact = await alumni.create_record(conn, name="北京大学", school="PKU", year=2010, owner_id=owner.id)
    async with db.read() as conn:
        found = await search.records(conn, q="北京大学")
        assert [r.item.id for r in found] == [exact.id, contains.id, school.id, desc.id]
        assert [r.item.id for r in await search.records(conn, q="北京", year=2010)] == [exact.id, school.id]
        assert [r.item.id for r in await search.records(conn, school="pku", class_name="phys")] == [contains.id]
        page = await search.records(conn, q="北京大学", limit=2)
        rest = await search.records(conn, q="北京大学", before=(page[-1].rank, page[-1].created, page[-1].id))
        assert [r.item.id for r in page + rest] == [exact.id, contains.id, school.id, desc.id]
        assert search.parse_ranked_cursor(page[-1].cursor()) == (page[-1].rank, page[-1].created, page[-1].id)
    async with db.transaction() as conn:
        await alumni.update_record(conn, desc.id, description="nothing")
        await alumni.delete_record(conn, school.id)
    async with db.read() as conn:
        assert [r.item.id for r in await search.records(conn, q="北京大学")] == [exact.id, contains.id]


async def test_record_pages_walk_every_rank_once_in_order(db, make_user):
    """Ranked pages (PostgreSQL reads one rank at a time) through names, schools, classes and
    descriptions, empty fields among them, in any case, for 2 characters or more: each record
    once, in its rank, best rank first and newest first within one."""
    owner = await make_user("owner")
    ranks = {}
    async with db.transaction() as conn:
        for i in range(16):
            rank = i % 4
            fields = [
                {"name": "AB"},  # the query itself
                {"name": f"x ab {i}"},
                {"name": f"n{i}", "school": "the aB school"} if i % 8 == 2 else {"name": f"n{i}", "class_name": "Ab"},
                {"name": f"m{i}", "description": f"about Ab {i}"},
            ][rank]
            record = await alumni.create_record(conn, owner_id=owner.id, **{"school": "S", **fields})
            ranks[record.id] = rank
        await alumni.create_record(conn, owner_id=owner.id, name="other", school="S", description="a b")
    for q in ("ab", "AB"):
        async with db.read() as conn:
            whole = await search.records(conn, q=q, limit=100)
        assert {r.item.id: r.rank for r in whole} == ranks, q
        assert [(r.rank, -r.created) for r in whole] == sorted((r.rank, -r.created) for r in whole), q
        for limit in (1, 3):
            seen, before = [], None
            while True:
                async with db.read() as conn:
                    page = await search.records(conn, q=q, before=before, limit=limit)
                seen += page
                if len(page) < limit:
                    break
                before = search.parse_ranked_cursor(page[-1].cursor())
            assert [r.item.id for r in seen] == [r.item.id for r in whole], (q, limit)


async def test_index_messages_moves_past_what_was_stored_once(db, make_user, make_room, send_message, tiny_windows):
    """The indexer's step (SQLite's FTS5 index, PostgreSQL's word index) moves past the messages
    stored since the last one, then has nothing to do; search finds them from the index."""
    alice = await make_user("alice")
    room = await make_room(alice)
    for i in range(30):
        await send_message(room.id, alice, f"pending {i} promotion customer")
    async with db.transaction() as conn:
        assert await search.unindexed(conn) == 30
        assert await search.index_messages(conn, 1000) == 30
    async with db.transaction() as conn:
        assert await search.index_messages(conn, 1000) == 0
        assert await search.unindexed(conn) == 0
    assert len(await _all_pages(db, "promotion cust", alice, limit=100)) == 30


async def test_groups_only_open_and_approval(db, make_user, make_room):
    owner = await make_user("owner")
    open_ = await make_room(owner, name="Chess club", join_policy="open")
    await make_room(owner, name="Chess secret", join_policy="invite")
    approval = await make_room(owner, name="Chess masters", join_policy="open")
    async with db.transaction() as conn:
        await conn.execute(update(RoomRow).where(RoomRow.id == approval.id).values(join_policy="approval"))
        await rooms.update_room(conn, open_.id, topic="国际象棋")
    async with db.read() as conn:
        assert {g.item.id for g in await search.groups(conn, "chess")} == {open_.id, approval.id}
        assert [g.item.id for g in await search.groups(conn, "象棋")] == [open_.id]
        assert {g.item.id for g in await search.groups(conn)} == {open_.id, approval.id}


async def test_two_characters_anywhere_even_the_whole_value(db, make_user, make_room, send_message):
    """A 2-character query has no trigram of its own: it must still find the value that is exactly
    those 2 characters, and them at the very start or end of a text."""
    wang = await make_user("wangwei")
    async with db.transaction() as conn:
        await users.set_display(conn, wang.id, "王伟")
    room = await make_room(wang)
    await send_message(room.id, wang, "去北京")
    await send_message(room.id, wang, "北京见")
    await send_message(room.id, wang, "OK")
    async with db.read() as conn:
        assert [u.name for u in await search.people(conn, "王伟")] == ["wangwei"]
        assert [u.name for u in await search.people(conn, "WE")] == ["wangwei"]
        assert await search.people(conn, "伟王") == []
    assert await _texts(db, "北京", wang) == ["北京见", "去北京"]
    assert await _texts(db, "ok", wang) == ["OK"]
    assert await _texts(db, "京去", wang) == []


async def test_indexer_catches_up_and_a_reused_rowid_is_indexed(db, make_user, make_room, send_message):
    alice = await make_user("alice")
    room = await make_room(alice)
    for i in range(3):
        await send_message(room.id, alice, f"reused {i}")
    async with db.read() as conn:
        assert await search.unindexed(conn) == 3
    await _index_all(db)
    async with db.read() as conn:
        assert await search.unindexed(conn) == 0
    async with db.transaction() as conn:  # the newest row goes: SQLite may hand its rowid out again
        await conn.execute(delete(MessageRow).where(MessageRow.room_id == room.id, MessageRow.seq == 3))
    await send_message(room.id, alice, "reused again", cid="again")
    assert await _texts(db, "reused", alice) == ["reused again", "reused 1", "reused 0"]
    assert await _texts(db, "reused 2", alice) == []


@pytest.fixture
def tiny_windows(monkeypatch):
    """PostgreSQL reads each room's newest messages before it asks an index (storage/pg_search.py):
    with windows of 4 rows in all (deeper ones of 24 at most), a few dozen messages take every path."""
    monkeypatch.setattr(pg_search, "PROBE_ROWS", 4)
    monkeypatch.setattr(pg_search, "WINDOW_ROWS", 24)


async def _all_pages(db, q, member, limit=3, **kw) -> list[str]:
    """Every hit of a search, following `next` cursors page by page."""
    seen, cursor = [], None
    while True:
        async with db.read() as conn:
            page = await search.messages(conn, q, member_id=member.id, before=cursor, limit=limit, **kw)
        seen += [hit.text for hit in page]
        if len(page) < limit:
            return seen
        cursor = page[-1].cursor


async def test_recent_windows_then_the_index_give_exactly_the_newest(db, make_user, make_room, send_message,
                                                                      tiny_windows):
    """Common and rare words across busy and quiet rooms page exactly, whichever path finds them."""
    alice = await make_user("alice")
    busy, quiet = await make_room(alice), await make_room(alice)
    expected = []
    for i in range(8):
        room = busy if i % 3 else quiet
        body = f"common {i}" + (" rare" if i in (1, 6) else "")
        await send_message(room.id, alice, body)
        expected.insert(0, body)
    for q, wanted in (("common", expected), ("rare", [t for t in expected if "rare" in t])):
        assert await _all_pages(db, q, alice) == wanted, q


async def test_deep_pages_of_a_common_word_give_each_hit_once_in_order(db, make_user, make_room, send_message,
                                                                        tiny_windows):
    """Forty pages deep, a word in most messages of three interleaved rooms, and a phrase, a
    fragment and two characters of it: every path pages to the end without a gap or a repeat."""
    alice = await make_user("alice")
    rooms_ = [await make_room(alice) for _ in range(3)]
    texts = []
    for i in range(120):
        body = f"meeting notes {i}" if i % 4 else f"lunch {i}, then meeting notes"
        await send_message(rooms_[i % 3].id, alice, body)
        texts.insert(0, body)
        if i == 80:  # the indexes hold the older messages; the newer are read from the rooms
            await _index_all(db)
    for q in ("meeting", "meeting notes", "then meeting", "eting no", "no"):
        wanted = [t for t in texts if q in t]
        assert await _all_pages(db, q, alice) == wanted, q
        assert await _all_pages(db, q, alice, room_id=rooms_[1].id) == [t for t in wanted if t in texts[1::3]], q


async def test_phrases_and_words_find_what_contains_them(db, make_user, make_room, send_message, tiny_windows):
    """The word index (PostgreSQL) may only narrow what a search reads: a phrase is still found
    inside longer words, next to punctuation and other scripts, in any case, and in long texts."""
    alice = await make_user("alice")
    room = await make_room(alice)
    long_word = "x" * 250 + "tail"
    bodies = [
        "Promotion Customer service",
        "apromotion customers!",
        "the promotion-customer link",
        "5e971e6 is a number",
        "北京customer care",
        "customer北京 care",
        "filler " * 300 + long_word + " end",  # a long text: its long word is indexed in pieces
    ]
    for i, body in enumerate(bodies):
        await send_message(room.id, alice, body)
        await send_message(room.id, alice, "padding, so that windows do not hold everything")
        if i == 3:
            await _index_all(db)
    cases = {
        "promotion customer": [bodies[1], bodies[0]],
        "PROMOTION CUSTOMER S": [bodies[0]],
        "n-customer l": [bodies[2]],
        "customer care": [bodies[4]],
        "x 5e971e6 is": [],
        "5e971e6 is": [bodies[3]],
        "e971e6 is a": [bodies[3]],
        "京customer c": [bodies[4]],
        "customer北京 ca": [bodies[5]],
        "filler " + "x" * 190: [bodies[6]],
        "x" * 40 + "tail end": [bodies[6]],
        "r " + long_word[:198]: [bodies[6]],
    }
    for q, wanted in cases.items():
        assert await _all_pages(db, q, alice) == wanted, q


async def test_random_substrings_are_found_exactly(db, make_user, make_room, send_message, tiny_windows):
    """Texts of a few words, punctuation and Chinese; queries cut from them anywhere (and some
    that match nothing): every search finds exactly the texts that contain the query."""
    rng = random.Random(13)
    words = ["alpha", "beta", "Gamma", "delta", "e5", "x2y", "同学", "北京"]
    alice = await make_user("alice")
    rooms_ = [await make_room(alice) for _ in range(2)]
    texts = []
    for i in range(40):
        body = "".join(rng.choice(words) + rng.choice([" ", " ", ", ", "-", "!", "", "。"])
                       for _ in range(rng.randint(1, 6)))
        body = body.strip() or "alpha"
        await send_message(rooms_[i % 2].id, alice, body, cid=f"c{i}")
        texts.insert(0, body)
        if i == 25:
            await _index_all(db)
    queries = set()
    while len(queries) < 40:
        body = rng.choice(texts)
        start = rng.randrange(len(body))
        q = body[start:start + rng.randint(2, 14)].strip()
        if len(q) >= 2:
            queries.add(q if rng.random() < 0.7 else q.upper())
    queries |= {"alpha betax", "beta gamma delta e5x"}
    for q in sorted(queries):
        assert await _all_pages(db, q, alice, limit=4) == [t for t in texts if q.lower() in t.lower()], q


def test_words_of_a_query_are_the_pieces_of_words_every_match_has():
    """`words_of` takes `q` lowered by the database: here ASCII and Chinese, which have no other case."""
    def word(text, begins=True, ends=True):
        return pg_search.Word(text, begins, ends)

    assert pg_search.words_of("promotion customer") == [word("promotion", begins=False), word("customer", ends=False)]
    assert pg_search.words_of("a promotion customer b") == [
        word("a", begins=False), word("promotion"), word("customer"), word("b", ends=False)]
    assert pg_search.words_of("#tag") == [word("tag", ends=False)]
    assert pg_search.words_of("x.y!") == [word("x", begins=False), word("y")]
    assert pg_search.words_of("北京customer care") == [word("customer"), word("care", ends=False)]
    assert pg_search.words_of("meeting") == []
    assert [w.lexeme("r1") for w in pg_search.words_of("ab cd ef")] == ["'r1<ba':*", "'r1:cd'", "'r1:ef':*"]
    assert pg_search.Word("b" * 250, True, True).lexeme("r'1") == "'r''1:" + "b" * 200 + "':*"


async def test_an_existing_database_is_upgraded_and_its_messages_found(db, make_user, make_room, send_message,
                                                                       tiny_windows):
    """Migration 0008 on a database that holds messages (down to 0007 and up again)."""
    alice = await make_user("alice")
    room = await make_room(alice)
    for body in ("old promotion customer", "other words", "more words"):
        await send_message(room.id, alice, body)
    await _alembic(db, "downgrade", "0007")
    await send_message(room.id, alice, "new promotion customers")
    await db.migrate()
    assert await _all_pages(db, "promotion customer", alice) == ["new promotion customers", "old promotion customer"]


async def _alembic(db, command_name: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    def run(sync_conn) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = sync_conn
        getattr(command, command_name)(config, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)
