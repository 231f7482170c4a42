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


class Edit(_Frame, tag="edit"):
    """Change the text of one's own message (docs/protocol.md §6.4)."""

    room: Id
    seq: PositiveSeq
    text: str
    ref: Ref = None


Emoji = Annotated[str, Meta(min_length=1, max_length=16)]


class React(_Frame, tag="react"):
    """Add (`on`) or take back a reaction (docs/protocol.md §6.4)."""

    room: Id
    seq: PositiveSeq
    emoji: Emoji
    on: bool = True
    ref: Ref = None


class Ping(_Frame, tag="ping"):
    ref: Ref = None


ClientFrame = Union[
    Hello, Send, HistoryRequest, Join, Leave, Typing, Read, Recall, PresenceRequest, Ping, Edit, React
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
    mentions: int = 0
    kind: str = "group"


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


class Update(msgspec.Struct, frozen=True, omit_defaults=True):
    """The `update` of a timeline update entry (docs/protocol.md §6.4)."""

    type: Literal["edited", "reaction", "pinned", "unpinned", "recalled"]
    target: int
    text: str | None = None
    edited_ts: int | None = None
    emoji: str | None = None
    on: bool | None = None


class Reply(msgspec.Struct, frozen=True):
    """What a reply quotes of its original (docs/protocol.md §6.5)."""

    seq: int
    from_: User | None = msgspec.field(name="from")
    excerpt: str = ""


class Reaction(msgspec.Struct, frozen=True):
    emoji: str
    count: int
    me: bool = False


class Message(_Frame, tag="message"):
    """A chat or system message, or a timeline update entry, live or from history."""

    room: str
    seq: int
    id: str
    ts: int
    from_: User | None = msgspec.field(name="from")
    kind: Literal["text", "system", "update"]
    text: str | None = None
    cid: str | None = None
    reply_to: int | None = None
    mentions: list[str] | Literal["all"] | None = None
    recalled: bool | None = None
    system: SystemInfo | None = None
    update: Update | None = None
    reply: Reply | None = None
    edited_ts: int | None = None
    # Folded by `history` only: live messages and replays leave these out.
    reactions: list[Reaction] | None = None
    pinned: bool | None = None
    files: list[FileInfo] | None = None


class HistoryReply(_Frame, tag="history"):
    room: str
    messages: list[Message]
    more: bool
    last_seq: int | None = None  # the room's newest seq the page is folded up to (servers before it: None)
    ref: Ref = None


class Ok(_Frame, tag="ok"):
    seq: int | None = None  # `edit`: the seq of its update entry
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
    """`invitation` with type `invitation`; `request` with type `join_request` (docs/protocol.md §12.14)
    or `record_request` (§12.13)."""

    type: str
    invitation: dict[str, Any] | None = None
    request: dict[str, Any] | None = None  # `join_request` and `record_request`
    # `mention` (docs/protocol.md §6.5)
    room: str | None = None
    seq: int | None = None
    from_: dict[str, Any] | None = msgspec.field(default=None, name="from")
    # `comment` / `like` (docs/protocol.md §12.12)
    post: str | None = None  # the post's id, like `room`
    by: dict[str, Any] | None = None


class RoomDeleted(_Frame, tag="room_deleted"):
    """The group was dissolved: nothing more of it follows."""

    room: str


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
    RoomDeleted,
]
SERVER_OPS = frozenset(cls.__struct_config__.tag for cls in ServerFrame.__args__)
