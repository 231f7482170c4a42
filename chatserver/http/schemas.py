"""Request bodies of the REST API as msgspec Structs: one definition validates and documents."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from client_proto.frames import FileIds, PositiveSeq

Text = Annotated[str, Meta(max_length=100_000)]
ShortText = Annotated[str, Meta(max_length=1000)]


class NewUser(msgspec.Struct, frozen=True):
    name: str
    password: Annotated[str, Meta(max_length=1024)]
    display: Annotated[str, Meta(max_length=64)] | None = None


class Login(msgspec.Struct, frozen=True):
    name: Annotated[str, Meta(max_length=64)]
    password: Annotated[str, Meta(max_length=1024)]


class PasswordChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    old: Annotated[str, Meta(max_length=1024)]
    new: Annotated[str, Meta(max_length=1024)]


class MeChanges(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    display: Annotated[str, Meta(max_length=64)] | None = None
    password: PasswordChange | None = None
    avatar: str | None | msgspec.UnsetType = msgspec.UNSET  # a file id of the caller's; null clears it


class NewRoom(msgspec.Struct, frozen=True):
    name: Annotated[str, Meta(max_length=100)]
    topic: ShortText | None = None
    join_policy: Literal["open", "invite"] = "invite"


class RoomChanges(msgspec.Struct, frozen=True, omit_defaults=True):
    name: Annotated[str, Meta(max_length=100)] | None = None
    topic: ShortText | None = None
    join_policy: Literal["open", "invite"] | None = None
    avatar: str | None | msgspec.UnsetType = msgspec.UNSET  # a file id; null clears it


class AddMember(msgspec.Struct, frozen=True):
    user_id: Annotated[str, Meta(min_length=1, max_length=64)]


class SetRole(msgspec.Struct, frozen=True):
    role: Literal["owner", "admin", "member"]


class PostMessage(msgspec.Struct, frozen=True):
    text: str
    cid: Annotated[str, Meta(min_length=1, max_length=64)]
    reply_to: PositiveSeq | None = None
    mentions: list[Annotated[str, Meta(max_length=64)]] | Literal["all"] | None = None
    files: FileIds | None = None


class EditMessage(msgspec.Struct, frozen=True):
    text: str


class NewDirect(msgspec.Struct, frozen=True):
    user_id: Annotated[str, Meta(max_length=64)]


class NewBot(msgspec.Struct, frozen=True):
    name: str
    display: Annotated[str, Meta(max_length=64)] | None = None
