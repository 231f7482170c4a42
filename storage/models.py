"""Tables. ORM classes stay inside this package: repositories return `records`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
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
    mentions: Mapped[Any] = mapped_column(JSON, nullable=True)
    recalled: Mapped[bool] = mapped_column(Boolean, default=False)
    system_type: Mapped[str | None] = mapped_column(String(40))
    system_data: Mapped[Any] = mapped_column(JSON, nullable=True)
