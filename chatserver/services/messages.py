"""Use cases of messages: send, history, read markers, recall, typing, system messages.

Every call authorizes first (member of the room, or `not_found` for an
unknown room), then stores, then publishes on the bus.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import NamedTuple

from client_proto.errors import ErrorCode
from client_proto.frames import MAX_FILES
from storage import messages as message_store
from storage import moderation
from storage import rooms as room_store
from storage import timeline
from storage.db import Database, now_ms
from storage.records import Member, Message, NewMessage, Stored, Unchanged, User

from ..bus.base import Bus
from ..bus.events import ReadMoved, TypingStarted
from ..config import Settings
from ..errors import ServiceError, forbidden, invalid, not_found
from ..policy import RoomPolicy
from .roles import ADMIN_ROLES
from .writer import MessageWriter



class HistoryPage(NamedTuple):
    messages: list[Message]
    more: bool
    last_seq: int  # the room's newest seq when read: every update up to it is folded in, none after


class MessageService:
    def __init__(
        self, db: Database, bus: Bus, writer: MessageWriter, settings: Settings,
        policies: Callable[[str], RoomPolicy | None] = lambda room_id: None,
    ):
        """`policies(room_id)`: the hub's live `RoomPolicy` of a room this node serves, else None."""
        self._db = db
        self._bus = bus
        self._writer = writer
        self._settings = settings
        self._policies = policies

    async def membership(self, user: User, room_id: str) -> Member:
        """The caller's membership; `not_found` for an unknown room, `forbidden` for a non-member."""
        async with self._db.read() as db:
            member = await room_store.get_member(db, room_id, user.id)
            if member is None:
                if await message_store.last_seq(db, room_id) is None:
                    raise not_found("room")
                raise forbidden("you are not a member of this room")
        return member

    async def submit(
        self,
        user: User,
        room_id: str,
        text: str,
        cid: str,
        *,
        reply_to: int | None = None,
        mentions: list[str] | str | None = None,
        files: list[str] | None = None,
        known_member: bool = False,
        on_stored: Callable[[Stored], None],
        on_failed: Callable[[BaseException], None],
    ) -> None:
        """Check a chat message and queue it for the next group commit, without waiting for it.

        The one path of every send (WebSocket and HTTP). Exactly one callback runs
        after the commit; `on_stored` runs synchronously before the message is
        published, so an ack written there reaches the sender before the message.
        `known_member` (the caller's connection already hears the room) skips the
        storage read; the commit checks membership again in any case. Raises
        `ServiceError` for what is refused before queueing. `files` (ids of the sender's own
        uploads, docs/protocol.md §12.10) are checked by the commit that stores the message.
        """
        role = "member"
        if not known_member or mentions == "all":  # the role matters, or membership is not known yet
            role = (await self.membership(user, room_id)).role
        await self.check_may_post(user, room_id)
        new = self._checked(user, room_id, text, cid, role, reply_to, mentions, files)
        self._writer.submit(new, on_stored, on_failed)

    async def check_may_post(self, user: User, room_id: str) -> None:
        """Raise `forbidden` (with `retry_after` for a mute) when the user may not post in the room now.

        For `send`, and for `edit` and `react` (docs/protocol.md §12.14). A room this node
        serves (every room a local connection hears) is decided by the hub's policy, with
        no storage read; any other (an HTTP sender's room no local connection hears) is read.
        """
        policy = self._policies(room_id)
        if policy is None:
            async with self._db.read() as db:
                state = await moderation.policy_state(db, room_id)
            if state is None:
                raise not_found("room")
            policy = RoomPolicy(state)
        refusal = policy.refusal(user.id, now_ms())
        if refusal is not None:
            raise refusal

    async def send(
        self,
        user: User,
        room_id: str,
        text: str,
        cid: str,
        *,
        reply_to: int | None = None,
        mentions: list[str] | str | None = None,
        files: list[str] | None = None,
    ) -> Stored:
        """`submit`, then wait for the commit: stored once per (room, sender, cid), and published."""
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        await self.submit(
            user, room_id, text, cid, reply_to=reply_to, mentions=mentions, files=files,
            on_stored=lambda stored: future.done() or future.set_result(stored),
            on_failed=lambda exc: future.done() or future.set_exception(exc),
        )
        return await future

    async def _commit(self, entry: NewMessage) -> Stored | Unchanged:
        """Queue a timeline update for the group commit and wait for it (docs/protocol.md §6.4)."""
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._writer.submit(
            entry,
            lambda stored: future.done() or future.set_result(stored),
            lambda exc: future.done() or future.set_exception(exc),
        )
        return await future

    def _checked(
        self, user: User, room_id: str, text: str, cid: str, role: str,
        reply_to: int | None, mentions: list[str] | str | None, files: list[str] | None = None,
    ) -> NewMessage:
        """A chat message checked against the limits and the sender's role; no I/O."""
        self._check_text(text, files_too=bool(files))
        if files:
            files = list(dict.fromkeys(files))
            if len(files) > MAX_FILES:
                raise invalid(f"files: at most {MAX_FILES}")
        if not cid or len(cid) > 64:
            raise invalid("cid: 1 to 64 characters required")
        if mentions == "all" and role not in ADMIN_ROLES:
            raise forbidden('only the owner or an admin may mention "all"')
        if isinstance(mentions, list):
            mentions = list(dict.fromkeys(mentions))
        return NewMessage(room_id=room_id, sender=user, text=text, cid=cid, reply_to=reply_to, mentions=mentions,
                          files=tuple(files) if files else None)

    def _check_text(self, text: str, *, files_too: bool = False) -> None:
        """`max_text`, and not blank (unless the message carries files)."""
        if len(text) > self._settings.max_text:
            raise ServiceError(
                ErrorCode.TOO_LARGE, f"text is {len(text)} characters; the limit is {self._settings.max_text}"
            )
        if not text.strip() and not files_too:
            raise invalid("text: must not be empty (unless the message carries files)")

    async def history(
        self,
        user: User,
        room_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
        known_member: bool = False,
    ) -> HistoryPage:
        """A page as the caller sees it, with the room's last seq it is folded up to.

        One snapshot: the page shows the effect of exactly the updates up to `last_seq`, so a
        client applies just those above it that it gets live meanwhile (docs/protocol.md §5.2).
        """
        if not 1 <= limit <= 100:
            raise invalid("limit: must be 1 to 100")
        if not known_member:
            await self.membership(user, room_id)
        async with self._db.snapshot() as db:
            last = await message_store.last_seq(db, room_id) or 0
            found, more = await message_store.history(
                db, room_id, before=before, after=after, limit=limit, viewer_id=user.id
            )
        return HistoryPage(found, more, last)

    async def get(self, user: User, room_id: str, seq: int) -> Message:
        """One message as `history` shows it to the caller (a member)."""
        await self.membership(user, room_id)
        async with self._db.read() as db:
            message = await message_store.get(db, room_id, seq, viewer_id=user.id)
        if message is None:
            raise not_found("message")
        return message

    async def edit(self, user: User, room_id: str, seq: int, text: str) -> Message:
        """Change the text of one's own message within the edit window; returns the update entry.

        The rules that hold whatever happens meanwhile (not recalled, a text
        message) are checked again by the group commit (docs/protocol.md §6.4).
        """
        await self.membership(user, room_id)
        await self.check_may_post(user, room_id)  # a muted member may not edit (docs/protocol.md §12.14)
        self._check_text(text)
        async with self._db.read() as db:
            message = await message_store.get(db, room_id, seq)
        if message is None:
            raise not_found("message")
        if message.kind != "text" or message.recalled:
            raise invalid("seq: only a text message that is not recalled can be edited")
        if message.sender is None or message.sender.id != user.id:
            raise forbidden("only the author may edit a message")
        if time.time() - message.ts / 1000 > self._settings.edit_window:
            raise forbidden(f"messages can be edited within {int(self._settings.edit_window)} s")
        return (await self._commit(timeline.edit_entry(room_id, user, seq, text))).message

    async def react(
        self, user: User, room_id: str, seq: int, emoji: str, on: bool = True, *, known_member: bool = False
    ) -> Stored | Unchanged:
        """Add or take back a reaction; the same way twice changes nothing (`Unchanged`).

        `known_member` (the caller's connection hears the room) skips the storage read, as for
        `send`: the group commit checks membership again in any case.
        """
        if not known_member:
            await self.membership(user, room_id)
        await self.check_may_post(user, room_id)  # nor react (docs/protocol.md §12.14)
        if not 1 <= len(emoji) <= 16 or "\x00" in emoji:
            raise invalid("emoji: 1 to 16 characters")
        return await self._commit(timeline.reaction_entry(room_id, user, seq, emoji, on))

    async def set_pinned(self, user: User, room_id: str, seq: int, pinned: bool) -> Stored | Unchanged:
        """The `pinned` / `unpinned` timeline update; who may pin is the caller's rule (docs/protocol.md §6.4)."""
        return await self._commit(timeline.pin_entry(room_id, user, seq, pinned))

    async def edits(self, user: User, room_id: str, seq: int) -> list[tuple[str, int]]:
        """Earlier versions (text, ts) of a message, oldest first (members)."""
        await self.membership(user, room_id)
        async with self._db.read() as db:
            if await message_store.get(db, room_id, seq) is None:
                raise not_found("message")
            return await message_store.edits(db, room_id, seq)

    async def read(self, user: User, room_id: str, seq: int, session: str = "") -> int:
        """Move the caller's read marker forward; their other connections are told."""
        await self.membership(user, room_id)
        async with self._db.transaction() as db:
            marker = await room_store.set_read(db, room_id, user.id, seq)
        if marker is None:
            raise not_found("room")
        self._bus.publish_control(ReadMoved(room_id=room_id, user_id=user.id, seq=marker, session=session))
        return marker

    async def recall(self, user: User, room_id: str, seq: int) -> None:
        """Recall a message: its author within the recall window, or an owner/admin any time.

        Stored as a `recalled` timeline update (resume delivers it); the live
        `recalled` event goes out too (docs/protocol.md §6.4).
        """
        member = await self.membership(user, room_id)
        async with self._db.read() as db:
            message = await message_store.get(db, room_id, seq)
        if message is None:
            raise not_found("message")
        if message.kind != "text":
            raise forbidden("system messages cannot be recalled")
        is_author = message.sender is not None and message.sender.id == user.id
        age = time.time() - message.ts / 1000
        if member.role not in ADMIN_ROLES:
            if not is_author:
                raise forbidden("only the author, an owner or an admin may recall a message")
            if age > self._settings.recall_window:
                raise forbidden(f"messages can be recalled within {int(self._settings.recall_window)} s")
        await self._commit(timeline.recall_entry(room_id, user, seq))

    def typing(self, user: User, room_id: str) -> None:
        self._bus.publish_room(room_id, TypingStarted(room_id=room_id, user=user))

