"""storage.tokens: bearer tokens, stored only as their hash."""

import hashlib

from sqlalchemy import text

from storage import tokens, users


async def _issue(db, user):
    async with db.transaction() as conn:
        return await tokens.issue(conn, user.id)


async def _user_for(db, raw):
    async with db.read() as conn:
        return await tokens.user_for(conn, raw)


async def test_issue_and_look_up(db, make_user):
    alice, bob = await make_user("alice"), await make_user("bob")
    raw = await _issue(db, alice)
    assert isinstance(raw, str) and len(raw) >= 32
    assert await _user_for(db, raw) == alice
    assert await _user_for(db, await _issue(db, bob)) == bob
    assert await _user_for(db, "not-a-token") is None
    assert await _user_for(db, "") is None


async def test_each_issue_is_a_new_token(db, make_user):
    alice = await make_user("alice")
    first, second = await _issue(db, alice), await _issue(db, alice)
    assert first != second
    assert await _user_for(db, first) == await _user_for(db, second) == alice


async def test_only_the_hash_is_stored(db, make_user):
    alice = await make_user("alice")
    raw = await _issue(db, alice)
    async with db.read() as conn:
        rows = (await conn.execute(text("SELECT * FROM tokens"))).all()
    assert len(rows) == 1
    assert rows[0].token_hash == hashlib.sha256(raw.encode()).hexdigest() == tokens.hash_token(raw)
    assert not any(raw in str(value) for value in rows[0])


async def test_revoke_one(db, make_user):
    alice = await make_user("alice")
    kept, revoked = await _issue(db, alice), await _issue(db, alice)
    async with db.transaction() as conn:
        assert await tokens.revoke(conn, revoked) is True
        assert await tokens.revoke(conn, revoked) is False
        assert await tokens.revoke(conn, "unknown") is False
    assert await _user_for(db, revoked) is None
    assert await _user_for(db, kept) == alice


async def test_revoke_all_spares_other_users(db, make_user):
    alice, bob = await make_user("alice"), await make_user("bob")
    alice_tokens = [await _issue(db, alice) for _ in range(3)]
    bobs = await _issue(db, bob)
    async with db.transaction() as conn:
        await tokens.revoke_all(conn, alice.id)
    for raw in alice_tokens:
        assert await _user_for(db, raw) is None
    assert await _user_for(db, bobs) == bob


async def test_deleting_a_user_ends_their_tokens(db, make_user):
    alice = await make_user("alice")
    bot = await make_user("alice-bot", bot=True, owner_id=alice.id)
    raws = [await _issue(db, alice), await _issue(db, bot)]
    async with db.transaction() as conn:
        await users.delete_user(conn, alice.id)
    for raw in raws:
        assert await _user_for(db, raw) is None
