"""Running a group (docs/protocol.md §12.14): mutes, bans, join requests, announcements, group cards.

Each change is checked against the actor's role, stored with the system
message that announces it in one transaction, and published after the commit
(`Announcer`). What binds sends (mutes, mute-all, roles) reaches every node's
hub through those messages; see `chatserver.policy`.
"""

from __future__ import annotations

import msgspec

from storage import join_requests as request_store
from storage import moderation
from storage import messages as message_store
from storage import notices as notice_store
from storage import pins as pin_store
from storage import rooms as room_store
from storage import users as user_store
from storage.db import Database, now_ms
from storage.records import Ban, JoinRequest, Member, Message, Notice, Stored, User

from ..announcements import (
    Announcer, MemberKicked, MemberMuted, MemberUnmuted, NoticeRef, Person, RoomAnnounced, RoomUpdated,
)
from ..errors import conflict, forbidden, invalid, not_found
from .roles import ADMIN_ROLES, ROLES, outranks, require_role
from .messages import MessageService
from .rooms import RoomService

MUTE_SECONDS = (60, 2_592_000)
ANNOUNCEMENT_CHARS = 2000
NICKNAME_CHARS = 32
REQUEST_STATUSES = ("pending", "approved", "declined")
MAX_PINS = 50

# A pinned message: the message as `history` shows it, who pinned it and when (None: not recorded).
Pin = tuple[Message, User | None, int | None]


def duration_text(seconds: int) -> str:
    """"10 minutes", "2 hours", "3 days": the largest whole unit, for the system message text."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def notice_ref(notice: Notice) -> NoticeRef:
    return NoticeRef(id=notice.id, text=notice.text, by=Person.of(notice.by), ts=notice.ts)


class ModerationService:
    def __init__(self, db: Database, announcer: Announcer, rooms: RoomService, messages: MessageService):
        self._db = db
        self._announcer = announcer
        self._rooms = rooms
        self._messages = messages

    # ------------------------------------------------------------------ mutes

    async def mute(self, actor: User, room_id: str, user_id: str, seconds: int) -> Member:
        """Owner/admin mutes a member for `seconds`; `member.muted` tells the room (and every node's hub)."""
        if not MUTE_SECONDS[0] <= seconds <= MUTE_SECONDS[1]:
            raise invalid(f"seconds: must be {MUTE_SECONDS[0]} to {MUTE_SECONDS[1]}")
        async with self._db.transaction() as db:
            if not await room_store.lock(db, room_id):
                raise not_found("room")
            acting = await require_role(db, room_id, actor, ADMIN_ROLES)
            subject = await self._member(db, room_id, user_id)
            if not outranks(acting.role, subject.role):
                raise forbidden("an admin cannot mute the owner or an admin; nobody mutes the owner")
            until = now_ms() + seconds * 1000
            await moderation.mute(db, room_id, user_id, until, actor.id)
            message = await self._announcer.store(
                db, room_id, MemberMuted(user=Person.of(subject.user), by=Person.of(actor), until=until),
                f"{actor.display} muted {subject.user.display} for {duration_text(seconds)}",
            )
            member = await room_store.get_member(db, room_id, user_id)
        self._announcer.publish(message)
        return member

    async def unmute(self, actor: User, room_id: str, user_id: str) -> None:
        """Lift a mute (also of someone who left meanwhile); nothing happens when none is in force."""
        async with self._db.transaction() as db:
            user, subject = await self._target(db, room_id, actor, user_id, "unmute")
            message = None
            if await moderation.unmute(db, room_id, user_id):
                message = await self._announcer.store(
                    db, room_id, MemberUnmuted(user=Person.of(user), by=Person.of(actor)),
                    f"{actor.display} unmuted {user.display}",
                )
        self._announcer.publish(message)

    # ------------------------------------------------------------------ bans

    async def ban(self, actor: User, room_id: str, user_id: str, reason: str) -> Ban:
        """Owner/admin bans a user (not the owner; an admin not an admin); a member is removed too."""
        async with self._db.transaction() as db:
            user, subject = await self._target(db, room_id, actor, user_id, "ban")
            message = None
            if await moderation.ban(db, room_id, user_id, actor.id, reason):
                for pending in await request_store.list_for_room(db, room_id, "pending"):
                    if pending.user.id == user_id:
                        await request_store.decide(db, pending.id, "declined")
                if subject is not None and await room_store.remove_member(db, room_id, user_id):
                    message = await self._announcer.store(
                        db, room_id, MemberKicked(user=Person.of(user), by=Person.of(actor)),
                        f"{user.display} was removed and banned by {actor.display}",
                    )
            ban = await moderation.get_ban(db, room_id, user_id)
        # The banned member's connections see the message, then nothing more of the room.
        self._announcer.publish(message)
        return ban

    async def unban(self, actor: User, room_id: str, user_id: str) -> None:
        async with self._db.transaction() as db:
            await require_role(db, room_id, actor, ADMIN_ROLES)
            if not await moderation.unban(db, room_id, user_id):
                raise not_found("ban")

    async def bans(self, actor: User, room_id: str) -> list[Ban]:
        async with self._db.read() as db:
            await require_role(db, room_id, actor, ADMIN_ROLES)
            return await moderation.bans(db, room_id)

    # ------------------------------------------------------------------ join requests

    async def requests(self, actor: User, room_id: str, status: str | None) -> list[JoinRequest]:
        if status is not None and status not in REQUEST_STATUSES:
            raise invalid(f"status: must be one of {', '.join(REQUEST_STATUSES)}")
        async with self._db.read() as db:
            await require_role(db, room_id, actor, ADMIN_ROLES)
            return await request_store.list_for_room(db, room_id, status)

    async def decide(self, actor: User, request_id: str, approve: bool) -> JoinRequest:
        """Owner/admin approves (the requester joins: `member.joined`) or declines; deciding twice is 409."""
        async with self._db.transaction() as db:
            found = await request_store.get(db, request_id)
            if found is None:
                raise not_found("request")
            if not await room_store.lock(db, found.room_id):
                raise not_found("request")
            await require_role(db, found.room_id, actor, ADMIN_ROLES)
            found = await request_store.get(db, request_id)  # again, under the room lock deciders queue on
            if found.status != "pending":
                raise conflict(f"this request was {found.status} already")
            message = None
            if approve:
                message = await self._rooms.admit(db, found.room_id, found.user, actor)
            await request_store.decide(db, request_id, "approved" if approve else "declined")
            decided = await request_store.get(db, request_id)
        self._announcer.publish(message)
        return decided

    # ------------------------------------------------------------------ announcements

    async def announce(self, actor: User, room_id: str, text: str) -> Notice:
        if not 1 <= len(text.strip()) <= ANNOUNCEMENT_CHARS or len(text) > ANNOUNCEMENT_CHARS:
            raise invalid(f"text: 1 to {ANNOUNCEMENT_CHARS} characters")
        async with self._db.transaction() as db:
            await require_role(db, room_id, actor, ADMIN_ROLES)
            notice = await notice_store.add(db, room_id, text, actor)
            message = await self._announcer.store(
                db, room_id, RoomAnnounced(announcement=notice_ref(notice)),
                f"{actor.display} posted an announcement: {text[:100]}",
            )
        self._announcer.publish(message)
        return notice

    async def announcements(self, user: User, room_id: str) -> list[Notice]:
        async with self._db.read() as db:
            await require_role(db, room_id, user, ROLES)
            return await notice_store.list_for_room(db, room_id)

    async def withdraw(self, actor: User, room_id: str, notice_id: str) -> None:
        """Delete an announcement; `room.updated` gives the room's `announcement` as it is now."""
        async with self._db.transaction() as db:
            await require_role(db, room_id, actor, ADMIN_ROLES)
            if not await notice_store.remove(db, room_id, notice_id):
                raise not_found("announcement")
            newest = (await notice_store.newest_of(db, [room_id])).get(room_id)
            changes = {"announcement": msgspec.to_builtins(notice_ref(newest)) if newest is not None else None}
            message = await self._announcer.store(
                db, room_id, RoomUpdated(by=Person.of(actor), changes=changes),
                f"{actor.display} withdrew an announcement",
            )
        self._announcer.publish(message)

    # ------------------------------------------------------------------ pins

    async def pin(self, actor: User, room_id: str, seq: int) -> Pin:
        """Owner/admin pins a text message: a `pinned` timeline update (none when pinned already).

        The limit is checked before the commit: two admins pinning the 50th message at the
        same moment may both succeed.
        """
        async with self._db.read() as db:
            await require_role(db, room_id, actor, ADMIN_ROLES)
            message = await self._pinnable(db, room_id, seq)
            if not message.pinned and await pin_store.count(db, room_id) >= MAX_PINS:
                raise conflict(f"at most {MAX_PINS} messages can be pinned; unpin one first")
        result = await self._messages.set_pinned(actor, room_id, seq, True)
        if isinstance(result, Stored):
            async with self._db.transaction() as db:
                await pin_store.record(db, room_id, seq, actor.id, result.message.ts)
        return next(pin for pin in await self.pins(actor, room_id) if pin[0].seq == seq)

    async def unpin(self, actor: User, room_id: str, seq: int) -> None:
        """Owner/admin unpins: an `unpinned` timeline update (none when it was not pinned)."""
        async with self._db.read() as db:
            await require_role(db, room_id, actor, ADMIN_ROLES)
            await self._pinnable(db, room_id, seq)
        if isinstance(await self._messages.set_pinned(actor, room_id, seq, False), Stored):
            async with self._db.transaction() as db:
                await pin_store.forget(db, room_id, seq)

    async def pins(self, user: User, room_id: str) -> list[Pin]:
        """Pinned messages, newest pin first (members)."""
        async with self._db.read() as db:
            await require_role(db, room_id, user, ROLES)
            found = []
            for seq, by, ts in await pin_store.pinned(db, room_id):
                message = await message_store.get(db, room_id, seq, viewer_id=user.id)
                if message is not None:
                    found.append((message, by, ts))
            return found

    @staticmethod
    async def _pinnable(db, room_id: str, seq: int) -> Message:
        message = await message_store.get(db, room_id, seq)
        if message is None:
            raise not_found("message")
        if message.kind != "text":
            raise invalid("seq: only a text message can be pinned")
        return message

    # ------------------------------------------------------------------ group cards

    async def set_nickname(self, actor: User, room_id: str, user_id: str, nickname: str) -> Member:
        """Yourself, or owner/admin for anyone; empty clears it."""
        nickname = nickname.strip()
        if len(nickname) > NICKNAME_CHARS:
            raise invalid(f"nickname: at most {NICKNAME_CHARS} characters")
        async with self._db.transaction() as db:
            if not await room_store.lock(db, room_id):
                raise not_found("room")
            await require_role(db, room_id, actor, ROLES if actor.id == user_id else ADMIN_ROLES)
            subject = await self._member(db, room_id, user_id)
            member = await room_store.set_nickname(db, room_id, user_id, nickname or None)
            changes = {"nickname": {"user": msgspec.to_builtins(Person.of(subject.user)), "nickname": nickname}}
            text = (f"{subject.user.display}'s group card is now {nickname}" if nickname
                    else f"{subject.user.display}'s group card was cleared")
            message = await self._announcer.store(db, room_id, RoomUpdated(by=Person.of(actor), changes=changes), text)
        self._announcer.publish(message)
        return member

    @staticmethod
    async def _target(db, room_id: str, actor: User, user_id: str, verb: str) -> tuple[User, Member | None]:
        """Lock the room and check the actor may `verb` the user (a member or not): the user and
        their membership, if any."""
        if not await room_store.lock(db, room_id):
            raise not_found("room")
        acting = await require_role(db, room_id, actor, ADMIN_ROLES)
        subject = await room_store.get_member(db, room_id, user_id)
        user = subject.user if subject is not None else await user_store.get(db, user_id)
        if user is None:
            raise not_found("user")
        if not outranks(acting.role, subject.role if subject is not None else None):
            raise forbidden(f"nobody may {verb} the owner, and an admin may not {verb} an admin")
        return user, subject

    @staticmethod
    async def _member(db, room_id: str, user_id: str) -> Member:
        member = await room_store.get_member(db, room_id, user_id)
        if member is None:
            if await user_store.get(db, user_id) is None:
                raise not_found("user")
            raise not_found("member")
        return member
