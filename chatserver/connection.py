"""One client connection: who it is, which rooms it hears, and its bounded outgoing buffer.

Frames are queued as ready-made WebSocket bytes and written to the transport
once per event-loop turn (all frames that piled up for a connection in that
turn go to the kernel in one write). A room's fan-out is queued on the room,
not on each member (see `Flusher`). The transport's write buffer after a
write is the slow-consumer measure: past `send_buffer` bytes the connection
is closed with 4009 and receives nothing more.

A close the server decides for any other reason (4001, 4008, 1001, 1008) is
deferred until the connection has been answered for every frame it accepted
(docs/protocol.md §8.2: nothing accepted goes unanswered), at most `OWED_WAIT`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING, Any

from client_proto.codec import Codec
from client_proto.errors import CloseCode

from . import wsframe

if TYPE_CHECKING:
    from storage.records import User

    from .hub import Hub
    from .wsproto import BorrowedSocket

CLOSE_GRACE = 5.0  # seconds a peer gets to answer our close frame before the socket is cut
OWED_WAIT = 3.0  # seconds a server-initiated close waits for the answers the connection is owed


class Flusher:
    """Writes what piled up in this loop turn, at its end: each connection's own frames, then each room's.

    A room's frames (the hub's fan-out) are queued once per room, not once per
    member, and written to every member in one go (`hub._Room.flush`); a
    connection's own frames (acks, replies, catch-up) go first, so an ack
    still precedes the message it acknowledges.
    """

    __slots__ = ("_loop", "_dirty", "_rooms", "_scheduled")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._dirty: list[Connection] = []
        self._rooms: list[Any] = []  # anything with a `flush()`: the hub's rooms
        self._scheduled = False

    def mark(self, conn: "Connection") -> None:
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def mark_room(self, room: Any) -> None:
        self._rooms.append(room)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        self.flush_now()

    def flush_now(self) -> None:
        """Write everything queued so far (also early, e.g. before a member leaves a room it has frames in)."""
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.flush()
        rooms, self._rooms = self._rooms, []
        for room in rooms:
            room.flush()


class _Behind:
    """`Connection.direct` while the transport holds some of the connection's bytes: takes none itself."""

    __slots__ = ()

    def send(self, data: bytes) -> int:
        return 0


BEHIND = _Behind()


class Flag:
    """A one-way `asyncio.Event` (set once, never cleared) at a fifth of its memory.

    Every connection holds two; an `asyncio.Event` carries its own deque of
    waiters (about 860 bytes in all), although almost nobody ever waits.
    """

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(None)
        self._waiters = None

    async def wait(self) -> None:
        if self._set:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter  # a cancelled waiter is cancelled with its future; set() skips it


class Connection:
    """A WebSocket session of one user on this node.

    `holding` maps a room to the live frames that arrived while the
    connection was catching up on that room from storage; the hub drains it
    once the catch-up is sent, so live frames never overtake replayed ones.
    """

    __slots__ = (
        "user",
        "token_hash",
        "session",
        "codec",
        "rooms",
        "holding",
        "last_seen",
        "closed",
        "close_code",
        "transport",
        "socket",
        "direct",
        "_flusher",
        "_pending",
        "_queued",
        "send_buffer",
        "_abort_timer",
        "_hub",
        "owed",
        "closing",
        "done",
        "ready",
        "resumed",
        "stale",
        "__weakref__",
    )

    def __init__(
        self,
        *,
        transport: asyncio.Transport,
        socket: "BorrowedSocket",
        user: "User",
        token_hash: str,
        codec: Codec,
        flusher: Flusher,
        send_buffer: int,
        hub: "Hub | None" = None,
    ):
        self.user = user
        self.token_hash = token_hash
        self.session = secrets.token_hex(8)
        self.codec = codec
        self.rooms: set[str] = set()
        self.holding: dict[str, list[tuple[int, bytes]]] = {}
        self.last_seen = time.monotonic()
        self.closed = False
        self.close_code: int | None = None
        self.transport = transport
        self.socket = socket  # the transport's (`wsproto.BorrowedSocket`)
        # Where a write goes first: `socket` while nothing of this connection's waits in the transport's
        # buffer, so a frame sent straight to the kernel cannot overtake (or split) one queued there;
        # `BEHIND` otherwise, and from the start (the handshake's bytes may still be queued).
        self.direct: "BorrowedSocket | _Behind" = BEHIND
        self._flusher = flusher
        self._pending: list[bytes] = []
        self._queued = False
        self.send_buffer = send_buffer
        self._abort_timer: asyncio.TimerHandle | None = None
        self._hub = hub  # told when the server decides to close, so presence drops this connection at once
        # Frames accepted and not yet answered; a server-initiated close waits for them.
        self.owed = 0
        # (code, reason) of a close that waits for `owed` to reach 0; no new frame is accepted meanwhile.
        self.closing: tuple[int, str] | None = None
        self.done = Flag()
        # Set once `welcome` is queued: nothing of a room may be sent before it.
        self.ready = Flag()
        # False until hello's resume attached every room: a catch-up after a bus outage (or a join
        # heard meanwhile) must not attach them first from the read marker (or the join); it marks
        # the connection `stale` and hello checks the memberships once its resume is done.
        self.resumed = False
        self.stale = False

    @property
    def binary(self) -> bool:
        return self.codec.binary

    def push(self, data: bytes, first: bool = False) -> None:
        """Queue one ready-made frame (`first`: ahead of those queued); written at the end of this loop turn."""
        if self.closed:
            return
        if first:
            self._pending.insert(0, data)
        else:
            self._pending.append(data)
        if not self._queued:
            self._queued = True
            self._flusher.mark(self)

    def send(self, frame: Any, first: bool = False) -> None:
        """Encode a frame with this connection's codec and queue it."""
        self.push(wsframe.data_frame(self.codec.encode(frame), self.codec.binary), first)

    def greet(self, welcome: Any) -> None:
        """Queue the `welcome` ahead of anything queued during the hello and let frames go out.

        The connection hears its user's events (a `notify`) from its registration on, before
        its welcome can be built; nothing is written before the welcome (`flush` waits for `ready`).
        """
        self.ready.set()
        self.send(welcome, first=True)

    def flush(self) -> None:
        self._queued = False
        if self.closed or not self._pending or not self.ready.is_set():
            return
        pending, self._pending = self._pending, []
        if self.write(pending[0] if len(pending) == 1 else b"".join(pending)):
            self.close_slow()

    def write(self, data: bytes) -> bool:
        """Write after everything written before; True when the connection is now over its send buffer.

        Every write of a connection goes through here (the fan-out inlines its first step,
        `hub._Room.flush`): straight to the kernel with one `send(2)` while nothing waits in
        the transport, else behind what waits there.
        """
        try:
            sent = self.direct.send(data)
        except OSError:  # the kernel's buffer is full, or the socket is closing (detached)
            sent = 0
        return sent != len(data) and self.write_behind(data, sent)

    def write_behind(self, data: bytes, sent: int) -> bool:
        """Queue in the transport what the kernel did not take of `data` (`sent` bytes went straight)."""
        transport = self.transport
        if self.closed or transport.is_closing():
            return False  # the peer is gone, or we closed: the session ends and detaches it
        if self.direct is BEHIND and not transport.get_write_buffer_size():
            self.direct = self.socket  # the transport wrote out what it held: straight to the kernel again
            return self.write(data)
        self.direct = BEHIND
        transport.write(data[sent:])
        return transport.get_write_buffer_size() > self.send_buffer

    def close_slow(self) -> None:
        self.close(CloseCode.SLOW_CONSUMER, "slow consumer: reconnect and resume")

    def accept(self) -> None:
        """A frame was accepted: the connection is owed its answer."""
        self.owed += 1

    def settle(self) -> None:
        """An accepted frame was answered; a close waiting for it may now go out."""
        self.owed -= 1
        if self.owed <= 0 and self.closing is not None and not self.closed:
            self._close_now(*self.closing)

    @property
    def accepting(self) -> bool:
        """Whether a new frame from the peer is taken (not after the server decided to close)."""
        return not self.closed and self.closing is None

    def close(self, code: int, reason: str = "") -> None:
        """Close once what the connection is owed is answered (at most `OWED_WAIT`), then nothing more.

        A slow consumer (4009) is closed at once: it is owed nothing it could read.
        The read loop goes on until the peer answers with its own close frame, so
        the peer sees a clean closing handshake and the code (4001, 1001, ...),
        not an abrupt 1006; a silent peer is cut after `CLOSE_GRACE`.
        """
        if self.closed or (self.closing is not None and code != CloseCode.SLOW_CONSUMER):
            return
        if self._hub is not None:
            self._hub.closing(self, code)
        if code == CloseCode.SLOW_CONSUMER or self.owed <= 0:
            self._close_now(code, reason)
            return
        self.closing = (code, reason)
        self._abort_timer = asyncio.get_running_loop().call_later(OWED_WAIT, self._close_now, code, reason)

    def _close_now(self, code: int, reason: str) -> None:
        if self.closed:
            return
        if self._abort_timer is not None:
            self._abort_timer.cancel()
        if code != CloseCode.SLOW_CONSUMER:
            # What is already queued (e.g. the `rate_limited` or `bad_frame` errors that explain
            # this close) goes out before the close frame.
            self.flush()
            if self.closed:  # the flush itself found the buffer over its cap
                return
        self._stop(code)
        if not self.transport.is_closing():
            self.transport.write(wsframe.close_frame(code, reason))
        self._abort_timer = asyncio.get_running_loop().call_later(CLOSE_GRACE, self._abort)

    def fail(self, code: int) -> None:
        """Close at once, owed answers or not: what the peer sends can no longer be read (1002, 1007, 1009)."""
        if self.closed:
            return
        if self._hub is not None:
            self._hub.closing(self, code)
        self._close_now(code, "")

    def abort(self, code: int) -> None:
        """Cut a peer that is gone (no answer to pings): no closing handshake to wait for."""
        if not self.closed:
            if self._hub is not None:
                self._hub.closing(self, code)
            self._stop(code)
        self._abort()

    def _stop(self, code: int) -> None:
        """Nothing more goes out: what is queued is dropped."""
        self.closed = True
        self.direct = BEHIND
        self.close_code = code
        self._pending.clear()

    def _abort(self) -> None:
        if not self.transport.is_closing():
            self.transport.abort()

    def finish(self) -> None:
        """The session is over (its handler is returning): stop the grace timer, wake waiters."""
        self.closed = True
        if self._abort_timer is not None:
            self._abort_timer.cancel()
        self.done.set()

    async def wait_closed(self) -> None:
        """Until the session is over (the peer answered the close, or was cut after the grace)."""
        await self.done.wait()
