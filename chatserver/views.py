"""The one place storage records become wire values (frames and JSON bodies)."""

from __future__ import annotations

from typing import Any

from client_proto import frames
from storage import records


def user_frame(user: records.User) -> frames.User:
    return frames.User(id=user.id, name=user.name, display=user.display, bot=user.bot, avatar=user.avatar)


def user_json(user: records.User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "display": user.display, "bot": user.bot, "avatar": user.avatar}


def message_frame(m: records.Message) -> frames.Message:
    system = frames.SystemInfo(type=m.system_type, data=m.system_data or {}) if m.system_type else None
    return frames.Message(
        room=m.room_id,
        seq=m.seq,
        id=m.id,
        ts=m.ts,
        from_=user_frame(m.sender) if m.sender is not None else None,
        kind=m.kind,  # type: ignore[arg-type]
        text=None if m.recalled else m.text,
        cid=m.cid,
        reply_to=m.reply_to,
        mentions=m.mentions,
        recalled=True if m.recalled else None,
        system=system,
        files=None if m.recalled or not m.files else [frames.FileInfo(**f) for f in m.files],
    )


def room_json(room: records.Room, owner: records.User) -> dict[str, Any]:
    return {
        "id": room.id,
        "name": room.name,
        "topic": room.topic,
        "join_policy": room.join_policy,
        "owner": user_json(owner),
        "member_count": room.member_count,
        "last_seq": room.last_seq,
        "avatar": room.avatar,
    }


def member_json(member: records.Member) -> dict[str, Any]:
    return {"user": user_json(member.user), "role": member.role, "joined": member.joined}
