"""Plain frozen values that repositories return; ORM objects never leave `storage`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    display: str
    bot: bool = False
    owner_id: str | None = None
    avatar: str | None = None  # a file id


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    name: str
    topic: str
    join_policy: str
    owner_id: str
    last_seq: int
    member_count: int = 0
    avatar: str | None = None  # a file id


@dataclass(frozen=True, slots=True)
class Member:
    user: User
    role: str
    joined: int
    read_seq: int = 0


@dataclass(frozen=True, slots=True)
class RoomState:
    """A room as a member sees it at connect time (for `welcome`)."""

    id: str
    name: str
    last_seq: int
    read_seq: int
    unread: int
    role: str = "member"


@dataclass(frozen=True, slots=True)
class Message:
    room_id: str
    seq: int
    id: str
    ts: int
    sender: User | None
    kind: str  # "text" | "system"
    text: str | None
    cid: str | None = None
    reply_to: int | None = None
    mentions: list[str] | str | None = None
    recalled: bool = False
    system_type: str | None = None
    system_data: dict[str, Any] | None = field(default=None)
    files: list[dict[str, Any]] | None = None  # as carried: `FileMeta.carried()`


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to store: the seq, id and ts are given by storage."""

    room_id: str
    sender: User | None
    text: str | None
    cid: str | None = None
    reply_to: int | None = None
    mentions: list[str] | str | None = None
    system_type: str | None = None
    system_data: dict[str, Any] | None = None
    files: tuple[str, ...] | None = None  # ids of the sender's own files to attach

    @property
    def kind(self) -> str:
        return "system" if self.system_type else "text"


@dataclass(frozen=True, slots=True)
class Stored:
    """The outcome of storing a `NewMessage`: the message and whether it already existed."""

    message: Message
    dup: bool


# Alumni records ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlumniRecord:
    id: str
    name: str
    school: str
    year: int | None
    class_name: str | None
    description: str | None
    owner_id: str
    room_id: str | None
    member_count: int = 0


@dataclass(frozen=True, slots=True)
class AlumniMember:
    """A record member; `profile` holds every field set, `visibility` the fields made `public`."""

    user: User
    joined: int
    profile: dict[str, Any]
    visibility: dict[str, str]


@dataclass(frozen=True, slots=True)
class Invitation:
    id: str
    record_id: str
    inviter: User
    invitee: User
    note: str
    status: str  # pending | accepted | declined | expired
    created: int


@dataclass(frozen=True, slots=True)
class FeedEntry:
    id: str
    record_id: str
    ts: int
    type: str  # joined | profile | post | bound
    actor: User
    data: dict[str, Any]
    post_id: str | None = None


# Posts --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Post:
    """A blog post: in its author's space and in each record of `alumni_ids` (in the author's order)."""

    id: str
    author: User
    title: str
    body: str
    created: int
    updated: int
    alumni_ids: tuple[str, ...] = ()
    files: list[dict[str, Any]] | None = None  # as carried: `FileMeta.carried()`



# Files (docs/protocol.md §12.10) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class FileMeta:
    """An uploaded file; its bytes are the blob `sha256`, its thumbnail (images) the blob `thumb`."""

    id: str
    owner_id: str
    name: str
    size: int
    content_type: str
    sha256: str
    created: int
    width: int | None = None
    height: int | None = None
    thumb: str | None = None

    def carried(self) -> dict[str, Any]:
        """What a message or post carries of it: `{id, name, size, content_type, width?, height?}`."""
        info: dict[str, Any] = {"id": self.id, "name": self.name, "size": self.size, "content_type": self.content_type}
        if self.width is not None:
            info["width"] = self.width
            info["height"] = self.height
        return info
