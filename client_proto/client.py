"""An asyncio chat client over aiohttp WebSockets (docs/protocol.md §3-§9).

One `ChatClient` owns one logical session: it connects, says `hello`,
matches replies to requests by `ref`, queues every other server frame as an
event, and reconnects with jittered exponential backoff, resuming each room
from the last `message` seq it saw, so a consumer of `events()` sees every
message exactly once across reconnects (docs/protocol.md §9, §10.3).

    async with ChatClient("ws://127.0.0.1:8080/ws", token) as client:
        ack = await client.send("room-id", "hello")
        async for event in client.events():
            ...
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec

from .codec import JSON_SUBPROTOCOL, Codec, client_codec
from .errors import CloseCode, ErrorCode, FrameError
from .frames import (
    Ack,
    ClientFrame,
    Edit,
    Error,
    Hello,
    HistoryReply,
    HistoryRequest,
    Join,
    Leave,
    Message,
    Ok,
    Ping,
    Pong,
    PresenceReply,
    PresenceRequest,
    React,
    Read,
    Recall,
    Send,
    ServerFrame,
    Typing,
    Welcome,
)

log = logging.getLogger(__name__)

ABNORMAL_CLOSE = 1006  # what a connection lost without a close frame counts as
BACKOFF_BASE = 0.2  # seconds; doubles per failed attempt ...
BACKOFF_CAP = 10.0  # ... up to this, each delay drawn uniformly below it (full jitter)
# Our own pings (sent only when the line is quiet) notice a peer that vanished
# without a FIN, which the server's pings alone would never tell us.
HEARTBEAT = 30.0
_END = object()  # queued once when the event stream is over


class ChatError(Exception):
    """The server refused something (an `error` frame), or the connection is gone.

    `code` is a docs/protocol.md §7 code (`unavailable` when the connection was lost
    or the client closed); `retry_after` is in ms, for `rate_limited`.
    """

    def __init__(self, code: str, message: str = "", retry_after: int | None = None):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.retry_after = retry_after


class ChatClient:
    """A WebSocket chat session that survives reconnects.

    Use it as an async context manager (or call `connect()` and `close()`).
    `connect()` raises `ChatError` if the server answers `hello` with an error
    (e.g. `unauthorized`); network errors of the first attempt propagate.
    Afterwards a lost connection is reopened in the background unless
    `reconnect` is false or the server closed with 4001 (token refused or
    revoked), which ends the session: `events()` stops and requests fail.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        codec: str = JSON_SUBPROTOCOL,
        reconnect: bool = True,
        resume: dict[str, int] | None = None,
        session: aiohttp.ClientSession | None = None,
        request_timeout: float = 10.0,
    ):
        self.url = url
        self.token = token
        self.reconnect = reconnect
        self.request_timeout = request_timeout
        self.last_seq: dict[str, int] = dict(resume or {})
        """Highest seq of a live `message` seen per room; sent as `resume`."""
        self.welcome: Welcome | None = None
        self.connected = asyncio.Event()
        self.close_code: int | None = None
        self._subprotocol = codec
        self._session = session
        self._owns_session = session is None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._codec: Codec = client_codec(codec)
        self._refs = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self._stopped: ChatError | None = None

    async def __aenter__(self) -> ChatClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- life

    async def connect(self) -> None:
        """Open the first connection and start the reader (and reconnector)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            await self._open()
        except BaseException:
            await self.close()
            raise
        self._runner = asyncio.create_task(self._run(), name=f"chat-client {self.url}")

    async def close(self) -> None:
        """Close the connection for good: no reconnect, events end, requests fail."""
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        self._stop(ChatError(ErrorCode.UNAVAILABLE, "client closed"))
        if self._owns_session and self._session is not None:
            await self._session.close()

    async def _open(self) -> None:
        """Connect, say `hello` with `resume`, and wait for `welcome`."""
        async with asyncio.timeout(self.request_timeout):
            ws = await self._session.ws_connect(
                self.url, protocols=(self._subprotocol,), heartbeat=HEARTBEAT
            )
        codec = client_codec(ws.protocol)
        try:
            async with asyncio.timeout(self.request_timeout):
                resume = dict(self.last_seq) or None
                await self._write(ws, codec, Hello(token=self.token, resume=resume, ref=0))
                while not isinstance(frame := await self._receive(ws, codec), Welcome):
                    match frame:
                        case None:
                            self.close_code = ws.close_code or ABNORMAL_CLOSE
                            raise _closed_error(self.close_code, "closed before welcome")
                        case Error(code=code, message=message):
                            raise ChatError(code, message)
                        case _:
                            self._dispatch(frame)
        except BaseException:
            await ws.close()
            raise
        self._ws, self._codec, self.welcome = ws, codec, frame
        self.connected.set()

    async def _run(self) -> None:
        """Read the connection; when it drops, reconnect or end the session."""
        try:
            while True:
                while (frame := await self._receive(self._ws, self._codec)) is not None:
                    self._dispatch(frame)
                self.connected.clear()
                self.close_code = self._ws.close_code or ABNORMAL_CLOSE
                log.info("connection closed with %s", self.close_code)
                error = _closed_error(self.close_code, "connection lost")
                if self.close_code == CloseCode.UNAUTHORIZED or not self.reconnect:
                    self._stop(error)
                    return
                self._fail_pending(error)
                await self._reopen()
        except ChatError as err:  # hello refused on reconnect: the token is no good
            self._stop(err)
        except Exception:
            log.exception("chat client connection task failed")
            self._stop(ChatError(ErrorCode.UNAVAILABLE, "client failed"))

    async def _reopen(self) -> None:
        """Retry `_open` with full-jitter exponential backoff until it succeeds."""
        for attempt in itertools.count():
            ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempt, 16))
            await asyncio.sleep(random.uniform(0, ceiling))
            try:
                await self._open()
                return
            except ChatError as err:
                if err.code == ErrorCode.UNAUTHORIZED:
                    raise
                log.info("reconnect refused: %s", err)
            except (aiohttp.ClientError, OSError, TimeoutError) as err:
                log.info("reconnect failed: %r", err)

    def _stop(self, error: ChatError) -> None:
        """End the session once: fail pending requests and end `events()`."""
        if self._stopped is None:
            self._stopped = error
            self.connected.clear()
            self._fail_pending(error)
            self._events.put_nowait(_END)

    def _fail_pending(self, error: ChatError) -> None:
        # The error is the result, raised by `request`: an exception set on a
        # future whose request already gave up would be reported as unretrieved.
        for future in self._pending.values():
            if not future.done():
                future.set_result(error)
        self._pending.clear()

    # ----------------------------------------------------------------- wire

    @staticmethod
    async def _receive(ws: aiohttp.ClientWebSocketResponse, codec: Codec) -> Any:
        """The next server frame, or None once the connection is closed."""
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                try:
                    return codec.decode(msg.data)
                except FrameError as err:  # a newer server's frame: skip, stay compatible
                    log.warning("ignoring server frame: %s", err)
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                              aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return None

    @staticmethod
    async def _write(ws: aiohttp.ClientWebSocketResponse, codec: Codec, frame: ClientFrame) -> None:
        data = codec.encode(frame)
        if codec.binary:
            await ws.send_bytes(data)
        else:
            await ws.send_str(data.decode())

    def _dispatch(self, frame: Any) -> None:
        """Route a frame: a reply to its waiting request, anything else to events."""
        match frame:
            case Message(room=room, seq=seq):
                if seq > self.last_seq.get(room, 0):
                    self.last_seq[room] = seq
                self._events.put_nowait(frame)
            case _ if getattr(frame, "ref", None) is not None:
                future = self._pending.pop(frame.ref, None)
                if future is not None and not future.done():
                    future.set_result(frame)
                # else: a reply that arrived after its request timed out
            case _:
                self._events.put_nowait(frame)

    async def _send(self, frame: ClientFrame) -> None:
        if self._stopped is not None:
            raise self._stopped
        if not self.connected.is_set():
            raise ChatError(ErrorCode.UNAVAILABLE, "not connected")
        try:
            await self._write(self._ws, self._codec, frame)
        except (ConnectionError, aiohttp.ClientError) as err:
            raise ChatError(ErrorCode.UNAVAILABLE, "connection lost") from err

    # ------------------------------------------------------------- requests

    async def request(self, frame: ClientFrame, timeout: float | None = None) -> ServerFrame:
        """Send `frame` with a fresh `ref` and return the reply carrying it.

        Raises `ChatError` for an `error` reply, when not connected, or when
        the connection drops first; `TimeoutError` after `timeout` seconds
        (default `request_timeout`). Requests are not retried: `send` is safe
        to repeat with the same `cid`.
        """
        ref = next(self._refs)
        future = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        try:
            await self._send(msgspec.structs.replace(frame, ref=ref))
            async with asyncio.timeout(self.request_timeout if timeout is None else timeout):
                reply = await future
        finally:
            self._pending.pop(ref, None)
        if isinstance(reply, ChatError):
            raise reply
        if isinstance(reply, Error):
            raise ChatError(reply.code, reply.message, reply.retry_after)
        return reply

    async def send(
        self,
        room: str,
        text: str,
        cid: str | None = None,
        reply_to: int | None = None,
        mentions: list[str] | str | None = None,
        files: list[str] | None = None,
    ) -> Ack:
        """Post a message; `cid` (a new uuid4 hex if not given) makes a retry harmless."""
        frame = Send(room=room, text=text, cid=cid or uuid.uuid4().hex,
                     reply_to=reply_to, mentions=mentions, files=files)
        return await self.request(frame)

    async def history(
        self, room: str, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> HistoryReply:
        """A page of a room's messages, ascending seq (does not move `last_seq`)."""
        return await self.request(HistoryRequest(room=room, before=before, after=after, limit=limit))

    async def join(self, room: str) -> Ok:
        return await self.request(Join(room=room))

    async def leave(self, room: str) -> Ok:
        return await self.request(Leave(room=room))

    async def typing(self, room: str) -> None:
        """Tell the room we are typing; the server sends no reply."""
        await self._send(Typing(room=room))

    async def read(self, room: str, seq: int) -> Ok:
        return await self.request(Read(room=room, seq=seq))

    async def recall(self, room: str, seq: int) -> Ok:
        return await self.request(Recall(room=room, seq=seq))

    async def edit(self, room: str, seq: int, text: str) -> Ok:
        """Change the text of one's own message; the reply's `seq` is the update entry's."""
        return await self.request(Edit(room=room, seq=seq, text=text))

    async def react(self, room: str, seq: int, emoji: str, on: bool = True) -> Ok:
        """Add (or with `on=False` take back) a reaction; repeating it changes nothing."""
        return await self.request(React(room=room, seq=seq, emoji=emoji, on=on))

    async def presence(self, room: str) -> PresenceReply:
        return await self.request(PresenceRequest(room=room))

    async def ping(self) -> Pong:
        return await self.request(Ping())

    # --------------------------------------------------------------- events

    async def events(self) -> AsyncIterator[ServerFrame]:
        """Every server frame that is not a reply, in arrival order, until the session ends."""
        while (event := await self._events.get()) is not _END:
            yield event
        self._events.put_nowait(_END)  # so every other reader ends too

    async def next_event(self, timeout: float | None = 5.0) -> ServerFrame:
        """The next event; `TimeoutError` if none comes in time, `ChatError` once ended."""
        async with asyncio.timeout(timeout):
            event = await self._events.get()
        if event is _END:
            self._events.put_nowait(_END)
            raise self._stopped
        return event


def _closed_error(close_code: int, reason: str) -> ChatError:
    if close_code == CloseCode.UNAUTHORIZED:
        return ChatError(ErrorCode.UNAUTHORIZED, f"token refused or revoked (close {close_code})")
    return ChatError(ErrorCode.UNAVAILABLE, f"{reason} (close {close_code})")
