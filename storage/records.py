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
    kind: str = "group"  # group | direct
    mentions: int | None = None  # in the caller's own list: unread messages mentioning them
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
    mentions: int = 0
    kind: str = "group"


@dataclass(frozen=True, slots=True)
class Reply:
    """What a reply quotes of its original (docs/protocol.md §6.5)."""

    seq: int
    sender: User | None
    excerpt: str


@dataclass(frozen=True, slots=True)
class Reaction:
    emoji: str
    count: int
    me: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    room_id: str
    seq: int
    id: str
    ts: int
    sender: User | None
    kind: str  # "text" | "system" | "update"
    text: str | None
    cid: str | None = None
    reply_to: int | None = None
    mentions: list[str] | str | None = None
    recalled: bool = False
    system_type: str | None = None
    system_data: dict[str, Any] | None = field(default=None)
    # An update entry's {type, target, ...} (docs/protocol.md §6.4).
    update: dict[str, Any] | None = None
    reply: Reply | None = None
    edited_ts: int | None = None
    pinned: bool = False
    # Folded by `history` only (with `me` for the caller); None elsewhere.
    reactions: tuple[Reaction, ...] | None = None
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
    # A timeline update of an earlier message: {type, target, ...}; `sender` is who made it.
    update: dict[str, Any] | None = None
    files: tuple[str, ...] | None = None  # ids of the sender's own files to attach

    @property
    def kind(self) -> str:
        if self.update is not None:
            return "update"
        return "system" if self.system_type else "text"


@dataclass(frozen=True, slots=True)
class Stored:
    """The outcome of storing a `NewMessage`: the message and whether it already existed."""

    message: Message
    dup: bool
    # Who the message mentions ("all" expanded to every member but the sender): they get `notify`.
    mentioned: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Unchanged:
    """An update that changes nothing (reacting twice the same way): no entry was made."""


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
    likes: int = 0
    comments: int = 0
    liked: bool = False  # by the viewer it was read for (docs/protocol.md §12.12)


@dataclass(frozen=True, slots=True)
class Comment:
    id: str
    post_id: str
    author: User
    text: str
    reply_to: str | None
    created: int



@dataclass(frozen=True, slots=True)
class RecordRequest:
    """A request to join an alumni record (docs/protocol.md §12.13)."""

    id: str
    record_id: str
    user: User
    note: str
    status: str  # pending | approved | declined
    created: int
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
