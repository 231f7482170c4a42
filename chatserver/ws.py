"""`GET /ws`: the upgrade, then the session of one WebSocket connection.

A connection's life: handshake checks (origin, capacity) → the upgrade, after
which the socket is ours (`wsproto.FrameReader`), not aiohttp's → `hello`
within `hello_timeout` → `welcome` → catch-up of every room (resume) → each
frame answered in order. Sends are queued for the group commit without
waiting, so one connection can pipeline them; every other op is answered
before the next frame is taken.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import hashlib
import logging

from aiohttp import web

from client_proto import frames
from client_proto.codec import SUBPROTOCOLS, Codec, server_codec
from client_proto.errors import CloseCode, ErrorCode, FrameError
from storage import rooms as room_store
from storage.db import StorageUnavailable, now_ms
from storage.records import Stored
from storage.tokens import hash_token

from . import keys, logs, wsframe
from .connection import CLOSE_GRACE, Connection
from .errors import ServiceError
from .http.errors import json_error
from .ratelimit import TokenBucket
from .views import message_frame, user_frame
from .wsproto import MAX_INBOX, BorrowedSocket, FrameReader

log = logging.getLogger(__name__)

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
BAD_FRAME_BURST = 20  # bad frames tolerated in a burst before closing 1008
TYPING_RATE, TYPING_BURST = 2.0, 5  # typing events a second per connection


def origin_allowed(request: web.Request, allowed: tuple[str, ...]) -> bool:
    """No Origin (bots, tools), the server's own origin, or one on the allow-list."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    origin = origin.rstrip("/")
    if origin in allowed or "*" in allowed:
        return True
    own_hosts = {request.host}
    return any(origin == f"{scheme}://{host}" for scheme in ("http", "https") for host in own_hosts)


async def handle(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings = app[keys.SETTINGS]
    hub = app[keys.HUB]
    if not origin_allowed(request, settings.allowed_origins):
        return json_error(403, ErrorCode.FORBIDDEN, "this origin may not open a WebSocket here")
    if hub.draining:
        return json_error(503, ErrorCode.UNAVAILABLE, "the server is shutting down; try another node")
    if hub.connection_count >= settings.max_connections:
        return json_error(503, ErrorCode.UNAVAILABLE, "the server is at its connection limit")
    probe = web.WebSocketResponse(protocols=SUBPROTOCOLS)
    ready = probe.can_prepare(request)
    if not ready.ok:
        await probe.prepare(request)  # raises aiohttp's own HTTP error for a bad upgrade request
    return _take_over(request, ready.protocol)


class _TakenOver(web.StreamResponse):
    """What the handler returns once the connection is ours: aiohttp has nothing left to write."""

    async def prepare(self, request):
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def _take_over(request: web.Request, subprotocol: str | None) -> web.StreamResponse:
    """Answer the upgrade ourselves and hand the transport to `FrameReader`; aiohttp forgets it.

    aiohttp's `WebSocketResponse` with its reader, queue and writer, the request,
    the request handler's task and the handler's coroutine frames would stay as long
    as the connection: an idle connection's RSS goes from ~18 KiB with them to ~5
    without (`scripts/bench_fanout.py --scenario idle`, docs/performance.md). After this, a connection is
    a `FrameReader`, a `_Session` and a `Connection`, and no coroutine runs for it
    while it is idle.
    """
    app = request.app
    transport = request.transport
    handler = request.protocol  # aiohttp's RequestHandler: HTTP on this socket ends here
    accept = base64.b64encode(hashlib.sha1(request.headers["Sec-WebSocket-Key"].encode() + _WS_GUID).digest())
    head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    head += b"Sec-WebSocket-Accept: " + accept + b"\r\n"
    if subprotocol:
        head += b"Sec-WebSocket-Protocol: " + subprotocol.encode() + b"\r\n"
    transport.write(head + b"\r\n")
    # Bytes the client sent right behind its upgrade request (a pipelined hello) wait in aiohttp's
    # HTTP parser for a WebSocket reader: they are ours.
    tail = getattr(handler, "_message_tail", b"")
    borrowed = BorrowedSocket.of(transport)
    session = _Session(app, server_codec(subprotocol), transport, borrowed)
    reader = FrameReader(transport, borrowed, session, app[keys.SETTINGS].max_frame)
    transport.set_protocol(reader)
    # aiohttp's server drops its handler; without its transport it cannot close ours on the way out.
    handler.transport = None
    handler.connection_lost(None)
    transport.resume_reading()  # in case aiohttp had paused it
    session.begin()
    if tail:
        reader.data_received(tail)
    return _TakenOver(status=101)


class _Session:
    """One WebSocket connection from its handshake to its close (the `Peer` of its `FrameReader`).

    Frames are answered in order, one at a time: they wait in `inbox` while a task
    works through them, and that task ends when the inbox is empty, so an idle
    connection has no coroutine (and no coroutine frames) at all.
    """

    __slots__ = (
        "transport", "socket", "app", "settings", "hub", "metrics", "accounts", "messages", "rooms", "codec", "conn",
        "send_bucket", "flood_bucket", "bad_bucket", "typing_bucket", "inbox", "task", "hello_timer",
        "closed", "gone", "context",
    )

    def __init__(self, app: web.Application, codec: Codec, transport, socket: BorrowedSocket):
        self.transport = transport
        self.socket = socket  # the connection's, once hello registers it
        self.app = app
        self.settings = app[keys.SETTINGS]
        self.hub = app[keys.HUB]
        self.metrics = app[keys.METRICS]
        self.accounts = app[keys.ACCOUNTS]
        self.messages = app[keys.MESSAGES]
        self.rooms = app[keys.ROOMS]
        self.codec = codec
        self.conn: Connection | None = None
        self.send_bucket = TokenBucket(self.settings.send_rate, self.settings.send_burst)
        self.flood_bucket = TokenBucket(self.settings.send_rate, self.settings.send_burst)
        self.bad_bucket = TokenBucket(1.0, BAD_FRAME_BURST)
        self.typing_bucket = TokenBucket(TYPING_RATE, TYPING_BURST)
        self.inbox: list[str | bytes] | None = None
        self.task: asyncio.Task | None = None
        self.hello_timer: asyncio.TimerHandle | None = None
        self.closed = False  # we sent a close frame before the connection was registered (a refusal)
        self.gone = False  # the socket is closed
        # The log fields of this connection (`logs.bind`): every task that answers its frames runs in it.
        self.context: contextvars.Context | None = None

    # ------------------------------------------------------------------ the reader's callbacks

    @property
    def last_seen(self) -> float:
        return self.conn.last_seen if self.conn is not None else 0.0

    @last_seen.setter
    def last_seen(self, when: float) -> None:
        """Any bytes from the peer (a pong too) count as a sign of life for the heartbeat (`Hub._beat`)."""
        if self.conn is not None:
            self.conn.last_seen = when

    def begin(self) -> None:
        self.hello_timer = asyncio.get_running_loop().call_later(self.settings.hello_timeout, self._no_hello)

    def on_message(self, data: str | bytes) -> None:
        if self.inbox is None:
            self.inbox = [data]
        else:
            self.inbox.append(data)
            if len(self.inbox) > MAX_INBOX:
                self.transport.pause_reading()  # resumed once the inbox is worked through
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._work(), context=self.context)

    def server_closed(self) -> bool:
        return self.closed or (self.conn is not None and (self.conn.closed or not self.conn.accepting))

    def write(self, data: bytes) -> None:
        """Bytes of our own (a pong, a refusal, a close frame): behind the connection's frames once it has one."""
        if self.conn is not None:
            self.conn.write(data)  # keeps `direct` right: nothing may overtake bytes the transport holds
        else:
            self.transport.write(data)

    def on_failed(self, code: int) -> None:
        """The peer sent what RFC 6455 forbids (1002, 1007) or a frame over `max_frame` (1009): close now."""
        self.metrics.closes.labels("frame_too_large" if code == CloseCode.TOO_BIG else "protocol_error").inc()
        if self.conn is not None:
            self.conn.fail(code)
        elif not self.closed:
            self._close_unregistered(code, "")

    def on_lost(self) -> None:
        self.gone = True
        if self.hello_timer is not None:
            self.hello_timer.cancel()
            self.hello_timer = None
        self.inbox = None
        if self.conn is not None:
            self.hub.unregister(self.conn)
            self.conn.finish()

    # ------------------------------------------------------------------ lifetime

    async def _work(self) -> None:
        """Answer the frames of the inbox in order, then end (a new frame starts another run)."""
        try:
            while self.inbox and not self.gone:
                data = self.inbox.pop(0)
                if not self.inbox and not self.transport.is_reading():
                    self.transport.resume_reading()  # paused by `on_message` at `MAX_INBOX` frames
                if self.conn is None:
                    if self.closed:
                        continue  # refused: only the peer's close answer matters now
                    await self._start(data)
                elif self.conn.accepting:  # after the server decided to close, frames are not taken
                    await self._on_frame(data)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.task = None

    def _no_hello(self) -> None:
        self.hello_timer = None
        if self.conn is None and not self.closed and self.task is None:
            self._refuse(ErrorCode.UNAUTHORIZED, "send hello first (within "
                         f"{self.settings.hello_timeout:g} s)", CloseCode.UNAUTHORIZED)

    async def _start(self, data: str | bytes) -> None:
        """Hello, authentication, `welcome` and the rooms (or a refusal and a close)."""
        if self.hello_timer is not None:
            self.hello_timer.cancel()
            self.hello_timer = None
        hello = self._hello(data)
        if hello is None:
            return
        user = await self._authenticate(hello)
        if user is None or self.gone:
            return
        if self.hub.user_connection_count(user.id) >= self.settings.max_user_connections:
            # `rate_limited` carries `retry_after` and is followed by 4008 (docs/protocol.md §4.1); a place
            # frees when one of the user's connections closes, a silent one within two heartbeats.
            self._refuse(
                ErrorCode.RATE_LIMITED, "too many connections for this user", CloseCode.FLOODING, hello.ref,
                retry_after=int(self.settings.heartbeat * 1000),
            )
            return
        conn = Connection(
            transport=self.transport,
            socket=self.socket,
            user=user,
            token_hash=hash_token(hello.token),
            codec=self.codec,
            flusher=self.app[keys.FLUSHER],
            send_buffer=self.settings.send_buffer,
            hub=self.hub,
        )
        self.conn = conn
        logs.bind(session=conn.session, user=user.id)
        self.context = contextvars.copy_context()
        self.hub.register(conn)
        try:
            async with self.app[keys.DB].read() as db:
                states = await room_store.states_for_user(db, user.id)
        except StorageUnavailable:
            self.hub.unregister(conn)
            self.conn = None
            self._refuse(ErrorCode.UNAVAILABLE, "storage is unavailable; retry shortly", CloseCode.GOING_AWAY,
                         hello.ref)
            conn.finish()
            return
        if self.gone:
            return
        conn.greet(
            frames.Welcome(
                user=user_frame(user),
                session=conn.session,
                heartbeat=self.settings.heartbeat,
                limits=frames.Limits(max_frame=self.settings.max_frame, max_text=self.settings.max_text),
                rooms=[
                    frames.RoomState(id=s.id, name=s.name, last_seq=s.last_seq, read_seq=s.read_seq, unread=s.unread,
                                     mentions=s.mentions, kind=s.kind)
                    for s in states
                ],
                ref=hello.ref,
            )
        )
        resume = hello.resume or {}
        try:
            for state in states:
                await self.hub.attach(conn, state.id, after_seq=resume.get(state.id, state.last_seq))
            conn.resumed = True
            if conn.stale:  # the bus came back meanwhile: what it lost is checked against storage now
                await self.hub.revalidate([conn])
        except StorageUnavailable:
            conn.send(frames.Error(code=ErrorCode.UNAVAILABLE, message="storage is unavailable; reconnect shortly"))
            conn.close(CloseCode.GOING_AWAY, "storage unavailable")

    def _hello(self, data: str | bytes) -> frames.Hello | None:
        try:
            frame = self._decode(data)
        except FrameError as exc:
            self._refuse(ErrorCode.UNAUTHORIZED, f"the first frame must be a valid hello ({exc.message})",
                         CloseCode.UNAUTHORIZED, exc.ref)
            return None
        if not isinstance(frame, frames.Hello):
            self._refuse(ErrorCode.UNAUTHORIZED, "the first frame must be hello", CloseCode.UNAUTHORIZED,
                         getattr(frame, "ref", None))
            return None
        return frame

    async def _authenticate(self, hello: frames.Hello):
        try:
            user = await self.accounts.authenticate(hello.token, remember=False)
        except StorageUnavailable:
            self._refuse(ErrorCode.UNAVAILABLE, "storage is unavailable; retry shortly",
                               CloseCode.GOING_AWAY, hello.ref)
            return None
        if user is None:
            self._refuse(ErrorCode.UNAUTHORIZED, "invalid or revoked token", CloseCode.UNAUTHORIZED, hello.ref)
            return None
        return user

    def _refuse(
        self, code: ErrorCode, message: str, close_code: int, ref=None, retry_after: int | None = None
    ) -> None:
        """Answer with an error, then close (before the connection is registered)."""
        self.metrics.errors.labels(code).inc()
        if self.closed or self.gone:
            return
        error = frames.Error(code=code, message=message, ref=ref, retry_after=retry_after)
        self.write(wsframe.data_frame(self.codec.encode(error), self.codec.binary))
        self._close_unregistered(close_code, message)

    def _close_unregistered(self, code: int, reason: str) -> None:
        """Our close frame; the peer's answer ends TCP (`FrameReader`), a silent peer is cut after the grace."""
        self.closed = True
        self.inbox = None
        if not self.transport.is_closing():
            self.write(wsframe.close_frame(code, reason))
        asyncio.get_running_loop().call_later(CLOSE_GRACE, self._cut)

    def _cut(self) -> None:
        if not self.transport.is_closing():
            self.transport.abort()

    # ------------------------------------------------------------------ frames

    def _decode(self, data: str | bytes):
        if isinstance(data, str) and self.codec.binary:
            raise FrameError(ErrorCode.BAD_FRAME, "this connection speaks msgpack: send binary frames")
        return self.codec.decode(data)

    async def _on_frame(self, data: str | bytes) -> None:
        conn = self.conn
        ref = None
        conn.accept()
        try:
            frame = self._decode(data)
            ref = getattr(frame, "ref", None)
            await self._dispatch(frame)
        except FrameError as exc:
            self._error(exc.code, exc.message, exc.ref)
            if not self.bad_bucket.take():
                self.metrics.closes.labels("bad_frames").inc()
                conn.close(CloseCode.POLICY, "too many bad frames")
        except ServiceError as exc:
            self._error(exc.code, exc.message, ref, exc.retry_after)
        except StorageUnavailable:
            self._error(ErrorCode.UNAVAILABLE, "storage is unavailable; retry shortly", ref)
        except Exception:
            log.exception("op failed", extra={"user": conn.user.id})
            self._error(ErrorCode.INTERNAL, "internal error; it has been logged", ref)
        finally:
            conn.settle()

    def _error(self, code: str, message: str, ref=None, retry_after: int | None = None) -> None:
        self.metrics.errors.labels(code).inc()
        self.conn.send(frames.Error(code=code, message=message, ref=ref, retry_after=retry_after))

    async def _dispatch(self, frame) -> None:
        conn = self.conn
        user = conn.user
        match frame:
            case frames.Send():
                await self._send(frame)
            case frames.HistoryRequest(room=room, before=before, after=after, limit=limit, ref=ref):
                page = await self.messages.history(
                    user, room, before=before, after=after, limit=limit, known_member=room in conn.rooms
                )
                conn.send(frames.HistoryReply(room=room, messages=[message_frame(m) for m in page.messages],
                                              more=page.more, last_seq=page.last_seq, ref=ref))
            case frames.Join(room=room, ref=ref):
                await self.rooms.join(user, room)
                conn.send(frames.Ok(ref=ref))
            case frames.Leave(room=room, ref=ref):
                await self.rooms.remove_member(user, room, user.id)
                conn.send(frames.Ok(ref=ref))
            case frames.Typing(room=room):
                if room not in conn.rooms:
                    await self.messages.membership(user, room)  # raises not_found / forbidden
                if self.typing_bucket.take():
                    self.messages.typing(user, room)
            case frames.Read(room=room, seq=seq, ref=ref):
                await self.messages.read(user, room, seq, session=conn.session)
                conn.send(frames.Ok(ref=ref))
            case frames.Recall(room=room, seq=seq, ref=ref):
                await self.messages.recall(user, room, seq)
                conn.send(frames.Ok(ref=ref))
            case frames.Edit(room=room, seq=seq, text=text, ref=ref):
                if self._take_send_token():
                    entry = await self.messages.edit(user, room, seq, text)
                    conn.send(frames.Ok(seq=entry.seq, ref=ref))
            case frames.React(room=room, seq=seq, emoji=emoji, on=on, ref=ref):
                if self._take_send_token():
                    await self.messages.react(user, room, seq, emoji, on, known_member=room in conn.rooms)
                    conn.send(frames.Ok(ref=ref))
            case frames.PresenceRequest(room=room, ref=ref):
                online = await self.rooms.online(user, room)
                conn.send(frames.PresenceReply(room=room, online=online, count=len(online), ref=ref))
            case frames.Ping(ref=ref):
                conn.send(frames.Pong(ts=now_ms(), ref=ref))
            case frames.Hello(ref=ref):
                raise ServiceError(ErrorCode.INVALID, "hello was already said on this connection")

    def _take_send_token(self) -> bool:
        """The send rate limit, shared by `send`, `edit` and `react` (docs/protocol.md §5.5).

        False when the connection is being closed for sustained flooding.
        """
        if self.send_bucket.take():
            return True
        if not self.flood_bucket.take():
            self.metrics.closes.labels("flooding").inc()
            self.conn.close(CloseCode.FLOODING, "sustained flooding")
            return False
        raise ServiceError(ErrorCode.RATE_LIMITED, "sending too fast; slow down",
                           retry_after=self.send_bucket.retry_after_ms())

    async def _send(self, frame: frames.Send) -> None:
        """Queue a send for the group commit; its ack (or error) is written when it is stored."""
        conn = self.conn
        if not self._take_send_token():
            return
        ref = frame.ref

        def acked(stored: Stored) -> None:
            m = stored.message
            conn.send(frames.Ack(room=m.room_id, seq=m.seq, id=m.id, ts=m.ts, dup=stored.dup, ref=ref))
            conn.settle()

        def failed(exc: BaseException) -> None:
            if isinstance(exc, ServiceError):
                self._error(exc.code, exc.message, ref, exc.retry_after)
            else:
                self._error(ErrorCode.INTERNAL, "internal error; it has been logged", ref)
            conn.settle()

        conn.accept()  # answered by `acked` or `failed` after the commit
        try:
            await self.messages.submit(
                conn.user, frame.room, frame.text, frame.cid, reply_to=frame.reply_to, mentions=frame.mentions,
                files=frame.files, known_member=frame.room in conn.rooms, on_stored=acked, on_failed=failed,
            )
        except BaseException:
            conn.settle()  # refused before queueing: `_on_frame` answers it
            raise
