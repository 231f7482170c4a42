"""Bearer tokens: random secrets handed out once, stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from . import users
from .db import now_ms
from .models import Token, User as UserRow
from .prepared import prepared
from .records import User


def hash_token(raw: str) -> str:
    """The stored form of a token; also the key the server files live sessions under."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


async def issue(conn: AsyncConnection, user_id: str) -> str:
    """Create a token for the user and return its secret (the only time it is seen)."""
    raw = secrets.token_urlsafe(32)
    await conn.execute(insert(Token).values(token_hash=hash_token(raw), user_id=user_id, created=now_ms()))
    return raw


async def user_for(conn: AsyncConnection, raw: str) -> User | None:
    """The user a token belongs to, or None for an unknown or revoked token."""
    return await user_for_hash(conn, hash_token(raw))


_USER_FOR_HASH = prepared(select(*users.COLUMNS).join(Token, Token.user_id == UserRow.id).where(
    Token.token_hash == bindparam("token_hash")))


async def user_for_hash(conn: AsyncConnection, token_hash: str) -> User | None:
    """The user of the token with this hash (`hash_token`), or None."""
    row = (await conn.execute(_USER_FOR_HASH, {"token_hash": token_hash})).first()
    return users.from_row(row) if row is not None else None


async def revoke(conn: AsyncConnection, raw: str) -> bool:
    result = await conn.execute(delete(Token).where(Token.token_hash == hash_token(raw)))
    return result.rowcount > 0


async def revoke_all(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(delete(Token).where(Token.user_id == user_id))


async def existing(conn: AsyncConnection, token_hashes: set[str]) -> set[str]:
    """Which of these token hashes still work (the rest were revoked)."""
    if not token_hashes:
        return set()
    rows = await conn.execute(select(Token.token_hash).where(Token.token_hash.in_(list(token_hashes))))
    return {row.token_hash for row in rows}


async def revoke_others(conn: AsyncConnection, user_id: str, keep_hash: str | None) -> list[str]:
    """Revoke every token of the user but the one hashed `keep_hash`; returns the revoked hashes."""
    query = select(Token.token_hash).where(Token.user_id == user_id)
    if keep_hash is not None:
        query = query.where(Token.token_hash != keep_hash)
    hashes = [row.token_hash for row in await conn.execute(query)]
    if hashes:
        await conn.execute(delete(Token).where(Token.token_hash.in_(hashes)))
    return hashes
