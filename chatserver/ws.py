"""`GET /ws`: the only code that touches `WebSocketResponse`.

A connection's life: handshake checks (origin, capacity) → `hello` within
`hello_timeout` → `welcome` → catch-up of every room (resume) → a read loop
that answers each frame. Sends are queued for the group commit without
waiting, so one connection can pipeline them; every other op is answered
before the next frame is read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web

from client_proto import frames
from client_proto.codec import SUBPROTOCOLS, Codec, server_codec
from client_proto.errors import CloseCode, ErrorCode, FrameError
from storage import rooms as room_store
from storage.db import StorageUnavailable, now_ms
from storage.records import Stored
from storage.tokens import hash_token

from . import keys, logs
from .connection import Connection
from .errors import ServiceError
from .http.errors import json_error
from .ratelimit import TokenBucket
from .views import message_frame, user_frame

log = logging.getLogger(__name__)

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

    transport = request.transport
    ws = web.WebSocketResponse(
        protocols=SUBPROTOCOLS,
        max_msg_size=settings.max_frame + 1,  # aiohttp refuses sizes >= its limit; §5 refuses > max_frame
        compress=False,
        autoping=False,
        autoclose=True,
    )
    await ws.prepare(request)
    codec = server_codec(ws.ws_protocol)
    session = _Session(request, ws, codec, transport)
    try:
        # Straight from this frame, not through a method: every coroutine frame on the
        # stack stays for the connection's whole life (memory per idle connection).
        if await session.start():
            # Also after the server closed: the loop then waits for the peer's close frame.
            await session.read_loop()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        session.close()
    return ws


class _Session:
    """One WebSocket connection from handshake to close."""

    __slots__ = (
        "transport", "app", "settings", "hub", "metrics", "accounts", "messages", "rooms", "ws", "codec", "conn",
        "send_bucket", "flood_bucket", "bad_bucket", "typing_bucket",
    )

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, codec: Codec, transport):
        app = request.app
        self.transport = transport
        self.app = app
        self.settings = app[keys.SETTINGS]
        self.hub = app[keys.HUB]
        self.metrics = app[keys.METRICS]
        self.accounts = app[keys.ACCOUNTS]
        self.messages = app[keys.MESSAGES]
        self.rooms = app[keys.ROOMS]
        self.ws = ws
        self.codec = codec
        self.conn: Connection | None = None
        self.send_bucket = TokenBucket(self.settings.send_rate, self.settings.send_burst)
        self.flood_bucket = TokenBucket(self.settings.send_rate, self.settings.send_burst)
        self.bad_bucket = TokenBucket(1.0, BAD_FRAME_BURST)
        self.typing_bucket = TokenBucket(TYPING_RATE, TYPING_BURST)

    # ------------------------------------------------------------------ lifetime

    async def start(self) -> bool:
        """Hello, authentication, `welcome` and the rooms; False when the connection is refused.

        A method of its own so that what it uses (the hello, a storage connection,
        the room states) is freed when it returns: the read loop lives as long as
        the connection, and with it every local of its frame.
        """
        hello = await self._receive_hello()
        if hello is None:
            return False
        user = await self._authenticate(hello)
        if user is None:
            return False
        if self.hub.user_connection_count(user.id) >= self.settings.max_user_connections:
            # `rate_limited` carries `retry_after` and is followed by 4008 (PROTOCOL §2.4); a place
            # frees when one of the user's connections closes, a silent one within two heartbeats.
            await self._refuse(
                ErrorCode.RATE_LIMITED, "too many connections for this user", CloseCode.FLOODING, hello.ref,
                retry_after=int(self.settings.heartbeat * 1000),
            )
            return False
        conn = Connection(
            ws=self.ws,
            transport=self.transport,
            user=user,
            token_hash=hash_token(hello.token),
            codec=self.codec,
            flusher=self.app[keys.FLUSHER],
            send_buffer=self.settings.send_buffer,
            hub=self.hub,
        )
        self.conn = conn
        logs.bind(session=conn.session, user=user.id)
        self.hub.register(conn)
        try:
            async with self.app[keys.DB].read() as db:
                states = await room_store.states_for_user(db, user.id)
        except StorageUnavailable:
            await self._refuse(ErrorCode.UNAVAILABLE, "storage is unavailable; retry shortly",
                               CloseCode.GOING_AWAY, hello.ref)
            return False
        conn.send(
            frames.Welcome(
                user=user_frame(user),
                session=conn.session,
                heartbeat=self.settings.heartbeat,
                limits=frames.Limits(max_frame=self.settings.max_frame, max_text=self.settings.max_text),
                rooms=[
                    frames.RoomState(id=s.id, name=s.name, last_seq=s.last_seq, read_seq=s.read_seq, unread=s.unread)
                    for s in states
                ],
                ref=hello.ref,
            )
        )
        conn.ready.set()
        resume = hello.resume or {}
        try:
            for state in states:
                await self.hub.attach(conn, state.id, after_seq=resume.get(state.id, state.last_seq))
        except StorageUnavailable:
            conn.send(frames.Error(code=ErrorCode.UNAVAILABLE, message="storage is unavailable; reconnect shortly"))
            conn.close(CloseCode.GOING_AWAY, "storage unavailable")
        return True

    async def _receive_hello(self) -> frames.Hello | None:
        try:
            async with asyncio.timeout(self.settings.hello_timeout):
                while True:
                    msg = await self.ws.receive()
                    if msg.type == WSMsgType.PING:
                        await self.ws.pong(msg.data)
                        continue
                    if msg.type in (WSMsgType.PONG,):
                        continue
                    break
        except asyncio.TimeoutError:
            await self._refuse(ErrorCode.UNAUTHORIZED, "send hello first (within "
                               f"{self.settings.hello_timeout:g} s)", CloseCode.UNAUTHORIZED)
            return None
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return None
        try:
            frame = self._decode(msg.data)
        except FrameError as exc:
            await self._refuse(ErrorCode.UNAUTHORIZED, f"the first frame must be a valid hello ({exc.message})",
                               CloseCode.UNAUTHORIZED, exc.ref)
            return None
        if not isinstance(frame, frames.Hello):
            await self._refuse(ErrorCode.UNAUTHORIZED, "the first frame must be hello", CloseCode.UNAUTHORIZED,
                               getattr(frame, "ref", None))
            return None
        return frame

    async def _authenticate(self, hello: frames.Hello):
        try:
            user = await self.accounts.authenticate(hello.token)
        except StorageUnavailable:
            await self._refuse(ErrorCode.UNAVAILABLE, "storage is unavailable; retry shortly",
                               CloseCode.GOING_AWAY, hello.ref)
            return None
        if user is None:
            await self._refuse(ErrorCode.UNAUTHORIZED, "invalid or revoked token", CloseCode.UNAUTHORIZED, hello.ref)
            return None
        return user

    async def _refuse(
        self, code: ErrorCode, message: str, close_code: int, ref=None, retry_after: int | None = None
    ) -> None:
        """Answer with an error, then close (before the connection is registered)."""
        self.metrics.errors.labels(code).inc()
        try:
            await self._send_direct(frames.Error(code=code, message=message, ref=ref, retry_after=retry_after))
            await self.ws.close(code=close_code, message=message.encode()[:120])
        except (ConnectionError, RuntimeError):
            pass

    async def _send_direct(self, frame: Any) -> None:
        data = self.codec.encode(frame)
        if self.codec.binary:
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data.decode())

    def close(self) -> None:
        if self.conn is not None:
            self.hub.unregister(self.conn)
            self.conn.finish()

    # ------------------------------------------------------------------ frames

    def _decode(self, data: str | bytes):
        if isinstance(data, str) and self.codec.binary:
            raise FrameError(ErrorCode.BAD_FRAME, "this connection speaks msgpack: send binary frames")
        return self.codec.decode(data)

    async def read_loop(self) -> None:
        """Answer frames until the peer closes; after the server closed, only wait for the peer's close."""
        conn = self.conn
        ws = self.ws
        while True:
            msg = await ws.receive()
            conn.last_seen = time.monotonic()
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                if conn.accepting:  # after the server decided to close, frames are not taken
                    await self._on_frame(msg.data)
            elif msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                continue
            elif msg.type == WSMsgType.ERROR:
                reason = "frame_too_large" if ws.close_code == CloseCode.TOO_BIG else "protocol_error"
                self.metrics.closes.labels(reason).inc()
                return
            else:  # CLOSE, CLOSING, CLOSED
                return

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
                found, more = await self.messages.history(
                    user, room, before=before, after=after, limit=limit, known_member=room in conn.rooms
                )
                conn.send(frames.HistoryReply(room=room, messages=[message_frame(m) for m in found], more=more, ref=ref))
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
            case frames.PresenceRequest(room=room, ref=ref):
                online = await self.rooms.online(user, room)
                conn.send(frames.PresenceReply(room=room, online=online, count=len(online), ref=ref))
            case frames.Ping(ref=ref):
                conn.send(frames.Pong(ts=now_ms(), ref=ref))
            case frames.Hello(ref=ref):
                raise ServiceError(ErrorCode.INVALID, "hello was already said on this connection")

    async def _send(self, frame: frames.Send) -> None:
        """Queue a send for the group commit; its ack (or error) is written when it is stored."""
        conn = self.conn
        if not self.send_bucket.take():
            if not self.flood_bucket.take():
                self.metrics.closes.labels("flooding").inc()
                conn.close(CloseCode.FLOODING, "sustained flooding")
                return
            raise ServiceError(ErrorCode.RATE_LIMITED, "sending too fast; slow down",
                               retry_after=self.send_bucket.retry_after_ms())
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

        if frame.room in conn.rooms and frame.mentions != "all":
            role = "member"  # the fast path: no I/O; the commit re-checks membership
        else:
            # Not known on this connection (yet), or the role matters: ask storage first.
            role = (await self.messages.membership(conn.user, frame.room)).role
        new = self.messages.prepare(
            conn.user, frame.room, frame.text, frame.cid, role=role, reply_to=frame.reply_to,
            mentions=frame.mentions,
        )
        conn.accept()  # answered by `acked` or `failed` after the commit
        self.messages.submit(new, acked, failed)


