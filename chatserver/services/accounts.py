"""Use cases of accounts: sign-up, tokens, bots, the caller's own settings and blocks.

Passwords are hashed with Argon2id (argon2-cffi) in a worker thread so a
login never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from client_proto.errors import ErrorCode
from storage import blocks as block_store
from storage import tokens as token_store
from storage import users as user_store
from storage.db import Database
from storage.records import User
from storage.tokens import hash_token

from ..bus.base import Bus
from ..bus.events import Revoked, UserChanged
from ..errors import ServiceError, conflict, forbidden, invalid, not_found
from .token_cache import TokenCache

NAME_RULE = re.compile(r"[a-z0-9_.\-]{3,32}")
MAX_DISPLAY = 64
MAX_PASSWORD = 1024


def check_name(name: str) -> None:
    """Names are 3-32 characters of a-z 0-9 _ . - (docs/protocol.md §2); never silently changed."""
    if not isinstance(name, str) or not NAME_RULE.fullmatch(name):
        raise invalid("name: 3 to 32 characters of a-z, 0-9, _, . and - (lowercase only)")


def check_display(display: str | None) -> None:
    if display is not None and not 1 <= len(display.strip()) <= MAX_DISPLAY:
        raise invalid(f"display: 1 to {MAX_DISPLAY} characters")


class AccountService:
    def __init__(self, db: Database, bus: Bus, tokens: TokenCache):
        """`tokens`: the node's token cache, which learns of revocations from the bus."""
        self._db = db
        self._bus = bus
        self._tokens = tokens
        self._hasher = PasswordHasher()

    async def register(self, name: str, password: str, display: str | None) -> User:
        check_name(name)
        check_display(display)
        if not 1 <= len(password) <= MAX_PASSWORD:
            raise invalid(f"password: 1 to {MAX_PASSWORD} characters")
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        try:
            async with self._db.transaction() as db:
                return await user_store.create(
                    db, name=name, display=(display or name).strip(), password_hash=password_hash
                )
        except user_store.NameTaken:
            raise conflict(f"the name {name!r} is taken") from None

    async def login(self, name: str, password: str) -> tuple[str, User]:
        """A new token for a correct name and password; `unauthorized` otherwise (same message either way)."""
        async with self._db.read() as db:
            found = await user_store.by_name(db, name)
        if found is None or found[1] is None:
            raise ServiceError(ErrorCode.UNAUTHORIZED, "wrong name or password")
        user, password_hash = found
        try:
            await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            raise ServiceError(ErrorCode.UNAUTHORIZED, "wrong name or password") from None
        async with self._db.transaction() as db:
            if self._hasher.check_needs_rehash(password_hash):
                new_hash = await asyncio.to_thread(self._hasher.hash, password)
                await user_store.set_password_hash(db, user.id, new_hash)
            token = await token_store.issue(db, user.id)
        return token, user

    async def authenticate(self, token: str | None, *, remember: bool = True) -> User | None:
        """The token's user, or None; from the token cache while it may answer (see `TokenCache`).

        `remember=False` (a socket's hello) reads the cache but does not fill it: a hello comes
        once per connection, and filling it made every idle connection of a distinct user cost
        ~0.3-0.9 KiB more (`bench_fanout.py --scenario idle-users`: 7.5-7.8 KiB a connection
        without, 8.0-8.4 with), for a lookup nobody repeats; a page's HTTP requests fill it."""
        if not token or len(token) > 512:
            return None
        token_hash = hash_token(token)
        user = self._tokens.get(token_hash)
        if user is not None:
            return user
        ticket = self._tokens.ticket()
        async with self._db.inline_read() as db:
            user = await token_store.user_for_hash(db, token_hash)
        if user is not None and remember:
            self._tokens.put(token_hash, user, ticket)
        return user

    async def revoke(self, token: str) -> None:
        """Revoke one token; its live connections on every node close with 4001."""
        async with self._db.transaction() as db:
            await token_store.revoke(db, token)
        self._bus.publish_control(Revoked(token_hash=hash_token(token)))

    async def create_bot(self, owner: User, name: str, display: str | None) -> tuple[User, str]:
        if owner.bot:
            raise forbidden("bots cannot create bots")
        check_name(name)
        check_display(display)
        try:
            async with self._db.transaction() as db:
                bot = await user_store.create(
                    db, name=name, display=(display or name).strip(), password_hash=None, bot=True,
                    owner_id=owner.id,
                )
                token = await token_store.issue(db, bot.id)
        except user_store.NameTaken:
            raise conflict(f"the name {name!r} is taken") from None
        return bot, token

    async def bots(self, owner: User) -> list[User]:
        async with self._db.read() as db:
            return await user_store.bots_of(db, owner.id)

    async def delete_bot(self, owner: User, bot_id: str) -> None:
        """Retire a bot: its tokens stop working and its connections close with 4001.

        Its past messages keep their author (the bot is deactivated, not erased).
        """
        async with self._db.transaction() as db:
            bot = await user_store.get(db, bot_id)
            if bot is None or not bot.bot:
                raise not_found("bot")
            if bot.owner_id != owner.id:
                raise forbidden("only the bot's owner may delete it")
            await user_store.deactivate(db, bot_id)
        self._bus.publish_control(Revoked(user_id=bot_id))

    # ------------------------------------------------------------------ the caller's own account

    async def update_me(self, user: User, token: str | None, display: str | None,
                        password: tuple[str, str] | None) -> User:
        """Change the display name and/or the password (docs/protocol.md §12.13).

        A new password needs the old one (403 otherwise) and ends every other
        token of the user: their connections on every node close with 4001,
        while the token of this request keeps working.
        """
        check_display(display)
        new_hash = None
        if password is not None:
            old, new = password
            if not 1 <= len(new) <= MAX_PASSWORD:
                raise invalid(f"password.new: 1 to {MAX_PASSWORD} characters")
            async with self._db.read() as db:
                current = await user_store.password_hash_of(db, user.id)
            try:
                if current is None:
                    raise VerificationError("no password (a bot)")
                await asyncio.to_thread(self._hasher.verify, current, old)
            except (VerificationError, InvalidHashError):
                raise forbidden("password.old: wrong password") from None
            new_hash = await asyncio.to_thread(self._hasher.hash, new)
        revoked: list[str] = []
        async with self._db.transaction() as db:
            if display is not None:
                user = await user_store.set_display(db, user.id, display.strip())
            if new_hash is not None:
                await user_store.set_password_hash(db, user.id, new_hash)
                revoked = await token_store.revoke_others(db, user.id, hash_token(token) if token else None)
        for token_hash in revoked:
            self._bus.publish_control(Revoked(token_hash=token_hash))
        if display is not None and user is not None:
            self._bus.publish_control(UserChanged(user=user))
        return user

    async def block(self, user: User, other_id: str) -> None:
        if other_id == user.id:
            raise invalid("user_id: you cannot block yourself")
        async with self._db.transaction() as db:
            if await user_store.get(db, other_id) is None:
                raise not_found("user")
            await block_store.block(db, user.id, other_id)

    async def unblock(self, user: User, other_id: str) -> None:
        async with self._db.transaction() as db:
            if await user_store.get(db, other_id) is None:
                raise not_found("user")
            await block_store.unblock(db, user.id, other_id)

    async def blocks(self, user: User) -> list[User]:
        async with self._db.read() as db:
            return await block_store.blocked_by(db, user.id)
