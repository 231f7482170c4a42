"""What travels on the bus between nodes: typed events, encoded with msgpack by remote engines.

Room events go to the nodes serving that room; control events go to every
node (they are about users, who may be connected anywhere).
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

from storage.records import Message, User


class _Event(msgspec.Struct, frozen=True, tag_field="t", array_like=True):
    pass


# Room events --------------------------------------------------------------


class Posted(_Event, tag="p"):
    """A stored message (chat or system); delivered in seq order."""

    message: Message


class TypingStarted(_Event, tag="ty"):
    room_id: str
    user: User


class MessageRecalled(_Event, tag="rc"):
    room_id: str
    seq: int
    by: User


RoomEvent = Union[Posted, TypingStarted, MessageRecalled]


# Control events -----------------------------------------------------------


class MembershipChanged(_Event, tag="m"):
    """`user_id` joined (`added`) or left `room_id`; `seq` is the system message that said so."""

    room_id: str
    user_id: str
    added: bool
    seq: int


class ReadMoved(_Event, tag="rd"):
    """A user's read marker moved; their other connections are told."""

    room_id: str
    user_id: str
    seq: int
    session: str


class Notified(_Event, tag="n"):
    """A `notify` frame for these users' own connections."""

    user_ids: list[str]
    type: str
    payload: dict[str, Any]


class Revoked(_Event, tag="rv"):
    """A token (or every token of a user) stopped working: close those connections with 4001."""

    token_hash: str | None = None
    user_id: str | None = None


class UserChanged(_Event, tag="uc"):
    """A user's display name or avatar changed: their live connections (what their messages carry)
    and cached sign-ins take the new one."""

    user: User


class RoomDeleted(_Event, tag="del"):
    """A group was dissolved: its members' connections get `room_deleted` and nothing more of it."""

    room_id: str
    user_ids: list[str]


ControlEvent = Union[MembershipChanged, ReadMoved, Notified, Revoked, UserChanged, RoomDeleted]
BusEvent = Union[RoomEvent, ControlEvent]
