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
        update=frames.Update(**m.update) if m.update is not None else None,
        reply=frames.Reply(
            seq=m.reply.seq, from_=user_frame(m.reply.sender) if m.reply.sender else None, excerpt=m.reply.excerpt
        ) if m.reply is not None else None,
        edited_ts=m.edited_ts,
        reactions=[frames.Reaction(r.emoji, r.count, r.me) for r in m.reactions] if m.reactions is not None else None,
        # Folded state, shown where reactions are (history): `pinned` false is worth saying there.
        pinned=m.pinned if m.reactions is not None else (True if m.pinned else None),
        files=None if m.recalled or not m.files else [frames.FileInfo(**f) for f in m.files],
    )


def room_json(room: records.Room, owner: records.User) -> dict[str, Any]:
    body = {
        "id": room.id,
        "name": room.name,
        "topic": room.topic,
        "join_policy": room.join_policy,
        "owner": user_json(owner),
        "member_count": room.member_count,
        "last_seq": room.last_seq,
        "kind": room.kind,
        "avatar": room.avatar,
    }
    if room.mentions is not None:
        body["mentions"] = room.mentions
    return body


def member_json(member: records.Member) -> dict[str, Any]:
    return {"user": user_json(member.user), "role": member.role, "joined": member.joined}
