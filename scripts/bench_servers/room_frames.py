"""What the reference servers share: rooms with a seq, and the chat server's frames.

`join` is answered `ok`; `send` gets the room's next seq, an `ack` for the
sender, and one encoded `message` for every member (the sender included).
"""

from __future__ import annotations

import secrets
import time

import msgspec


class In(msgspec.Struct):
    op: str
    room: str = ""
    text: str = ""
    cid: str | None = None
    ref: int | str | None = None


decode = msgspec.json.Decoder(In).decode
encode = msgspec.json.Encoder().encode
SENDER = {"id": "u_" + secrets.token_hex(8), "name": "bench", "display": "bench", "bot": True}


class Room:
    __slots__ = ("members", "seq")

    def __init__(self) -> None:
        self.members: set = set()
        self.seq = 0


ROOMS: dict[str, Room] = {}


def join(m: In, member) -> bytes:
    """Add `member` to the room; the `ok` to send back."""
    ROOMS.setdefault(m.room, Room()).members.add(member)
    return encode({"op": "ok", "ref": m.ref})


def leave(room: str, member) -> None:
    if room in ROOMS:
        ROOMS[room].members.discard(member)


def post(m: In) -> tuple[bytes, bytes, Room]:
    """The `ack`, the `message` (encoded once) and the room whose members get it."""
    room = ROOMS.setdefault(m.room, Room())
    room.seq += 1
    ts = time.time_ns() // 1_000_000
    mid = "m_" + secrets.token_hex(8)
    ack = encode({"op": "ack", "room": m.room, "seq": room.seq, "id": mid, "ts": ts, "dup": False, "ref": m.ref})
    message = encode({"op": "message", "room": m.room, "seq": room.seq, "id": mid, "ts": ts, "from": SENDER,
                      "kind": "text", "text": m.text, "cid": m.cid})
    return ack, message, room
