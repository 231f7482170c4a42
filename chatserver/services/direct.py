"""Direct rooms: one private room per pair of users (docs/protocol.md §12.11)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from storage import blocks as block_store
from storage import rooms as room_store
from storage import users as user_store
from storage.db import Database
from storage.records import Room, User

from ..bus.base import Bus
from ..bus.events import MembershipChanged
from ..errors import forbidden, invalid, not_found


async def _refused_by_block(db, sender: User, other: User) -> bool:
    """Whether `other` blocked `sender`, which refuses a new direct room (docs/protocol.md §12.11)."""
    return await block_store.blocked(db, other.id, sender.id)


class DirectService:
    def __init__(self, db: Database, bus: Bus):
        self._db = db
        self._bus = bus

    async def open(self, user: User, other_id: str) -> tuple[Room, bool]:
        """The pair's direct room, created if there is none yet; (room, created)."""
        if other_id == user.id:
            raise invalid("user_id: a direct room needs another user")
        async with self._db.transaction() as db:
            other = await user_store.get(db, other_id)
            if other is None:
                raise not_found("user")
            existing = await room_store.get_direct(db, user.id, other.id)
            if existing is not None:
                return existing, False
            if await _refused_by_block(db, user, other):
                raise forbidden("this user does not accept direct messages from you")
            try:
                async with db.begin_nested():
                    room = await room_store.create_direct(
                        db, name=f"{user.display}, {other.display}"[:100], creator_id=user.id, other_id=other.id
                    )
            except IntegrityError:  # the other side opened it at the same moment
                room = None
        if room is None:
            async with self._db.read() as db:
                return await room_store.get_direct(db, user.id, other_id), False
        # Both users' open connections, on every node, start hearing the room at once.
        for member_id in (user.id, other.id):
            self._bus.publish_control(MembershipChanged(room.id, member_id, added=True, seq=1))
        return room, True
