"""Error codes and close codes of docs/protocol.md §7 and §8.1, named once for server and clients."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    """The `code` of an `error` frame (docs/protocol.md §7)."""

    BAD_FRAME = "bad_frame"
    UNKNOWN_OP = "unknown_op"
    INVALID = "invalid"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class CloseCode(IntEnum):
    """WebSocket close codes the server uses (docs/protocol.md §8.1)."""

    GOING_AWAY = 1001
    POLICY = 1008
    TOO_BIG = 1009
    UNAUTHORIZED = 4001
    FLOODING = 4008
    SLOW_CONSUMER = 4009


class FrameError(ValueError):
    """A frame could not be decoded; `code` says which §2.4 error to answer with.

    `ref` is the client's `ref` when it could still be read, so the error reply
    can carry it.
    """

    def __init__(self, code: ErrorCode, message: str, ref: int | str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref
