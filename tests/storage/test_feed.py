"""Record feeds: newest first, keyset paging across records, removal of a post's entries."""

from storage import alumni, feed


async def _record(db, owner, name="Class of 2010"):
    async with db.transaction() as conn:
        return await alumni.create_record(conn, name=name, school="No. 1 High", owner_id=owner.id)


async def test_entries_come_newest_first_by_ts_then_id(db, make_user):
    alice = await make_user("alice")
    record = await _record(db, alice)
    async with db.transaction() as conn:
        first = await feed.add_entry(conn, record_id=record.id, type="joined", actor_id=alice.id, data={}, ts=100)
        second = await feed.add_entry(conn, record_id=record.id, type="profile", actor_id=alice.id,
                                      data={"profile": {"city": "Oslo"}}, ts=200)
        tie = await feed.add_entry(conn, record_id=record.id, type="bound", actor_id=alice.id, data={}, ts=200)
    async with db.read() as conn:
        got = await feed.entries(conn, [record.id])
    newer_of_tie, older_of_tie = sorted([second, tie], key=lambda e: e.id, reverse=True)
    assert [e.id for e in got] == [newer_of_tie.id, older_of_tie.id, first.id]
    assert got[-1].actor.id == alice.id and got[-1].type == "joined"
    assert second.data == {"profile": {"city": "Oslo"}} and second.actor.name == "alice"


async def test_keyset_paging_visits_every_entry_once(db, make_user):
    alice = await make_user("alice")
    record = await _record(db, alice)
    async with db.transaction() as conn:
        made = [
            await feed.add_entry(conn, record_id=record.id, type="joined", actor_id=alice.id, data={"n": i}, ts=i // 3)
            for i in range(10)
        ]
    seen, before = [], None
    async with db.read() as conn:
        while page := await feed.entries(conn, [record.id], before=before, limit=4):
            seen += page
            before = (page[-1].ts, page[-1].id)
    assert sorted(e.id for e in seen) == sorted(e.id for e in made)
    assert [(e.ts, e.id) for e in seen] == sorted(((e.ts, e.id) for e in seen), reverse=True)


async def test_entries_of_several_records_and_none(db, make_user):
    alice, bob = await make_user("alice"), await make_user("bob")
    one, two, other = await _record(db, alice), await _record(db, bob), await _record(db, bob)
    async with db.transaction() as conn:
        for record, user in ((one, alice), (two, bob), (other, bob)):
            await feed.add_entry(conn, record_id=record.id, type="joined", actor_id=user.id, data={})
    async with db.read() as conn:
        assert {e.record_id for e in await feed.entries(conn, [one.id, two.id])} == {one.id, two.id}
        assert await feed.entries(conn, []) == []


async def test_delete_for_post_everywhere_or_in_one_record(db, make_user):
    alice = await make_user("alice")
    one, two = await _record(db, alice), await _record(db, alice)
    async with db.transaction() as conn:
        for record in (one, two):
            await feed.add_entry(conn, record_id=record.id, type="post", actor_id=alice.id, data={}, post_id="p_1")
        await feed.add_entry(conn, record_id=one.id, type="joined", actor_id=alice.id, data={})
        assert await feed.delete_for_post(conn, "p_1", record_id=two.id) == 1
    async with db.read() as conn:
        left = await feed.entries(conn, [one.id, two.id])
    assert sorted((e.record_id, str(e.post_id)) for e in left) == sorted([(one.id, "p_1"), (one.id, "None")])
    async with db.transaction() as conn:
        assert await feed.delete_for_post(conn, "p_1") == 1
    async with db.read() as conn:
        assert [e.type for e in await feed.entries(conn, [one.id, two.id])] == ["joined"]


async def test_pages_across_many_records_merge_in_one_order_and_visit_each_entry_once(db, make_user):
    """`entries` takes each record's newest and merges them (no scan of every entry)."""
    alice = await make_user("alice")
    records = [await _record(db, alice, name=f"Class {n}") for n in range(3)]
    async with db.transaction() as conn:
        for i in range(30):  # interleaved in time, with ties across records
            await feed.add_entry(conn, record_id=records[i % 3].id, type="joined", actor_id=alice.id,
                                 data={"n": i}, ts=1000 + i // 2)
    ids = [r.id for r in records]
    async with db.read() as conn:
        everything = await feed.entries(conn, [*ids, ids[0]], limit=100)  # a repeated id changes nothing
        seen, before = [], None
        while page := await feed.entries(conn, ids, before=before, limit=4):
            seen += page
            before = (page[-1].ts, page[-1].id)
    assert len(everything) == 30
    assert [(e.ts, e.id) for e in everything] == sorted(((e.ts, e.id) for e in everything), reverse=True)
    assert [e.id for e in seen] == [e.id for e in everything]
