"""Every frame of docs/protocol.md §5 and §6 as a frozen, typed msgspec Struct.

One definition serves JSON and msgpack. Frames are tagged by their `op`
field; client and server frames form two unions (`ClientFrame`,
`ServerFrame`) because a few ops (`history`, `typing`, `read`, `presence`)
exist in both directions with different fields.

Optional fields default to `None` and are left out of the encoded frame
(`omit_defaults`); fields the protocol always sends (`from`, `dup`) have no
default, so they are always encoded, `null` included.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import Meta

# Field types with the limits the decoder enforces (over-long ids are `invalid`).
# Integers are bounded to int64 so that every decoded value fits a database
# column and re-encodes in msgpack (JSON alone would accept any size).
INT64_MAX = 2**63 - 1
Id = Annotated[str, Meta(min_length=1, max_length=64)]
Ref = Union[
    Annotated[int, Meta(ge=-INT64_MAX - 1, le=INT64_MAX)], Annotated[str, Meta(max_length=64)], None
]
Seq = Annotated[int, Meta(ge=0, le=INT64_MAX)]
PositiveSeq = Annotated[int, Meta(ge=1, le=INT64_MAX)]
Cid = Annotated[str, Meta(min_length=1, max_length=64)]
Token = Annotated[str, Meta(min_length=1, max_length=512)]
HistoryLimit = Annotated[int, Meta(ge=1, le=100)]
Mentions = Union[Annotated[list[Id], Meta(max_length=256)], Literal["all"], None]
MAX_FILES = 10  # files one message or post may carry (docs/protocol.md §12.10)
FileIds = Annotated[list[Id], Meta(max_length=MAX_FILES)]


class _Frame(msgspec.Struct, frozen=True, omit_defaults=True, tag_field="op"):
    """Base of every frame: tagged by `op`, immutable, optional fields omitted."""


class User(msgspec.Struct, frozen=True):
    """A person or bot as it appears in every field that names one."""

    id: str
    name: str
    display: str
    bot: bool = False
    avatar: str | None = None  # a file id; always sent, null included


class FileInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """A file as a message or post carries it; width and height for images."""

    id: str
    name: str
    size: int
    content_type: str
    width: int | None = None
    height: int | None = None


# --------------------------------------------------------------------------
# Client → server


class Hello(_Frame, tag="hello"):
    token: Token
    resume: dict[Id, Seq] | None = None
    ref: Ref = None


class Send(_Frame, tag="send"):
    room: Id
    text: str  # may be empty when the message carries files
    cid: Cid
    reply_to: PositiveSeq | None = None
    mentions: Mentions = None
    files: FileIds | None = None
    ref: Ref = None


class HistoryRequest(_Frame, tag="history"):
    room: Id
    before: Seq | None = None
    after: Seq | None = None
    limit: HistoryLimit = 50
    ref: Ref = None


class Join(_Frame, tag="join"):
    room: Id
    ref: Ref = None


class Leave(_Frame, tag="leave"):
    room: Id
    ref: Ref = None


class Typing(_Frame, tag="typing"):
    room: Id
    ref: Ref = None


class Read(_Frame, tag="read"):
    room: Id
    seq: Seq
    ref: Ref = None


class Recall(_Frame, tag="recall"):
    room: Id
    seq: PositiveSeq
    ref: Ref = None


class PresenceRequest(_Frame, tag="presence"):
    room: Id
    ref: Ref = None


class Ping(_Frame, tag="ping"):
    ref: Ref = None


ClientFrame = Union[
    Hello, Send, HistoryRequest, Join, Leave, Typing, Read, Recall, PresenceRequest, Ping
]
CLIENT_OPS = frozenset(cls.__struct_config__.tag for cls in ClientFrame.__args__)


# --------------------------------------------------------------------------
# Server → client


class Limits(msgspec.Struct, frozen=True):
    max_frame: int
    max_text: int


class RoomState(msgspec.Struct, frozen=True):
    """A room as listed in `welcome`."""

    id: str
    name: str
    last_seq: int
    read_seq: int
    unread: int


class Welcome(_Frame, tag="welcome"):
    user: User
    session: str
    heartbeat: float
    limits: Limits
    rooms: list[RoomState]
    ref: Ref = None


class Ack(_Frame, tag="ack"):
    room: str
    seq: int
    id: str
    ts: int
    dup: bool
    ref: Ref = None


class SystemInfo(msgspec.Struct, frozen=True):
    """The `system` part of a system message: its type and its data."""

    type: str
    data: dict[str, Any] = {}


class Message(_Frame, tag="message"):
    """A chat or system message, live or from history."""

    room: str
    seq: int
    id: str
    ts: int
    from_: User | None = msgspec.field(name="from")
    kind: Literal["text", "system"]
    text: str | None = None
    cid: str | None = None
    reply_to: int | None = None
    mentions: list[str] | Literal["all"] | None = None
    recalled: bool | None = None
    system: SystemInfo | None = None
    files: list[FileInfo] | None = None


class HistoryReply(_Frame, tag="history"):
    room: str
    messages: list[Message]
    more: bool
    ref: Ref = None


class Ok(_Frame, tag="ok"):
    ref: Ref = None


class TypingEvent(_Frame, tag="typing"):
    room: str
    user: User


class ReadEvent(_Frame, tag="read"):
    room: str
    seq: int


class Recalled(_Frame, tag="recalled"):
    room: str
    seq: int
    by: User


class PresenceReply(_Frame, tag="presence"):
    room: str
    online: list[str]
    count: int
    ref: Ref = None


class Pong(_Frame, tag="pong"):
    ts: int
    ref: Ref = None


class Error(_Frame, tag="error"):
    code: str
    message: str
    retry_after: int | None = None
    ref: Ref = None


class Gap(_Frame, tag="gap"):
    room: str
    from_: int = msgspec.field(name="from")
    to: int


class Notify(_Frame, tag="notify"):
    type: str
    invitation: dict[str, Any] | None = None


ServerFrame = Union[
    Welcome,
    Ack,
    Message,
    HistoryReply,
    Ok,
    TypingEvent,
    ReadEvent,
    Recalled,
    PresenceReply,
    Pong,
    Error,
    Gap,
    Notify,
]
SERVER_OPS = frozenset(cls.__struct_config__.tag for cls in ServerFrame.__args__)
