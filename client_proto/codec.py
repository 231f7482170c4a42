"""JSON and msgpack codecs behind one interface: bytes in, frames out.

Pure functions, no I/O. The server decodes `ClientFrame`s and encodes
`ServerFrame`s; a client does the reverse. Every decoding failure raises
`FrameError` carrying the docs/protocol.md §7 code to answer with:

- not decodable, or not an object     -> `bad_frame`
- an `op` this side does not know     -> `unknown_op`
- a known op with wrong/missing fields -> `invalid` (the message names the field)
"""

from __future__ import annotations

import functools
import re
from typing import Any, Final

import msgspec

from .errors import ErrorCode, FrameError
from .frames import ClientFrame, Ref, ServerFrame

JSON_SUBPROTOCOL: Final = "chat.v1.json"
MSGPACK_SUBPROTOCOL: Final = "chat.v1.msgpack"
SUBPROTOCOLS: Final = (JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL)

_PATH = re.compile(r" - at `(\$[^`]*)`$")


class _Envelope(msgspec.Struct):
    """What can still be read from a frame that failed validation."""

    ref: Ref = None


class Codec:
    """Encodes frames to bytes and decodes bytes to frames of one direction.

    `binary` tells whether frames travel as binary (msgpack) or text (JSON)
    WebSocket frames. `decode` accepts `bytes` or `str`.
    """

    __slots__ = ("name", "binary", "_encode", "_decode", "_decode_envelope")

    def __init__(self, name: str, decode_as: Any):
        if name == JSON_SUBPROTOCOL:
            self.binary = False
            self._encode = msgspec.json.Encoder().encode
            self._decode = msgspec.json.Decoder(decode_as).decode
            self._decode_envelope = msgspec.json.Decoder(_Envelope).decode
        elif name == MSGPACK_SUBPROTOCOL:
            self.binary = True
            self._encode = msgspec.msgpack.Encoder().encode
            self._decode = msgspec.msgpack.Decoder(decode_as).decode
            self._decode_envelope = msgspec.msgpack.Decoder(_Envelope).decode
        else:
            raise ValueError(f"unknown sub-protocol {name!r}")
        self.name = name

    def encode(self, frame: msgspec.Struct) -> bytes:
        return self._encode(frame)

    def decode(self, data: bytes | str) -> Any:
        try:
            if self.binary and isinstance(data, str):
                data = data.encode()  # msgspec's msgpack decoder takes bytes only
            return self._decode(data)
        except msgspec.ValidationError as exc:
            raise self._validation_error(data, str(exc)) from None
        # UnicodeError: invalid UTF-8 in, or lone surrogates in a `str`;
        # RecursionError: nesting deeper than msgspec's limit.
        except (msgspec.DecodeError, UnicodeError, RecursionError) as exc:
            raise FrameError(ErrorCode.BAD_FRAME, f"undecodable frame: {exc}") from None

    def _validation_error(self, data: bytes | str, reason: str) -> FrameError:
        match = _PATH.search(reason)
        path = match.group(1) if match else "$"
        text = reason[: match.start()] if match else reason
        if path == "$" and text.startswith("Expected `object`"):
            return FrameError(ErrorCode.BAD_FRAME, "a frame must be an object with `op`")
        ref = self._readable_ref(data)
        if path == "$.op":
            return FrameError(ErrorCode.UNKNOWN_OP, f"unknown op ({text})", ref)
        if path == "$" and "`op`" in text:
            return FrameError(ErrorCode.INVALID, "a frame must have an `op`", ref)
        missing = re.match(r"Object missing required field `([^`]+)`", text)
        if missing:
            where = "" if path == "$" else f" in {path.removeprefix('$.')}"
            return FrameError(ErrorCode.INVALID, f"missing field `{missing.group(1)}`{where}", ref)
        field = path.removeprefix("$.") if path != "$" else "frame"
        return FrameError(ErrorCode.INVALID, f"{field}: {text}", ref)

    def _readable_ref(self, data: bytes | str) -> int | str | None:
        try:
            return self._decode_envelope(data).ref
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            return None


@functools.cache
def server_codec(subprotocol: str | None) -> Codec:
    """The codec a server uses for a connection that chose `subprotocol` (JSON if none).

    Codecs hold no state, so one instance per sub-protocol serves every connection.
    """
    return Codec(subprotocol or JSON_SUBPROTOCOL, ClientFrame)


@functools.cache
def client_codec(subprotocol: str | None) -> Codec:
    """The codec a client uses after the server chose `subprotocol` (JSON if none)."""
    return Codec(subprotocol or JSON_SUBPROTOCOL, ServerFrame)
