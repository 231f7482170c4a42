"""storage.messages: gapless per-room seqs, idempotent group commit, history, recall."""

import asyncio

import pytest
from sqlalchemy import text

from storage import messages, rooms, timeline, users
from storage.db import now_ms
from storage.messages import NotMember
from storage.records import NewMessage, Stored


async def _append(db, batch):
    async with db.transaction() as conn:
        return await messages.append_batch(conn, batch)


async def _history(db, room_id, **paging):
    async with db.read() as conn:
        return await messages.history(conn, room_id, **paging)


async def _page(db, room_id, **paging):
    """A history page as its seqs and `more`."""
    found, more = await _history(db, room_id, **paging)
    return [m.seq for m in found], more


async def _seqs(db, room_id):
    async with db.read() as conn:
        return [m.seq for m in await messages.between(conn, room_id, 0, 10**9)]


async def test_a_batch_gets_consecutive_seqs_in_input_order(db, room, alice, bob):
    before = now_ms()
    results = await _append(db, [NewMessage(room.id, [alice, bob][n % 2], f"m{n}", cid=f"c{n}") for n in range(5)])
    assert [r.message.seq for r in results] == [1, 2, 3, 4, 5]
    assert [r.message.text for r in results] == ["m0", "m1", "m2", "m3", "m4"]
    assert not any(r.dup for r in results)
    first = results[0].message
    assert (first.room_id, first.sender, first.kind, first.cid, first.recalled) == (room.id, alice, "text", "c0", False)
    assert before <= first.ts <= now_ms()
    assert len({r.message.id for r in results}) == 5
    # What comes back from the store is what append returned.
    assert (await _history(db, room.id)) == ([r.message for r in results], False)


async def test_seqs_continue_across_batches(db, room, alice, send_message):
    await _append(db, [NewMessage(room.id, alice, "a"), NewMessage(room.id, alice, "b")])
    assert (await send_message(room.id, alice, "c")).message.seq == 3
    results = await _append(db, [NewMessage(room.id, alice, str(n)) for n in range(4)])
    assert [r.message.seq for r in results] == [4, 5, 6, 7]
    assert await _seqs(db, room.id) == list(range(1, 8))
    async with db.read() as conn:
        assert await messages.last_seq(conn, room.id) == 7
        assert (await rooms.get(conn, room.id)).last_seq == 7


async def test_rooms_count_independently(db, make_room, room, alice, bob):
    other = await make_room(bob, alice)
    await _append(db, [NewMessage(room.id, alice, "x")])
    results = await _append(
        db,
        [
            NewMessage(other.id, bob, "o1"),
            NewMessage(room.id, alice, "r2"),
            NewMessage(other.id, alice, "o2"),
            NewMessage(room.id, bob, "r3"),
        ],
    )
    assert [(r.message.room_id, r.message.seq) for r in results] == [
        (other.id, 1),
        (room.id, 2),
        (other.id, 2),
        (room.id, 3),
    ]
    async with db.read() as conn:
        assert await messages.last_seqs(conn, {room.id, other.id, "r_missing"}) == {room.id: 3, other.id: 2}
        assert await messages.last_seqs(conn, []) == {}
        assert await messages.last_seq(conn, "r_missing") is None


async def test_an_empty_batch_stores_nothing(db, room):
    assert await _append(db, []) == []
    assert await _seqs(db, room.id) == []


async def test_a_repeated_cid_returns_the_first_message(db, room, alice, send_message):
    first = await send_message(room.id, alice, "hello", cid="c1")
    await send_message(room.id, alice, "other", cid="c2")
    again = await send_message(room.id, alice, "hello, edited", cid="c1")
    assert again == Stored(first.message, dup=True)
    assert await _seqs(db, room.id) == [1, 2]
    assert (await send_message(room.id, alice, "next", cid="c3")).message.seq == 3


async def test_a_cid_repeated_within_one_batch_is_stored_once(db, room, alice, bob):
    results = await _append(
        db,
        [
            NewMessage(room.id, alice, "a", cid="same"),
            NewMessage(room.id, bob, "b", cid="same"),  # another sender: its own key
            NewMessage(room.id, alice, "a again", cid="same"),
            NewMessage(room.id, alice, "c", cid="other"),
        ],
    )
    assert [(r.message.seq, r.dup) for r in results] == [(1, False), (2, False), (1, True), (3, False)]
    assert results[2].message == results[0].message
    assert results[2].message.text == "a"
    assert await _seqs(db, room.id) == [1, 2, 3]


async def test_the_same_cid_in_another_room_is_a_new_message(db, make_room, room, alice, send_message):
    other = await make_room(alice)
    first = await send_message(room.id, alice, "x", cid="c1")
    second = await send_message(other.id, alice, "x", cid="c1")
    assert not second.dup and second.message.id != first.message.id


async def test_messages_without_cid_are_never_dups(db, room, alice):
    results = await _append(db, [NewMessage(room.id, alice, "same"), NewMessage(room.id, alice, "same")])
    assert [(r.message.seq, r.dup) for r in results] == [(1, False), (2, False)]


async def test_non_members_get_not_member_and_take_no_seq(db, make_user, room, alice):
    carol = await make_user("carol")
    results = await _append(
        db,
        [
            NewMessage(room.id, alice, "a"),
            NewMessage(room.id, carol, "intruder", cid="c1"),
            NewMessage(room.id, alice, "b"),
        ],
    )
    assert isinstance(results[1], NotMember)
    assert [results[0].message.seq, results[2].message.seq] == [1, 2]
    assert [m.text for m in (await _history(db, room.id))[0]] == ["a", "b"]


async def test_a_removed_member_cannot_send_and_cannot_replay_a_cid(db, room, alice, bob, send_message):
    await send_message(room.id, bob, "hi", cid="c1")
    async with db.transaction() as conn:
        await rooms.remove_member(conn, room.id, bob.id)
    with pytest.raises(NotMember):
        await send_message(room.id, bob, "hi", cid="c1")
    with pytest.raises(NotMember):
        await send_message(room.id, bob, "new", cid="c2")
    assert await _seqs(db, room.id) == [1]


async def test_membership_check_can_be_skipped(db, make_user, room):
    carol = await make_user("carol")
    async with db.transaction() as conn:
        [result] = await messages.append_batch(conn, [NewMessage(room.id, carol, "x")], check_membership=False)
    assert result.message.seq == 1


async def test_system_messages(db, room, alice, send_message):
    await send_message(room.id, alice, "1")
    stored = await send_message(
        room.id, None, None, system_type="member.joined", system_data={"user": alice.id, "n": [1, 2]}
    )
    message = stored.message
    assert (message.seq, message.sender, message.kind, message.text) == (2, None, "system", None)
    assert (message.system_type, message.system_data) == ("member.joined", {"user": alice.id, "n": [1, 2]})
    async with db.read() as conn:
        assert await messages.get(conn, room.id, 2) == message
        assert await messages.get(conn, room.id, 3) is None


async def test_optional_fields_round_trip(db, room, alice, bob, send_message):
    await send_message(room.id, alice, "question")
    reply = await send_message(room.id, bob, "answer", cid="c", reply_to=1, mentions=[alice.id])
    everyone = await send_message(room.id, alice, "all hands", mentions="all")
    async with db.read() as conn:
        stored = await messages.get(conn, room.id, reply.message.seq)
        assert (stored.reply_to, stored.mentions, stored.cid) == (1, [alice.id], "c")
        assert (await messages.get(conn, room.id, everyone.message.seq)).mentions == "all"


async def test_absent_optional_json_fields_are_sql_null(db, room, alice, send_message):
    plain = await send_message(room.id, alice, "no mentions")
    async with db.read() as conn:
        stored = await messages.get(conn, room.id, plain.message.seq)
        nulls = await conn.execute(
            text("SELECT mentions IS NULL, system_data IS NULL FROM messages WHERE room_id = :r AND seq = :s"),
            {"r": room.id, "s": plain.message.seq},
        )
        assert tuple(nulls.one()) == (True, True)
    assert (stored.mentions, stored.system_data) == (None, None)


async def test_sending_moves_the_senders_read_marker(db, room, alice, bob, send_message):
    await send_message(room.id, bob, "1")
    await send_message(room.id, bob, "2")
    await _append(db, [NewMessage(room.id, alice, "3"), NewMessage(room.id, alice, "4"), NewMessage(room.id, bob, "5")])
    async with db.read() as conn:
        assert (await rooms.get_member(conn, room.id, alice.id)).read_seq == 4
        assert (await rooms.get_member(conn, room.id, bob.id)).read_seq == 5


async def test_a_rolled_back_batch_leaves_no_gap(db, room, alice, send_message):
    await send_message(room.id, alice, "1")
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            [stored] = await messages.append_batch(conn, [NewMessage(room.id, alice, "lost", cid="c")])
            assert stored.message.seq == 2
            raise RuntimeError("publish failed before commit")
    again = await send_message(room.id, alice, "kept", cid="c")
    assert (again.message.seq, again.dup, again.message.text) == (2, False, "kept")
    assert await _seqs(db, room.id) == [1, 2]


@pytest.fixture
async def ten(db, room, alice):
    """Messages 1..10 in `room`."""
    await _append(db, [NewMessage(room.id, alice, str(n)) for n in range(1, 11)])


async def test_history_pages_backwards(db, room, ten):
    assert await _page(db, room.id, limit=4) == ([7, 8, 9, 10], True)
    assert await _page(db, room.id, before=7, limit=4) == ([3, 4, 5, 6], True)
    assert await _page(db, room.id, before=3, limit=4) == ([1, 2], False)
    assert await _page(db, room.id, before=5, limit=4) == ([1, 2, 3, 4], False)
    assert await _page(db, room.id, before=1) == ([], False)
    assert await _page(db, room.id) == (list(range(1, 11)), False)
    assert await _page(db, room.id, limit=10) == (list(range(1, 11)), False)
    assert await _page(db, room.id, limit=9) == (list(range(2, 11)), True)


async def test_history_pages_forwards(db, room, ten):
    assert await _page(db, room.id, after=0, limit=4) == ([1, 2, 3, 4], True)
    assert await _page(db, room.id, after=4, limit=4) == ([5, 6, 7, 8], True)
    assert await _page(db, room.id, after=8, limit=4) == ([9, 10], False)
    assert await _page(db, room.id, after=6, limit=4) == ([7, 8, 9, 10], False)
    assert await _page(db, room.id, after=10) == ([], False)


async def test_history_of_an_empty_room(db, room):
    assert await _history(db, room.id) == ([], False)
    assert await _history(db, room.id, after=0) == ([], False)


async def test_between(db, room, alice):
    await _append(db, [NewMessage(room.id, alice, str(n)) for n in range(1, 8)])
    async with db.read() as conn:
        assert [m.seq for m in await messages.between(conn, room.id, 2, 5)] == [3, 4, 5]
        assert [m.text for m in await messages.between(conn, room.id, 5, 99)] == ["6", "7"]
        assert await messages.between(conn, room.id, 7, 9) == []
        assert await messages.between(conn, room.id, 3, 3) == []


async def test_recall_erases_the_text_and_keeps_the_seq(db, room, alice, send_message):
    await send_message(room.id, alice, "keep")
    secret = (await send_message(room.id, alice, "secret", cid="c")).message
    await send_message(room.id, alice, "after")
    async with db.transaction() as conn:
        recalled, missing = await messages.append_batch(
            conn, [timeline.recall_entry(room.id, alice, 2), timeline.recall_entry(room.id, alice, 99)]
        )
    assert recalled.message.update == {"type": "recalled", "target": 2}
    assert isinstance(missing, timeline.Refused) and missing.code == "not_found"
    found, _ = await _history(db, room.id)
    assert [(m.seq, m.text, m.recalled) for m in found][:3] == [
        (1, "keep", False), (2, None, True), (3, "after", False)
    ]
    assert found[3].kind == "update"
    assert (found[1].id, found[1].sender, found[1].cid) == (secret.id, alice, "c")
    async with db.read() as conn:
        rows = (await conn.execute(text("SELECT text FROM messages WHERE seq = 2"))).all()
    assert rows == [(None,)]
    # A recalled message still answers a repeated cid.
    assert (await send_message(room.id, alice, "secret", cid="c")).dup


async def test_concurrent_writers_get_gapless_seqs(db, room, alice, bob):
    async def write(n: int) -> Stored:
        async with db.transaction() as conn:
            [stored] = await messages.append_batch(conn, [NewMessage(room.id, [alice, bob][n % 2], f"m{n}", cid=f"c{n}")])
            await asyncio.sleep(0)  # hold the room while others queue
            return stored

    results = await asyncio.gather(*(write(n) for n in range(20)))
    assert sorted(r.message.seq for r in results) == list(range(1, 21))
    assert await _seqs(db, room.id) == list(range(1, 21))
    async with db.read() as conn:
        assert await messages.last_seq(conn, room.id) == 20


async def test_concurrent_repeats_of_one_cid_store_one_message(db, room, alice):
    async def write() -> Stored:
        async with db.transaction() as conn:
            [stored] = await messages.append_batch(conn, [NewMessage(room.id, alice, "once", cid="c")])
            return stored

    results = await asyncio.gather(*(write() for _ in range(10)))
    assert sum(not r.dup for r in results) == 1
    assert {r.message.id for r in results} == {results[0].message.id}
    assert await _seqs(db, room.id) == [1]


async def test_two_nodes_writing_one_room_get_gapless_seqs(db, open_node, room, alice, bob):
    other_node = open_node()

    async def write(node, sender, n: int) -> int:
        async with node.transaction() as conn:
            [stored] = await messages.append_batch(conn, [NewMessage(room.id, sender, f"m{n}")])
            return stored.message.seq

    seqs = await asyncio.gather(
        *(write(db, alice, n) for n in range(10)), *(write(other_node, bob, n) for n in range(10))
    )
    assert sorted(seqs) == list(range(1, 21))
    assert await _seqs(db, room.id) == list(range(1, 21))


async def test_deleting_the_sender_keeps_their_messages(db, make_user, make_room, send_message):
    owner, leaver = await make_user("owner"), await make_user("leaver")
    room = await make_room(owner, leaver)
    await send_message(room.id, leaver, "still here")
    async with db.transaction() as conn:
        await users.delete_user(conn, leaver.id)
    [message], _ = await _history(db, room.id)
    assert (message.seq, message.text, message.sender) == (1, "still here", None)


async def test_concurrent_joins_each_announced_in_one_transaction_do_not_deadlock(db, make_user, make_room):
    """Adding a member and storing its system message in one transaction, many at once.

    The membership insert's foreign key takes a key-share lock on the room row;
    the seq lock must not conflict with it, or two joins deadlock on PostgreSQL.
    """
    owner = await make_user()
    room = await make_room(owner)
    people = [await make_user() for _ in range(12)]

    async def join(user):
        async with db.transaction() as conn:
            await rooms.add_member(conn, room.id, user.id)
            (stored,) = await messages.append_batch(
                conn, [NewMessage(room_id=room.id, sender=None, text="joined", system_type="member.joined")]
            )
            return stored.message.seq

    seqs = await asyncio.gather(*(join(user) for user in people))
    assert sorted(seqs) == list(range(1, len(people) + 1))
