"""A WebSocket connection after its handshake: our own frame reader on the raw transport.

aiohttp answers the HTTP upgrade request; `ws.py` then takes the transport
over with this protocol: aiohttp's `WebSocketResponse`, its reader, queue,
writer, the request and the handler's coroutines cost ~13 KiB of RSS per idle
connection (18.5 KiB with them, 5.0 KiB without, in `scripts/bench_fanout.py
--scenario idle`); this reader holds a few slots and no coroutine. It parses client
frames (RFC 6455 §5: masked, possibly fragmented, control frames between
fragments), hands each complete message to its `Peer`, answers pings, and
follows the closing handshake of docs/protocol.md §8.3: once the peer
answers our close frame, or closes first, TCP ends at once; a peer that
does not answer is cut after `CLOSE_GRACE` (armed by whoever sent the close).
A frame over `max_size` closes 1009 as soon as its header says so; a frame
RFC 6455 forbids closes 1002, a text frame of invalid UTF-8 1007.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Protocol

from client_proto.errors import CloseCode

from . import wsframe

# Close codes a peer may send (RFC 6455 §7.4): the rest is a protocol error.
_PEER_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})
_PROTOCOL_ERROR = 1002
_BAD_DATA = 1007
MAX_INBOX = 64  # frames waiting for the session before reading pauses (aiohttp's queue did the same)


class Peer(Protocol):
    """What the reader reports to (the session of `ws.py`)."""

    def on_message(self, data: str | bytes) -> None: ...
    def on_failed(self, code: int) -> None: ...
    def server_closed(self) -> bool: ...
    def on_lost(self) -> None: ...
    def write(self, data: bytes) -> None: ...
    last_seen: float


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR with the 4-byte mask, as one big-integer operation (C speed, no per-byte loop)."""
    n = len(payload)
    if not n:
        return payload
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class BorrowedSocket(socket.socket):
    """The transport's own socket, for `send(2)` straight to the kernel; it never closes the descriptor.

    A connection's frames go out with one `send` on this socket while nothing of
    the connection's waits in the transport's buffer (`Connection.write`, and the
    fan-out's loop `hub._Room.flush`) instead of `transport.write`, which under
    uvloop queues the frame and writes it with `write(2)` at the end of the loop
    turn: 11-17 % less CPU in the fan-out's loop (docs/performance.md, "Sending
    straight to the kernel").

    The descriptor stays the transport's. This object lets go of it (`detach`:
    its number becomes -1, so a send fails with EBADF and the caller falls back
    to the transport): `FrameReader` detaches it once the peer's close frame is
    answered (no data frame may follow it) and in `connection_lost`, which uvloop
    and asyncio both call before they close the descriptor, so a send never
    reaches a number the kernel has since given to a newer connection. Dropping
    the object detaches too, where a plain socket would close the transport's
    descriptor under it.
    """

    __slots__ = ()

    @classmethod
    def of(cls, transport: asyncio.Transport) -> "BorrowedSocket":
        borrowed = cls(fileno=transport.get_extra_info("socket").fileno())
        borrowed.setblocking(False)  # as the transport has it: a full kernel buffer raises, never waits
        return borrowed

    def __del__(self) -> None:
        self.detach()


class FrameReader(asyncio.Protocol):
    """The transport's protocol once the handshake is done."""

    __slots__ = (
        "transport", "socket", "peer", "max_size", "_buf", "_frag_op", "_frags", "_frag_size", "_skip", "_closed",
    )

    def __init__(self, transport: asyncio.Transport, socket: BorrowedSocket, peer: Peer, max_size: int):
        self.transport = transport
        self.socket = socket  # the fan-out's direct path to the kernel (hub._Room.flush); given back on close
        self.peer = peer
        self.max_size = max_size
        self._buf = b""
        self._frag_op = 0
        self._frags: list[bytes] | None = None  # the fragments of a message in progress
        self._frag_size = 0
        self._skip = 0  # bytes of a refused frame still to throw away (after a 1009/1002 we sent)
        self._closed = False  # the peer's close frame came (or the stream is unusable): read nothing more

    # -------------------------------------------------------------- asyncio.Protocol

    def connection_lost(self, exc: BaseException | None) -> None:
        self.socket.detach()  # first: the transport closes the descriptor right after this returns
        self._closed = True
        self.peer.on_lost()

    def eof_received(self) -> bool:
        return False  # the transport closes itself

    def data_received(self, data: bytes) -> None:
        self.peer.last_seen = time.monotonic()
        if self._closed:
            return
        if self._skip:
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = data[dropped:]
        buf = self._buf + data if self._buf else data
        n = len(buf)
        pos = 0
        while n - pos >= 2 and not self._closed:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            head = pos + 2
            if length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 4], "big")
                head = pos + 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 10], "big")
                head = pos + 10
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            problem = self._check(b0, b1, opcode, fin, length)
            if problem:
                # The header tells how long the refused frame is: throw it away and go on reading, for
                # the peer's answer to our close frame.
                rest = head + 4 + length - n
                self._skip = max(0, rest)
                pos = min(n, head + 4 + length)
                self._fail(problem)
                continue
            end = head + 4 + length
            if end > n:
                break
            payload = unmask(buf[head + 4:end], buf[head:head + 4])
            pos = end
            self._frame(opcode, fin, payload)
        self._buf = buf[pos:] if pos < n and not self._closed else b""

    # -------------------------------------------------------------- frames

    def _check(self, b0: int, b1: int, opcode: int, fin: int, length: int) -> int:
        """The close code a frame header calls for (0: fine). Once we closed, only a close frame matters."""
        if b0 & 0x70 or not b1 & 0x80:
            return _PROTOCOL_ERROR  # a reserved bit without an extension, or an unmasked client frame
        if opcode >= 8:
            if opcode > 10 or not fin or length > 125:
                return _PROTOCOL_ERROR
            return 0
        if opcode > 2 or (opcode == 0) == (self._frags is None):
            return _PROTOCOL_ERROR  # reserved opcode; a continuation of nothing, or a new message inside one
        if self._frag_size + length > self.max_size:
            return CloseCode.TOO_BIG
        return 0

    def _frame(self, opcode: int, fin: int, payload: bytes) -> None:
        if opcode == wsframe.OP_PING:
            self.peer.write(wsframe.build(payload, wsframe.OP_PONG))
        elif opcode == wsframe.OP_CLOSE:
            self._peer_close(payload)
        elif opcode == wsframe.OP_PONG:
            pass  # `last_seen` is all a pong is for
        elif self.peer.server_closed():
            pass  # closing: the peer's data is no longer taken (its close answer is what we wait for)
        elif opcode:  # a new message
            if fin:
                self._message(opcode, payload)
            else:
                self._frag_op, self._frags, self._frag_size = opcode, [payload], len(payload)
        else:  # a continuation
            self._frags.append(payload)
            self._frag_size += len(payload)
            if fin:
                whole = b"".join(self._frags)
                self._frags, self._frag_size = None, 0
                self._message(self._frag_op, whole)

    def _message(self, opcode: int, payload: bytes) -> None:
        if opcode == wsframe.OP_TEXT:
            try:
                text = payload.decode()
            except UnicodeDecodeError:
                self._fail(_BAD_DATA)
                return
            self.peer.on_message(text)
        else:
            self.peer.on_message(payload)

    def _peer_close(self, payload: bytes) -> None:
        """The peer's close frame: the answer to ours, or its own close, which we answer. TCP ends now."""
        code, problem = 1000, 0  # a close frame without a code is answered with a normal close
        if payload:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 0
            if code not in _PEER_CODES and not 3000 <= code <= 4999:
                problem = _PROTOCOL_ERROR
            else:
                try:
                    payload[2:].decode()
                except UnicodeDecodeError:
                    problem = _BAD_DATA
        self._closed = True
        self.socket.detach()  # after the close frame, no data frame may follow it (RFC 6455 §5.5.1)
        if not self.peer.server_closed():
            if problem:
                self._fail(problem)  # our close frame names what was wrong with theirs
            else:
                self.peer.write(wsframe.close_frame(code))  # echo the peer's code (RFC 6455 §5.5.1)
        self.transport.close()

    def _fail(self, code: int) -> None:
        """Refuse what the peer sent: close with `code` (unless we closed already); its answer ends TCP."""
        self._frags, self._frag_size = None, 0
        self.peer.on_failed(code)

