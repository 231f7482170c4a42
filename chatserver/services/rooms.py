"""Use cases of rooms (groups): create, update, members and roles.

A membership change and the system message announcing it are stored in one
transaction, then published: the message on the room's channel, and a
`MembershipChanged` control event so every node (re)subscribes that user's
connections at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from storage import rooms as room_store
from storage import users as user_store
from storage.db import Database
from storage.records import Member, Room, User

from ..announcements import Announcer, MemberJoined, MemberKicked, MemberLeft, Person, RoomUpdated
from ..bus.base import Bus
from ..bus.events import MembershipChanged
from ..errors import conflict, forbidden, invalid, not_found
from .roles import ADMIN_ROLES, ROLES

if TYPE_CHECKING:
    from .files import FileService

JOIN_POLICIES = ("open", "invite")


class RoomService:
    def __init__(self, db: Database, bus: Bus, announcer: Announcer, files: FileService | None = None):
        self._db = db
        self._bus = bus
        self._announcer = announcer
        self._files = files  # room avatars

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
        """The room and its owner; members see any room, others only `open` ones."""
        async with self._db.read() as db:
            room = await room_store.get(db, room_id)
            if room is None:
                raise not_found("room")
            if room.join_policy != "open" and await room_store.get_member(db, room_id, user.id) is None:
                raise forbidden("you are not a member of this room")
            owner = await user_store.get(db, room.owner_id)
        return room, owner

    async def list_mine(self, user: User) -> list[tuple[Room, User]]:
        async with self._db.read() as db:
            rooms = await room_store.list_for_user(db, user.id)
            owners = await user_store.get_many(db, {r.owner_id for r in rooms})
        return [(room, owners[room.owner_id]) for room in rooms]

    async def update(self, actor: User, room_id: str, changes: dict[str, Any]) -> tuple[Room, User]:
        """Owner/admin changes name, topic or join policy; `room.updated` tells the room."""
        _check_room_fields(**changes)
        async with self._db.transaction() as db:
            await self._require_role(db, room_id, actor, ADMIN_ROLES)
            if "avatar" in changes:  # one of the actor's own images (docs/protocol.md §12.10)
                await self._files.check_avatar(db, actor, changes["avatar"])
                await self._files.set_room_avatar(db, room_id, changes["avatar"])
            message = await self._announcer.store(
                db, room_id, RoomUpdated(by=Person.of(actor), changes=changes), f"{actor.display} updated the group"
            )
            room = await room_store.update_room(db, room_id, **changes)  # its last_seq counts `room.updated`
            owner = await user_store.get(db, room.owner_id)
        self._announcer.publish(message)
        return room, owner

    async def members(self, user: User, room_id: str) -> list[Member]:
        async with self._db.read() as db:
            await self._require_role(db, room_id, user, ROLES)
            return await room_store.members(db, room_id)

    async def online(self, user: User, room_id: str) -> list[str]:
        """Ids of the room's members with a live connection on any node (one per user, not per tab)."""
        async with self._db.read() as db:
            await self._require_role(db, room_id, user, ROLES)
            member_ids = await room_store.member_ids(db, room_id)
        return sorted(await self._bus.online(set(member_ids)))

    async def add_member(self, actor: User, room_id: str, user_id: str) -> Member:
        """Owner/admin adds anyone; anyone adds themselves to an `open` room."""
        async with self._db.transaction() as db:
            room = await room_store.get(db, room_id)
            if room is None:
                raise not_found("room")
            _not_direct(room)
            if actor.id == user_id and room.join_policy == "open":
                subject = actor
            else:
                await self._require_role(db, room_id, actor, ADMIN_ROLES)
                subject = await user_store.get(db, user_id)
                if subject is None:
                    raise not_found("user")
            try:
                async with db.begin_nested():
                    added = await room_store.add_member(db, room_id, user_id)
            except IntegrityError:  # a concurrent add of the same user committed first (PostgreSQL)
                added = False
            if not added:
                raise conflict("already a member of this room")
            joined = MemberJoined(user=Person.of(subject), by=Person.of(actor) if actor.id != subject.id else None)
            message = await self._announcer.store(db, room_id, joined, f"{subject.display} joined")
            await room_store.set_read(db, room_id, user_id, message.seq)
            member = await room_store.get_member(db, room_id, user_id)
        self._announcer.publish(message)
        return member

    async def join(self, user: User, room_id: str) -> Member:
        """Join an `open` room (WebSocket `join`)."""
        async with self._db.read() as db:
            room = await room_store.get(db, room_id)
        if room is None:
            raise not_found("room")
        _not_direct(room)
        if room.join_policy != "open":
            raise forbidden("this group is invite-only")
        return await self.add_member(user, room_id, user.id)

    async def remove_member(self, actor: User, room_id: str, user_id: str) -> None:
        """Leave (yourself) or kick (owner/admin; an admin cannot kick the owner or another admin)."""
        async with self._db.transaction() as db:
            if not await room_store.lock(db, room_id):
                raise not_found("room")
            actor_member = await self._require_role(db, room_id, actor, ROLES)
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
                if subject.role == "owner" or (subject.role == "admin" and actor_member.role != "owner"):
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
            await self._require_role(db, room_id, actor, {"owner"})
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

    async def _require_role(self, db, room_id: str, user: User, roles) -> Member:
        member = await room_store.get_member(db, room_id, user.id)
        if member is None:
            if await room_store.get(db, room_id) is None:
                raise not_found("room")
            raise forbidden("you are not a member of this room")
        if member.role not in roles:
            raise forbidden("only the owner or an admin may do that")
        return member

def _not_direct(room: Room) -> None:
    """A direct room cannot be joined, added to, left, bound or given roles (docs/protocol.md §12.11)."""
    if room.kind == "direct":
        raise forbidden("a direct room has exactly its two members")


def _check_room_fields(*, name=None, topic=None, join_policy=None, avatar=None, **unknown) -> None:
    if unknown:
        raise invalid(f"{next(iter(unknown))}: not a room field")
    if name is not None and not 1 <= len(name.strip()) <= 100:
        raise invalid("name: 1 to 100 characters")
    if topic is not None and len(topic) > 1000:
        raise invalid("topic: at most 1000 characters")
    if join_policy is not None and join_policy not in JOIN_POLICIES:
        raise invalid('join_policy: must be "open" or "invite"')
