"""storage.timeline through append_batch: updates, replies and mentions (docs/protocol.md §6.4, §6.5)."""

import pytest
from sqlalchemy import event, text

from storage import messages, rooms, timeline
from storage.records import NewMessage, Reaction, Unchanged
from storage.timeline import Refused


async def _append(db, *batch):
    async with db.transaction() as conn:
        return await messages.append_batch(conn, list(batch))


async def _history(db, room_id, viewer, **paging):
    async with db.read() as conn:
        return await messages.history(conn, room_id, viewer_id=viewer.id, **paging)


@pytest.fixture
async def carol(make_user):
    return await make_user("carol")


async def test_an_edit_is_an_entry_and_history_shows_the_current_text(db, room, alice, send_message):
    original = (await send_message(room.id, alice, "frist")).message
    [edit] = await _append(db, timeline.edit_entry(room.id, alice, 1, "first"))
    entry = edit.message
    assert (entry.seq, entry.kind, entry.cid, entry.text) == (2, "update", None, None)
    assert entry.update == {"type": "edited", "target": 1, "text": "first", "edited_ts": entry.ts}
    [again] = await _append(db, timeline.edit_entry(room.id, alice, 1, "first!"))
    found, _ = await _history(db, room.id, alice)
    assert [m.seq for m in found] == [1, 2, 3]
    assert (found[0].text, found[0].edited_ts) == ("first!", again.message.ts)
    assert found[1].update["text"] == "first"  # an entry keeps what it said
    async with db.read() as conn:
        assert await messages.edits(conn, room.id, 1) == [("frist", original.ts), ("first", entry.ts)]


async def test_a_snapshot_folds_a_page_up_to_its_last_seq_and_no_further(db, room, alice, bob, send_message):
    """A history page and the last seq it is folded up to are read in one snapshot
    (docs/protocol.md §5.2): a reaction committed between the two reads is in neither. (On
    PostgreSQL a plain `db.read()` gives each statement its own snapshot and shows it in the page.)"""
    await send_message(room.id, alice, "hi")
    async with db.snapshot() as conn:
        last = await messages.last_seq(conn, room.id)
        [reacted] = await _append(db, timeline.reaction_entry(room.id, bob, 1, "👍"))  # committed meanwhile
        found, _ = await messages.history(conn, room.id, viewer_id=bob.id)
    assert (last, [m.seq for m in found], found[0].reactions) == (1, [1], ())
    found, _ = await _history(db, room.id, bob)
    assert reacted.message.seq == 2 and found[0].reactions == (Reaction(emoji="👍", count=1, me=True),)


async def test_edit_rules(db, room, alice, bob, send_message):
    await send_message(room.id, alice, "mine")
    await send_message(room.id, None, "joined", system_type="member.joined", system_data={})
    results = await _append(
        db,
        timeline.edit_entry(room.id, bob, 1, "not yours"),
        timeline.edit_entry(room.id, alice, 2, "a system message"),
        timeline.edit_entry(room.id, alice, 99, "nothing there"),
    )
    assert [(r.code, type(r)) for r in results] == [
        ("forbidden", Refused), ("invalid", Refused), ("not_found", Refused)
    ]
    await _append(db, timeline.recall_entry(room.id, alice, 1))
    [recalled] = await _append(db, timeline.edit_entry(room.id, alice, 1, "too late"))
    assert isinstance(recalled, Refused) and recalled.code == "invalid"
    [update] = await _append(db, timeline.edit_entry(room.id, alice, 3, "an update entry"))
    assert isinstance(update, Refused) and update.code == "invalid"
    async with db.read() as conn:
        assert await messages.last_seq(conn, room.id) == 3  # nothing refused took a seq


async def test_reactions_fold_into_counts_with_me_per_caller(db, room, alice, bob, send_message):
    await send_message(room.id, alice, "react to me")
    results = await _append(
        db,
        timeline.reaction_entry(room.id, alice, 1, "👍"),
        timeline.reaction_entry(room.id, bob, 1, "👍"),
        timeline.reaction_entry(room.id, bob, 1, "🎉"),
        timeline.reaction_entry(room.id, bob, 1, "👍"),  # the same way twice: no entry
    )
    assert [r.message.seq for r in results[:3]] == [2, 3, 4]
    assert isinstance(results[3], Unchanged)
    assert results[2].message.update == {"type": "reaction", "target": 1, "emoji": "🎉", "on": True}
    found, _ = await _history(db, room.id, alice)
    assert found[0].reactions == (Reaction("👍", 2, True), Reaction("🎉", 1, False))
    assert [m.reactions for m in found[1:]] == [None, None, None]  # entries are not folded
    found, _ = await _history(db, room.id, bob)
    assert found[0].reactions == (Reaction("👍", 2, True), Reaction("🎉", 1, True))

    off = await _append(
        db, timeline.reaction_entry(room.id, bob, 1, "🎉", on=False), timeline.reaction_entry(room.id, bob, 1, "🎉", on=False)
    )
    assert off[0].message.update["on"] is False and isinstance(off[1], Unchanged)
    found, _ = await _history(db, room.id, bob)
    assert found[0].reactions == (Reaction("👍", 2, True),)
    # Toggled in one batch: on, off, on again gives three entries and one reaction.
    toggled = await _append(
        db,
        timeline.reaction_entry(room.id, alice, 1, "🎉"),
        timeline.reaction_entry(room.id, alice, 1, "🎉", on=False),
        timeline.reaction_entry(room.id, alice, 1, "🎉"),
    )
    assert [r.message.update["on"] for r in toggled] == [True, False, True]
    found, _ = await _history(db, room.id, alice)
    assert found[0].reactions == (Reaction("👍", 2, True), Reaction("🎉", 1, True))


async def test_at_most_twenty_distinct_emoji(db, room, alice, bob, send_message):
    await send_message(room.id, alice, "so many")
    emoji = [f"e{n}" for n in range(20)]
    results = await _append(db, *(timeline.reaction_entry(room.id, alice, 1, e) for e in emoji))
    assert all(not isinstance(r, Refused) for r in results)
    [over] = await _append(db, timeline.reaction_entry(room.id, bob, 1, "e20"))
    assert isinstance(over, Refused) and over.code == "conflict"
    [same] = await _append(db, timeline.reaction_entry(room.id, bob, 1, "e3"))  # an emoji already there is fine
    assert same.message.update["emoji"] == "e3"
    await _append(db, timeline.reaction_entry(room.id, alice, 1, "e0", on=False))
    [room_again] = await _append(db, timeline.reaction_entry(room.id, bob, 1, "e20"))
    assert room_again.message.update["emoji"] == "e20"


async def test_history_reads_reaction_aggregates_not_reactions(db, store, room, alice, make_user, send_message):
    """Thousands of reactions on a page: history runs the same statements and reads one count row
    per emoji; who reacted is read only for the caller."""
    await send_message(room.id, alice, "popular")
    people = [await make_user(f"fan{n}") for n in range(300)]
    async with db.transaction() as conn:
        await messages.append_batch(
            conn, [timeline.reaction_entry(room.id, p, 1, "❤") for p in people], check_membership=False
        )
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        found, _ = await _history(db, room.id, people[7], limit=1, before=2)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert found[0].reactions == (Reaction("❤", 300, True),)
    reading = [s for s in statements if "message_reactions" in s]
    assert len(reading) == 1 and "user_id" in reading[0]  # only the caller's own reactions
    async with db.read() as conn:
        counts = (await conn.execute(text("SELECT count(*) FROM reaction_counts"))).scalar()
    assert counts == 1


async def test_pin_and_recall_entries(db, room, alice, bob, send_message):
    await send_message(room.id, alice, "pin me")
    pinned, twice = await _append(db, timeline.pin_entry(room.id, bob, 1), timeline.pin_entry(room.id, bob, 1))
    assert pinned.message.update == {"type": "pinned", "target": 1} and isinstance(twice, Unchanged)
    found, _ = await _history(db, room.id, alice)
    assert found[0].pinned is True
    [unpinned] = await _append(db, timeline.pin_entry(room.id, bob, 1, pinned=False))
    assert unpinned.message.update["type"] == "unpinned"
    recalled, again = await _append(db, timeline.recall_entry(room.id, alice, 1), timeline.recall_entry(room.id, alice, 1))
    assert recalled.message.update == {"type": "recalled", "target": 1} and isinstance(again, Unchanged)
    found, _ = await _history(db, room.id, alice)
    assert (found[0].recalled, found[0].text, found[0].reactions) == (True, None, None)


async def test_update_entries_are_not_unread_and_move_no_read_marker(db, room, alice, bob, send_message):
    await send_message(room.id, alice, "hello")
    await _append(db, timeline.reaction_entry(room.id, bob, 1, "👍"), timeline.edit_entry(room.id, alice, 1, "hi"))
    async with db.read() as conn:
        [bob_state] = await rooms.states_for_user(conn, bob.id)
        [alice_state] = await rooms.states_for_user(conn, alice.id)
    assert (bob_state.last_seq, bob_state.read_seq, bob_state.unread) == (3, 0, 1)
    assert (alice_state.read_seq, alice_state.unread) == (1, 0)


async def test_a_reply_quotes_the_original(db, room, alice, bob, send_message):
    await send_message(room.id, alice, "x" * 150)
    reply = (await send_message(room.id, bob, "yes", reply_to=1)).message
    assert (reply.reply.seq, reply.reply.sender, reply.reply.excerpt) == (1, alice, "x" * 100)
    await _append(db, timeline.edit_entry(room.id, alice, 1, "edited"))
    found, _ = await _history(db, room.id, bob)
    assert found[1].reply.excerpt == "edited"  # the original's current text
    await _append(db, timeline.recall_entry(room.id, alice, 1))
    recalled_reply = (await send_message(room.id, bob, "to a recalled one", reply_to=1)).message
    assert recalled_reply.reply.excerpt == ""
    async with db.read() as conn:
        replayed = await messages.between(conn, room.id, 0, 99)
    assert replayed[1].reply.excerpt == ""


@pytest.mark.parametrize("target", [99, 2, 3])
async def test_a_reply_must_name_a_text_message_of_the_room(db, room, alice, bob, make_room, send_message, target):
    other = await make_room(alice)
    await send_message(other.id, alice, "elsewhere")
    await send_message(room.id, alice, "here")
    await send_message(room.id, None, "sys", system_type="member.joined", system_data={})
    await _append(db, timeline.reaction_entry(room.id, bob, 1, "👍"))  # seq 3: an update
    with pytest.raises(Refused) as refused:
        await send_message(room.id, bob, "which?", reply_to=target)
    assert refused.value.code == "invalid" and "reply_to" in refused.value.message


async def test_mentions_name_members_and_count_while_unread(db, room, alice, bob, carol, send_message):
    with pytest.raises(Refused) as refused:
        await send_message(room.id, alice, "hey carol", mentions=[carol.id])
    assert refused.value.code == "invalid" and "mentions" in refused.value.message
    one = await send_message(room.id, alice, "hey bob", mentions=[bob.id])
    assert one.mentioned == (bob.id,)
    everyone = await send_message(room.id, bob, "hey all", mentions="all")
    assert everyone.mentioned == (alice.id,)
    async with db.read() as conn:
        [bob_state] = await rooms.states_for_user(conn, bob.id)
        assert bob_state.mentions == 0  # sending "hey all" moved his read marker past the mention
        assert [(r.id, r.mentions) for r in await rooms.list_for_user(conn, alice.id)] == [(room.id, 1)]
    async with db.transaction() as conn:
        await rooms.set_read(conn, room.id, alice.id, 2)
    async with db.read() as conn:
        assert [(r.id, r.mentions) for r in await rooms.list_for_user(conn, alice.id)] == [(room.id, 0)]
