"""Server-to-client WebSocket frames built once and written as plain bytes.

Server frames are never masked (RFC 6455 §5.1), so one frame's bytes are the
same for every recipient: the hub builds them once per codec and hands the
same object to every member's transport. Compression is off on our
connections, so no RSV bit is ever set.
"""

from __future__ import annotations

import struct

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_FIN = 0x80


def build(payload: bytes, opcode: int) -> bytes:
    """One complete unmasked frame with FIN set."""
    length = len(payload)
    if length < 126:
        header = bytes((_FIN | opcode, length))
    elif length < 65536:
        header = struct.pack("!BBH", _FIN | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", _FIN | opcode, 127, length)
    return header + payload


def data_frame(payload: bytes, binary: bool) -> bytes:
    return build(payload, OP_BINARY if binary else OP_TEXT)


def close_frame(code: int, reason: str = "") -> bytes:
    return build(struct.pack("!H", code) + reason.encode()[:120], OP_CLOSE)


PING = build(b"", OP_PING)
