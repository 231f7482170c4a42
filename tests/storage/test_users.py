"""storage.users: people and bots."""

import pytest

from storage import users
from storage.records import User


async def test_create_then_get(db):
    async with db.transaction() as conn:
        alice = await users.create(conn, name="alice", display="Alice A.", password_hash="argon")
    assert alice == User(id=alice.id, name="alice", display="Alice A.", bot=False, owner_id=None)
    async with db.read() as conn:
        assert await users.get(conn, alice.id) == alice
        assert await users.get(conn, "u_missing") is None


async def test_ids_are_opaque_and_distinct(make_user):
    a, b = await make_user(), await make_user()
    assert isinstance(a.id, str) and a.id != b.id


async def test_by_name_returns_user_and_password_hash(db):
    async with db.transaction() as conn:
        alice = await users.create(conn, name="alice", display="Alice", password_hash="argon")
    async with db.read() as conn:
        assert await users.by_name(conn, "alice") == (alice, "argon")
        assert await users.by_name(conn, "nobody") is None


async def test_name_taken(db, make_user):
    await make_user("alice")
    with pytest.raises(users.NameTaken):
        async with db.transaction() as conn:
            await users.create(conn, name="alice", display="Other", password_hash="x")
    async with db.read() as conn:
        found, _ = await users.by_name(conn, "alice")
    assert found.display == "Alice"


async def test_name_taken_inside_a_transaction_leaves_it_usable(db, make_user):
    await make_user("alice")
    async with db.transaction() as conn:
        with pytest.raises(users.NameTaken):
            await users.create(conn, name="alice", display="Other", password_hash="x")
        bob = await users.create(conn, name="bob", display="Bob", password_hash="x")
    async with db.read() as conn:
        assert await users.get(conn, bob.id) == bob


async def test_get_many(db, make_user):
    alice, bob, _carol = await make_user("alice"), await make_user("bob"), await make_user("carol")
    async with db.read() as conn:
        assert await users.get_many(conn, [alice.id, bob.id, "u_missing"]) == {alice.id: alice, bob.id: bob}
        assert await users.get_many(conn, {alice.id}) == {alice.id: alice}
        assert await users.get_many(conn, []) == {}


async def test_bots_of_lists_only_the_owners_bots_in_creation_order(db, make_user):
    alice, bob = await make_user("alice"), await make_user("bob")
    first = await make_user("alice-bot1", bot=True, owner_id=alice.id)
    second = await make_user("alice-bot2", bot=True, owner_id=alice.id)
    await make_user("bob-bot", bot=True, owner_id=bob.id)
    assert first.bot and first.owner_id == alice.id
    async with db.read() as conn:
        assert await users.bots_of(conn, alice.id) == [first, second]
        assert await users.by_name(conn, "alice-bot1") == (first, None)
        assert await users.bots_of(conn, first.id) == []


async def test_set_password_hash(db, make_user):
    alice = await make_user("alice")
    async with db.transaction() as conn:
        await users.set_password_hash(conn, alice.id, "rehashed")
    async with db.read() as conn:
        assert await users.by_name(conn, "alice") == (alice, "rehashed")


async def test_delete_user_removes_them_and_their_bots(db, make_user):
    alice, bob = await make_user("alice"), await make_user("bob")
    bot = await make_user("alice-bot", bot=True, owner_id=alice.id)
    async with db.transaction() as conn:
        assert await users.delete_user(conn, alice.id) is True
        assert await users.delete_user(conn, alice.id) is False
    async with db.read() as conn:
        assert await users.get(conn, alice.id) is None
        assert await users.get(conn, bot.id) is None
        assert await users.get(conn, bob.id) == bob
    # The name is free again.
    assert (await make_user("alice")).id != alice.id
