"""Users and bots."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import now_ms
from .ids import new_id
from .models import Membership, Token, User as UserRow
from .records import User


class NameTaken(Exception):
    """`create` was given a name that another user has."""


COLUMNS = (UserRow.id, UserRow.name, UserRow.display, UserRow.bot, UserRow.owner_id, UserRow.avatar)
# The same, labelled `u_*`, for a query that selects a user beside another table's `id`, `name`...
PREFIXED_COLUMNS = tuple(column.label(f"u_{column.key}") for column in COLUMNS)


def from_row(row) -> User:
    """The user in a row selected with `COLUMNS`."""
    return User(id=row.id, name=row.name, display=row.display, bot=bool(row.bot), owner_id=row.owner_id,
                avatar=row.avatar)


def from_prefixed_row(row) -> User | None:
    """The user in a row selected with `PREFIXED_COLUMNS` (None after an outer join found none)."""
    if row.u_id is None:
        return None
    return User(id=row.u_id, name=row.u_name, display=row.u_display, bot=bool(row.u_bot), owner_id=row.u_owner_id,
                avatar=row.u_avatar)


async def create(
    conn: AsyncConnection,
    *,
    name: str,
    display: str,
    password_hash: str | None,
    bot: bool = False,
    owner_id: str | None = None,
) -> User:
    """Insert a user; raises `NameTaken` if the name is in use."""
    if (await conn.execute(select(UserRow.id).where(UserRow.name == name))).first():
        raise NameTaken(name)
    user = User(id=new_id("u"), name=name, display=display, bot=bot, owner_id=owner_id)
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(UserRow).values(
                    id=user.id,
                    name=name,
                    display=display,
                    password_hash=password_hash,
                    bot=bot,
                    owner_id=owner_id,
                    created=now_ms(),
                )
            )
    except IntegrityError as exc:
        raise NameTaken(name) from exc
    return user


async def get(conn: AsyncConnection, user_id: str) -> User | None:
    row = (await conn.execute(select(*COLUMNS).where(UserRow.id == user_id))).first()
    return from_row(row) if row else None


async def get_many(conn: AsyncConnection, user_ids: list[str] | set[str]) -> dict[str, User]:
    if not user_ids:
        return {}
    rows = await conn.execute(select(*COLUMNS).where(UserRow.id.in_(list(user_ids))))
    return {row.id: from_row(row) for row in rows}


async def by_name(conn: AsyncConnection, name: str) -> tuple[User, str | None] | None:
    """The user with this name and their password hash (None for bots)."""
    row = (
        await conn.execute(select(*COLUMNS, UserRow.password_hash).where(UserRow.name == name))
    ).first()
    return (from_row(row), row.password_hash) if row else None


async def set_password_hash(conn: AsyncConnection, user_id: str, password_hash: str) -> None:
    """Store a re-hashed password (Argon2 parameters changed)."""
    await conn.execute(update(UserRow).where(UserRow.id == user_id).values(password_hash=password_hash))


async def bots_of(conn: AsyncConnection, owner_id: str) -> list[User]:
    """The owner's bots that have not been retired, oldest first."""
    rows = await conn.execute(
        select(*COLUMNS)
        .where(UserRow.owner_id == owner_id, UserRow.bot.is_(True), UserRow.deleted.is_(False))
        .order_by(UserRow.created)
    )
    return [from_row(row) for row in rows]


async def delete_user(conn: AsyncConnection, user_id: str) -> bool:
    result = await conn.execute(delete(UserRow).where(UserRow.id == user_id))
    return result.rowcount > 0


async def deactivate(conn: AsyncConnection, user_id: str) -> None:
    """Retire a user (a deleted bot): no tokens, no memberships, the row kept for history."""
    await conn.execute(delete(Token).where(Token.user_id == user_id))
    await conn.execute(delete(Membership).where(Membership.user_id == user_id))
    await conn.execute(update(UserRow).where(UserRow.id == user_id).values(deleted=True))


async def created_of(conn: AsyncConnection, user_id: str) -> tuple[User, int] | None:
    """The user and when they signed up (ms)."""
    row = (await conn.execute(select(*COLUMNS, UserRow.created).where(UserRow.id == user_id))).first()
    return (from_row(row), row.created) if row else None


async def password_hash_of(conn: AsyncConnection, user_id: str) -> str | None:
    return (await conn.execute(select(UserRow.password_hash).where(UserRow.id == user_id))).scalar()


async def set_display(conn: AsyncConnection, user_id: str, display: str) -> User | None:
    await conn.execute(update(UserRow).where(UserRow.id == user_id).values(display=display))
    return await get(conn, user_id)
