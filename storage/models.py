"""Tables. ORM classes stay inside this package: repositories return `records`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


ID = String(40)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    display: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    bot: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created: Mapped[int] = mapped_column(BigInteger)
    # A retired bot keeps its row so its past messages keep their author.
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    avatar: Mapped[str | None] = mapped_column(String(40), nullable=True)  # a file id (docs/protocol.md §12.10)


class Token(Base):
    """Bearer tokens, stored as SHA-256 of the random secret: a leaked table grants nothing."""

    __tablename__ = "tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created: Mapped[int] = mapped_column(BigInteger)


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    topic: Mapped[str] = mapped_column(Text, default="")
    join_policy: Mapped[str] = mapped_column(String(10))
    owner_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id"))
    # The last seq handed out; incremented in the transaction that stores a message.
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10), default="group", server_default="group")  # group | direct
    # "<user id>:<user id>" (sorted) for a direct room: one room per pair.
    direct_key: Mapped[str | None] = mapped_column(String(90), nullable=True, unique=True)
    avatar: Mapped[str | None] = mapped_column(String(40), nullable=True)  # a file id (docs/protocol.md §12.10)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (Index("ix_memberships_user", "user_id"),)

    room_id: Mapped[str] = mapped_column(
        ID, ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(10))
    joined: Mapped[int] = mapped_column(BigInteger)
    read_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # Idempotent sends: one message per (room, sender, cid).
        UniqueConstraint("room_id", "sender_id", "cid", name="uq_messages_cid"),
    )

    room_id: Mapped[str] = mapped_column(
        ID, ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[str] = mapped_column(ID, unique=True)
    ts: Mapped[int] = mapped_column(BigInteger)
    sender_id: Mapped[str | None] = mapped_column(ID, ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(10))
    text: Mapped[str | None] = mapped_column(Text)
    cid: Mapped[str | None] = mapped_column(String(64))
    reply_to: Mapped[int | None] = mapped_column(BigInteger)
    # none_as_null: an absent value is SQL NULL, not the JSON text 'null' (and costs no encoding).
    mentions: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    recalled: Mapped[bool] = mapped_column(Boolean, default=False)
    system_type: Mapped[str | None] = mapped_column(String(40))
    system_data: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    # The attached files' metadata as the message carries it, stored once (docs/protocol.md §12.10).
    files: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    # Timeline updates (docs/protocol.md §6.4): the folded state of a text message ...
    edited_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # ... and, on an update entry (kind "update"), its `update` object: {type, target, ...}.
    update_data: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)


class MessageEdit(Base):
    """An earlier version of an edited message (`GET .../edits`), numbered from 1."""

    __tablename__ = "message_edits"

    room_id: Mapped[str] = mapped_column(ID, ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    ts: Mapped[int] = mapped_column(BigInteger)


class MessageReaction(Base):
    """Who reacted with what; `me` in history reads the caller's rows through the user index."""

    __tablename__ = "message_reactions"
    __table_args__ = (Index("ix_message_reactions_user", "room_id", "user_id", "seq"),)

    room_id: Mapped[str] = mapped_column(ID, ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    emoji: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, primary_key=True)


class ReactionCount(Base):
    """The aggregate history folds from: at most 20 rows per message, however many reacted."""

    __tablename__ = "reaction_counts"

    room_id: Mapped[str] = mapped_column(ID, ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    emoji: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    first_seq: Mapped[int] = mapped_column(BigInteger)  # orders a message's emoji: first used, first listed


class MessageMention(Base):
    """A user mentioned by a message: the `mentions` count of unread messages (per user, room)."""

    __tablename__ = "message_mentions"

    user_id: Mapped[str] = mapped_column(ID, primary_key=True)
    room_id: Mapped[str] = mapped_column(ID, ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)


# Alumni records ---------------------------------------------------------------


class AlumniRecord(Base):
    """A class's directory; bound to at most one group, and a group to at most one record."""

    __tablename__ = "alumni_records"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    school: Mapped[str] = mapped_column(String(200))
    year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    class_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id"))
    # Unique: a group has at most one record (NULLs, unbound records, do not collide).
    room_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("rooms.id", ondelete="SET NULL"), nullable=True, unique=True
    )
    created: Mapped[int] = mapped_column(BigInteger)


class AlumniMember(Base):
    """A member of a record with their profile: field -> value, and field -> "members"|"public"."""

    __tablename__ = "alumni_members"
    __table_args__ = (Index("ix_alumni_members_user", "user_id"),)

    record_id: Mapped[str] = mapped_column(
        ID, ForeignKey("alumni_records.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    joined: Mapped[int] = mapped_column(BigInteger)
    profile: Mapped[Any] = mapped_column(JSON)
    visibility: Mapped[Any] = mapped_column(JSON)


class Invitation(Base):
    __tablename__ = "invitations"
    __table_args__ = (
        # At most one pending invitation per (record, invitee), even under concurrent batches.
        Index(
            "uq_invitations_pending",
            "record_id",
            "invitee_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_invitations_invitee", "invitee_id", "created"),
        Index("ix_invitations_inviter", "inviter_id", "created"),  # the hourly quota
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    record_id: Mapped[str] = mapped_column(ID, ForeignKey("alumni_records.id", ondelete="CASCADE"))
    inviter_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"))
    invitee_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10))  # pending | accepted | declined | expired
    created: Mapped[int] = mapped_column(BigInteger)
    decided: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class FeedEntry(Base):
    """A record's activity. `post_id` has no FK: the posts table arrives in a later migration."""

    __tablename__ = "feed_entries"
    __table_args__ = (Index("ix_feed_entries_record_ts", "record_id", "ts", "id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    record_id: Mapped[str] = mapped_column(ID, ForeignKey("alumni_records.id", ondelete="CASCADE"))
    ts: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(16))  # joined | profile | post | bound
    actor_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"))
    data: Mapped[Any] = mapped_column(JSON)
    post_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


# Posts --------------------------------------------------------------------------


class Post(Base):
    """A blog post, stored once; `PostRecord` links it to every record it is published to."""

    __tablename__ = "posts"
    # The author's space, newest first, paged by keyset on (created, id).
    __table_args__ = (Index("ix_posts_author_created", "author_id", "created", "id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    author_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created: Mapped[int] = mapped_column(BigInteger)
    updated: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)  # as on messages
    like_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    comment_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class PostLike(Base):
    __tablename__ = "post_likes"

    post_id: Mapped[str] = mapped_column(ID, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created: Mapped[int] = mapped_column(BigInteger)


class PostComment(Base):
    """A comment; paged newest first on (created, id) like history (docs/protocol.md §12.12)."""

    __tablename__ = "post_comments"
    __table_args__ = (Index("ix_post_comments_post", "post_id", "created", "id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    post_id: Mapped[str] = mapped_column(ID, ForeignKey("posts.id", ondelete="CASCADE"))
    author_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    reply_to: Mapped[str | None] = mapped_column(ID, nullable=True)
    created: Mapped[int] = mapped_column(BigInteger)


class PostRecord(Base):
    """A post published to a record. `post_created` copies the post's (immutable) creation time
    so a record's posts page newest first from one index, without touching `posts`."""

    __tablename__ = "post_records"
    __table_args__ = (Index("ix_post_records_record", "record_id", "post_created", "post_id"),)

    post_id: Mapped[str] = mapped_column(ID, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    record_id: Mapped[str] = mapped_column(
        ID, ForeignKey("alumni_records.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer)  # the order the author listed the records in
    post_created: Mapped[int] = mapped_column(BigInteger)


# Editing or deleting a post finds its feed entries in every record.
Index("ix_feed_entries_post", FeedEntry.post_id)


# People, records and search (issue 13) --------------------------------------------


class Block(Base):
    """`blocker_id` blocked `blocked_id`: the blocked user's invitations to the blocker are skipped,
    and they cannot open a direct room with the blocker."""

    __tablename__ = "blocks"
    __table_args__ = (Index("ix_blocks_blocked", "blocked_id", "blocker_id"),)

    blocker_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    blocked_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created: Mapped[int] = mapped_column(BigInteger)


class RecordRequest(Base):
    """A user's request to join an alumni record, decided by the record's owner."""

    __tablename__ = "record_requests"
    __table_args__ = (
        Index("ix_record_requests_record", "record_id", "created"),
        # At most one pending request per (record, user), even when two arrive at once.
        Index(
            "uq_record_requests_pending",
            "record_id",
            "user_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    record_id: Mapped[str] = mapped_column(ID, ForeignKey("alumni_records.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10))  # pending | approved | declined
    created: Mapped[int] = mapped_column(BigInteger)
    decided: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
# Files (docs/protocol.md §12.10) ----------------------------------------------


class File(Base):
    """An uploaded file's metadata; its bytes live in the blob store under `sha256` (shared by
    identical uploads), its thumbnail (images) under `thumb`."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_owner", "owner_id"), Index("ix_files_sha256", "sha256"))

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    owner_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    thumb: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created: Mapped[int] = mapped_column(BigInteger)
    # When first attached (a message, a post or an avatar); NULL: never, swept after a day.
    attached: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class FileLink(Base):
    """Where a file is attached: a message (room_id, seq) or a post. Links go with their message
    or post (cascade); `file_id` has no foreign key so that attaching never fails a batch of
    messages when the sweep removes a file at the same moment."""

    __tablename__ = "file_links"
    __table_args__ = (
        Index("ix_file_links_file", "file_id"),
        Index("ix_file_links_message", "room_id", "seq"),
        Index("ix_file_links_post", "post_id"),
        ForeignKeyConstraint(["room_id", "seq"], ["messages.room_id", "messages.seq"], ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[str] = mapped_column(ID)
    room_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    post_id: Mapped[str | None] = mapped_column(ID, ForeignKey("posts.id", ondelete="CASCADE"), nullable=True)


class Blob(Base):
    """A blob of the database blob store: its bytes are `BlobChunk` rows of `chunk_size` bytes."""

    __tablename__ = "blobs"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    chunk_size: Mapped[int] = mapped_column(Integer)
    created: Mapped[int] = mapped_column(BigInteger)


class BlobChunk(Base):
    __tablename__ = "blob_chunks"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
