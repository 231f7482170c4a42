"""Use cases of rooms (groups): create, update, members and roles, join requests, dissolving.

A membership change and the system message announcing it are stored in one
transaction, then published: the message on the room's channel, and a
`MembershipChanged` control event so every node (re)subscribes that user's
connections at once.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from storage import join_requests as request_store
from storage import moderation
from storage import rooms as room_store
from storage import users as user_store
from storage.db import Database
from storage.records import JoinRequest, Member, Message, Room, User

from ..announcements import Announcer, MemberJoined, MemberKicked, MemberLeft, Person, RoomUpdated
from ..bus.base import Bus
from ..bus.events import MembershipChanged, Notified, RoomDeleted
from ..config import Settings
from ..errors import conflict, forbidden, invalid, not_found
from ..views import join_request_json
from .roles import ADMIN_ROLES, ROLES, outranks, require_role

if TYPE_CHECKING:
    from .files import FileService

JOIN_POLICIES = ("open", "invite", "approval")
SELF_SERVE = ("open", "approval")  # a non-member may see the group and ask to be in it


class RoomService:
    def __init__(
        self, db: Database, bus: Bus, announcer: Announcer, files: FileService | None = None,
        settings: Settings | None = None,
    ):
        self._db = db
        self._bus = bus
        self._announcer = announcer
        self._files = files  # room avatars
        self._max_members = settings.room_max_members if settings is not None else Settings.room_max_members

    async def create(self, owner: User, name: str, topic: str | None, join_policy: str) -> Room:
        _check_room_fields(name=name, topic=topic, join_policy=join_policy)
        async with self._db.transaction() as db:
            room = await room_store.create(
                db, name=name.strip(), topic=topic or "", join_policy=join_policy, owner_id=owner.id
            )
        # Creating posts nothing (last_seq stays 0), but the owner's open connections,
        # on every node, start hearing the room at once.
        self._bus.publish_control(MembershipChanged(room.id, owner.id, added=True, seq=1))
        return room

    async def get(self, user: User, room_id: str) -> tuple[Room, User]:
        """The room and its owner; members see any room, others only `open` and `approval` ones,
        without the announcement (members read those)."""
        async with self._db.read() as db:
            room = await room_store.get(db, room_id)
            if room is None:
                raise not_found("room")
            if await room_store.get_member(db, room_id, user.id) is None:
                if room.join_policy not in SELF_SERVE:
                    raise forbidden("you are not a member of this room")
                room = dataclasses.replace(room, announcement=None)
            owner = await user_store.get(db, room.owner_id)
        return room, owner

    async def list_mine(self, user: User) -> list[tuple[Room, User]]:
        async with self._db.read() as db:
            rooms = await room_store.list_for_user(db, user.id)
            owners = await user_store.get_many(db, {r.owner_id for r in rooms})
        return [(room, owners[room.owner_id]) for room in rooms]

    async def update(self, actor: User, room_id: str, changes: dict[str, Any]) -> tuple[Room, User]:
        """Owner/admin changes name, topic, join policy or mute-all; `room.updated` tells the room."""
        _check_room_fields(**changes)
        if changes.get("muted") is True:
            text = f"{actor.display} muted the group: only the owner and admins may send"
        elif changes.get("muted") is False:
            text = f"{actor.display} unmuted the group"
        else:
            text = f"{actor.display} updated the group"
        async with self._db.transaction() as db:
            await require_role(db, room_id, actor, ADMIN_ROLES)
            if "avatar" in changes:  # one of the actor's own images (docs/protocol.md §12.10)
                await self._files.check_avatar(db, actor, changes["avatar"])
                await self._files.set_room_avatar(db, room_id, changes["avatar"])
            message = await self._announcer.store(db, room_id, RoomUpdated(by=Person.of(actor), changes=changes), text)
            room = await room_store.update_room(db, room_id, **changes)  # its last_seq counts `room.updated`
            owner = await user_store.get(db, room.owner_id)
        self._announcer.publish(message)
        return room, owner

    async def members(self, user: User, room_id: str) -> list[Member]:
        async with self._db.read() as db:
            await require_role(db, room_id, user, ROLES)
            return await room_store.members(db, room_id)

    async def online(self, user: User, room_id: str) -> list[str]:
        """Ids of the room's members with a live connection on any node (one per user, not per tab)."""
        async with self._db.read() as db:
            await require_role(db, room_id, user, ROLES)
            member_ids = await room_store.member_ids(db, room_id)
        return sorted(await self._bus.online(set(member_ids)))

    async def add_member(self, actor: User, room_id: str, user_id: str, note: str = "") -> Member | JoinRequest:
        """Owner/admin adds anyone; anyone adds themselves to an `open` room, or asks to join an
        `approval` one (a pending `JoinRequest`; its owner and admins are notified)."""
        async with self._db.transaction() as db:
            if not await room_store.lock(db, room_id):  # first: adds to one room queue here (the size limit)
                raise not_found("room")
            room = await room_store.get(db, room_id)
            _not_direct(room)
            actor_member = await room_store.get_member(db, room_id, actor.id)
            if actor_member is not None and actor_member.role in ADMIN_ROLES:
                subject = await user_store.get(db, user_id)
                if subject is None:
                    raise not_found("user")
            elif actor.id == user_id and room.join_policy in SELF_SERVE:
                subject = actor
            elif actor_member is None:
                raise forbidden("you are not a member of this room")
            else:
                raise forbidden("only the owner or an admin may do that")
            if room.join_policy == "approval" and subject is actor and actor_member is None:
                if await moderation.is_banned(db, room_id, actor.id):
                    raise forbidden("you are banned from this group")
                try:
                    request = await request_store.create(db, room_id, actor, note)
                except request_store.AlreadyPending:
                    raise conflict("you have a pending request to join this group") from None
                admins = (await moderation.policy_state(db, room_id)).admins
            else:
                message = await self.admit(db, room_id, subject, actor)
                member = await room_store.get_member(db, room_id, user_id)
        if room.join_policy == "approval" and subject is actor and actor_member is None:
            self._bus.publish_control(
                Notified(user_ids=sorted(admins), type="join_request", payload={"request": join_request_json(request)})
            )
            return request
        self._announcer.publish(message)
        return member

    async def admit(self, db, room_id: str, subject: User, actor: User) -> Message:
        """Add `subject` to a room locked by the caller: not if banned (403), already in or the group is
        full (409). Returns the stored `member.joined`, to publish after the commit."""
        if await moderation.is_banned(db, room_id, subject.id):
            raise forbidden(f"{subject.name} is banned from this group")
        if await room_store.get_member(db, room_id, subject.id) is not None:
            raise conflict("already a member of this room")
        if await room_store.member_count(db, room_id) >= self._max_members:
            raise conflict(f"the group is full ({self._max_members} members)")
        try:
            async with db.begin_nested():
                added = await room_store.add_member(db, room_id, subject.id)
        except IntegrityError:  # a concurrent add of the same user committed first
            added = False
        if not added:
            raise conflict("already a member of this room")
        joined = MemberJoined(user=Person.of(subject), by=Person.of(actor) if actor.id != subject.id else None)
        message = await self._announcer.store(db, room_id, joined, f"{subject.display} joined")
        await room_store.set_read(db, room_id, subject.id, message.seq)
        return message

    async def join(self, user: User, room_id: str) -> Member:
        """Join an `open` room (WebSocket `join`)."""
        async with self._db.read() as db:
            room = await room_store.get(db, room_id)
        if room is None:
            raise not_found("room")
        _not_direct(room)
        if room.join_policy != "open":
            raise forbidden("this group is invite-only" if room.join_policy == "invite"
                            else "this group takes requests to join: POST /api/rooms/{id}/members")
        return await self.add_member(user, room_id, user.id)

    async def remove_member(self, actor: User, room_id: str, user_id: str) -> None:
        """Leave (yourself) or kick (owner/admin; an admin cannot kick the owner or another admin)."""
        async with self._db.transaction() as db:
            if not await room_store.lock(db, room_id):
                raise not_found("room")
            actor_member = await require_role(db, room_id, actor, ROLES)
            _not_direct(await room_store.get(db, room_id))
            subject = await room_store.get_member(db, room_id, user_id)
            if subject is None:
                if await user_store.get(db, user_id) is None:
                    raise not_found("user")
                raise not_found("member")
            if actor.id == user_id:
                if subject.role == "owner":
                    raise conflict("the owner cannot leave; make someone else owner first")
                payload, text = MemberLeft(user=Person.of(actor)), f"{actor.display} left"
            else:
                if actor_member.role not in ADMIN_ROLES:
                    raise forbidden("only the owner or an admin may remove others")
                if not outranks(actor_member.role, subject.role):
                    raise forbidden("an admin cannot remove the owner or another admin")
                payload = MemberKicked(user=Person.of(subject.user), by=Person.of(actor))
                text = f"{subject.user.display} was removed by {actor.display}"
            if not await room_store.remove_member(db, room_id, user_id):
                # A concurrent leave or kick removed them first: announce it once, not twice.
                if actor.id == user_id:
                    raise forbidden("you are not a member of this room")
                raise not_found("member")
            message = await self._announcer.store(db, room_id, payload, text)
        # The leaver's connections see the message, then nothing more of the room.
        self._announcer.publish(message)

    async def set_role(self, actor: User, room_id: str, user_id: str, role: str) -> Member:
        """Owner only. Making someone `owner` hands the group over; the old owner becomes admin."""
        if role not in ROLES:
            raise invalid(f"role: must be one of {', '.join(ROLES)}")
        async with self._db.transaction() as db:
            if not await room_store.lock(db, room_id):
                raise not_found("room")
            _not_direct(await room_store.get(db, room_id))
            await require_role(db, room_id, actor, {"owner"})
            subject = await room_store.get_member(db, room_id, user_id)
            if subject is None:
                raise not_found("member")
            if user_id == actor.id and role != "owner":
                raise conflict("the owner cannot demote themselves; make someone else owner first")
            if role == "owner" and user_id != actor.id:
                await room_store.set_role(db, room_id, actor.id, "admin")
                await room_store.update_room(db, room_id, owner_id=user_id)
            member = await room_store.set_role(db, room_id, user_id, role)
            changes = {"role": {"user": Person.of(subject.user), "role": role}}
            message = await self._announcer.store(
                db, room_id, RoomUpdated(by=Person.of(actor), changes=changes), f"{subject.user.display} is now {role}"
            )
        self._announcer.publish(message)
        return member

    async def dissolve(self, actor: User, room_id: str) -> None:
        """Owner only: the group and everything in it are deleted (see the README, "Dissolving a group").

        Every member connection on every node gets `room_deleted` and nothing more of it.
        """
        async with self._db.transaction() as db:
            if not await room_store.lock(db, room_id):
                raise not_found("room")
            await require_role(db, room_id, actor, {"owner"})
            user_ids = await room_store.member_ids(db, room_id)
            await room_store.delete_room(db, room_id)
        self._bus.publish_control(RoomDeleted(room_id=room_id, user_ids=sorted(user_ids)))


def _not_direct(room: Room) -> None:
    """A direct room cannot be joined, added to, left, bound or given roles (docs/protocol.md §12.11)."""
    if room.kind == "direct":
        raise forbidden("a direct room has exactly its two members")


def _check_room_fields(*, name=None, topic=None, join_policy=None, muted=None, avatar=None, **unknown) -> None:
    if unknown:
        raise invalid(f"{next(iter(unknown))}: not a room field")
    if name is not None and not 1 <= len(name.strip()) <= 100:
        raise invalid("name: 1 to 100 characters")
    if topic is not None and len(topic) > 1000:
        raise invalid("topic: at most 1000 characters")
    if join_policy is not None and join_policy not in JOIN_POLICIES:
        raise invalid('join_policy: must be "open", "invite" or "approval"')
    if muted is not None and not isinstance(muted, bool):
        raise invalid("muted: must be true or false")
