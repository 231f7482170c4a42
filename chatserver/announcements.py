"""System messages: their typed payloads, and the one owner of storing and publishing them.

A change that a room should see (a join, a kick, a renamed group, a bound
record, a published post …) is a durable system message with a seq
(docs/protocol.md §6.2). It is stored inside the transaction of the change it
announces, so nothing is announced that was not stored, and published only
after that transaction commits. `Announcer` does both; every service calls
it, and nothing else publishes a stored message.

Each `system.type` has a payload struct here. Storage keeps the payload as a
JSON object (`Message.system_data`); `payload_of` reads it back as its type,
so the hub and the views read fields, not dict keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import msgspec

from storage import messages as message_store
from storage.records import Message, NewMessage, User

from .bus.base import Bus
from .bus.events import MembershipChanged, MessageRecalled, Notified, Posted
from .views import user_json


class Person(msgspec.Struct, frozen=True):
    """A user object as the wire gives it (`views.user_json`; a test keeps the two alike)."""

    id: str
    name: str
    display: str
    bot: bool = False
    avatar: str | None = None  # a file id (docs/protocol.md §12.10)

    @classmethod
    def of(cls, user: User) -> "Person":
        return msgspec.convert(user_json(user), cls)


class RecordRef(msgspec.Struct, frozen=True):
    """What a group is told of an alumni record: only what any signed-in user may read."""

    id: str
    name: str


class PostRef(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a group is told of a post; `excerpt` is absent once the post is deleted."""

    id: str
    title: str
    author: Person
    excerpt: str | None = None


class SystemPayload(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The `system.data` of one system type; `TYPE` is its `system.type`."""

    TYPE: ClassVar[str]


class MemberJoined(SystemPayload):
    TYPE = "member.joined"
    user: Person
    by: Person | None = None  # who added them, when not themselves


class MemberLeft(SystemPayload):
    TYPE = "member.left"
    user: Person


class MemberKicked(SystemPayload):
    TYPE = "member.kicked"
    user: Person
    by: Person


class RoomUpdated(SystemPayload):
    TYPE = "room.updated"
    by: Person
    changes: dict[str, Any]


class AlumniBound(SystemPayload):
    TYPE = "alumni.bound"
    record: RecordRef
    by: Person


class AlumniUnbound(SystemPayload):
    TYPE = "alumni.unbound"
    record: RecordRef
    by: Person


class AlumniJoined(SystemPayload):
    TYPE = "alumni.joined"
    record: RecordRef
    user: Person
    inviter: Person


class AlumniProfile(SystemPayload):
    TYPE = "alumni.profile"
    record: RecordRef
    user: Person
    profile: dict[str, Any]


class AlumniInvitation(SystemPayload):
    TYPE = "alumni.invitation"
    record: RecordRef
    inviter: Person
    invitees: list[Person]


class PostPublished(SystemPayload):
    TYPE = "post.published"
    post: PostRef


class PostUpdated(SystemPayload):
    TYPE = "post.updated"
    post: PostRef


class PostDeleted(SystemPayload):
    TYPE = "post.deleted"
    post: PostRef


PAYLOADS: dict[str, type[SystemPayload]] = {
    cls.TYPE: cls
    for cls in (
        MemberJoined, MemberLeft, MemberKicked, RoomUpdated, AlumniBound, AlumniUnbound, AlumniJoined,
        AlumniProfile, AlumniInvitation, PostPublished, PostUpdated, PostDeleted,
    )
}

# Removals: the removed member's connections hear nothing of the room after this message.
LEAVING = (MemberLeft, MemberKicked)


def payload_of(message: Message) -> SystemPayload | None:
    """The typed payload of a system message (None for any other message)."""
    if message.system_type is None:
        return None
    return msgspec.convert(message.system_data or {}, PAYLOADS[message.system_type])


def departed(message: Message) -> str | None:
    """The id of the member a `member.left` / `member.kicked` message removes, else None."""
    if message.system_type not in (MemberLeft.TYPE, MemberKicked.TYPE):
        return None
    payload = payload_of(message)
    assert isinstance(payload, LEAVING)
    return payload.user.id


# An announcement to store: the room it goes to, its payload, and its readable text.
Announcement = tuple[str, SystemPayload, str]


class Announcer:
    """Stores system messages in the caller's transaction and publishes them after it commits.

    Call `store` (or `store_many`) inside the transaction of the change, then
    `publish` with what it returned once the transaction has committed.
    """

    def __init__(self, bus: Bus):
        self._bus = bus

    async def store(self, db, room_id: str, payload: SystemPayload, text: str) -> Message:
        (message,) = await self.store_many(db, [(room_id, payload, text)])
        return message

    async def store_many(self, db, announcements: Iterable[Announcement]) -> list[Message]:
        """Many at once: one batch, rooms locked in id order (as a commit of chat messages locks them)."""
        batch = [
            NewMessage(room_id=room_id, sender=None, text=text, system_type=payload.TYPE,
                       system_data=msgspec.to_builtins(payload))
            for room_id, payload, text in announcements
        ]
        if not batch:
            return []
        return [stored.message for stored in await message_store.append_batch(db, batch)]

    def publish(self, *messages: Message | None) -> None:
        """Publish stored messages (chat or system) in order; None is skipped.

        A membership message is followed by the control event that (un)subscribes
        the member's connections on every node at once.
        """
        for message in messages:
            if message is None:
                continue
            self._bus.publish_room(message.room_id, Posted(message))
            if message.update is not None and message.update["type"] == "recalled":
                # The live `recalled` event goes out beside the entry (docs/protocol.md §5.3).
                self._bus.publish_room(
                    message.room_id,
                    MessageRecalled(room_id=message.room_id, seq=message.update["target"], by=message.sender),
                )
            if message.system_type is None:
                continue
            if message.system_type == MemberJoined.TYPE:
                user_id = payload_of(message).user.id
                self._bus.publish_control(MembershipChanged(message.room_id, user_id, added=True, seq=message.seq))
            elif (user_id := departed(message)) is not None:
                self._bus.publish_control(MembershipChanged(message.room_id, user_id, added=False, seq=message.seq))

    def mentioned(self, message: Message, user_ids: Iterable[str]) -> None:
        """`notify` `mention` on every connection of each mentioned user, on every node (docs/protocol.md §6.5)."""
        self._bus.publish_control(
            Notified(
                user_ids=list(user_ids),
                type="mention",
                payload={"room": message.room_id, "seq": message.seq, "from_": user_json(message.sender)},
            )
        )
