"""ChatClient against a fake WebSocket server built here with aiohttp.web.

The fake speaks just enough of docs/protocol.md §4-§6 to drive the client: it answers
`hello`, acks `send` and echoes the message, holds `presence` replies until
the test releases them (to reorder replies), and can close every connection
with a given code, or cut it without a close frame (1006).
"""

from __future__ import annotations

import asyncio
import re

import pytest
import aiohttp
from aiohttp import WSMsgType, web

from client_proto.client import ChatClient, ChatError
from client_proto.codec import SUBPROTOCOLS, Codec, server_codec
from client_proto.frames import (
    Ack,
    Error,
    Hello,
    HistoryReply,
    HistoryRequest,
    Join,
    Limits,
    Message,
    Ok,
    Ping,
    Pong,
    PresenceReply,
    PresenceRequest,
    Recall,
    Send,
    Typing,
    TypingEvent,
    User,
    Welcome,
)

TOKEN = "good-token"
ALICE = User(id="u1", name="alice", display="Alice")


class FakeServer:
    """A scripted stand-in for the chat server; records what clients sent."""

    def __init__(self) -> None:
        self.valid_tokens = {TOKEN}
        self.hellos: list[Hello] = []
        self.subprotocols: list[str | None] = []
        self.open: list[tuple[web.WebSocketResponse, Codec, web.Request]] = []
        self.held: list[tuple[web.WebSocketResponse, Codec, PresenceRequest]] = []
        self.seq: dict[str, int] = {}
        self.app = web.Application()
        self.app.router.add_get("/ws", self.handle)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=SUBPROTOCOLS)
        await ws.prepare(request)
        codec = server_codec(ws.ws_protocol)
        self.subprotocols.append(ws.ws_protocol)
        hello = codec.decode((await ws.receive()).data)
        self.hellos.append(hello)
        if hello.token not in self.valid_tokens:
            await send(ws, codec, Error(code="unauthorized", message="bad token", ref=hello.ref))
            await ws.close(code=4001)
            return ws
        welcome = Welcome(user=ALICE, session=f"s{len(self.hellos)}", heartbeat=25.0,
                          limits=Limits(max_frame=65536, max_text=4000), rooms=[], ref=hello.ref)
        await send(ws, codec, welcome)
        self.open.append((ws, codec, request))
        async for msg in ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await self.answer(ws, codec, codec.decode(msg.data))
        self.open = [entry for entry in self.open if entry[0] is not ws]
        return ws

    async def answer(self, ws: web.WebSocketResponse, codec: Codec, frame: object) -> None:
        match frame:
            case Send(room=room, text=text, cid=cid, ref=ref):
                seq = self.seq[room] = self.seq.get(room, 0) + 1
                await send(ws, codec, Ack(room=room, seq=seq, id=f"m{seq}", ts=1, dup=False, ref=ref))
                await self.push(message(room, seq, text, cid))
            case HistoryRequest(room=room, ref=ref):
                # Events land before the reply: they must go to events(), not to the request.
                await send(ws, codec, TypingEvent(room=room, user=ALICE))
                old = message(room, 99, "old")  # history must not move last_seq
                await send(ws, codec, HistoryReply(room=room, messages=[old], more=False, ref=ref))
            case Join(room="secret", ref=ref):
                await send(ws, codec, Error(code="forbidden", message="not open", ref=ref))
            case Recall(ref=ref):
                await send(ws, codec, Error(code="rate_limited", message="slow", retry_after=1500, ref=ref))
            case Typing(room=room):
                await self.push(TypingEvent(room=room, user=ALICE))
            case PresenceRequest():
                self.held.append((ws, codec, frame))
            case Ping(ref=ref):
                await send(ws, codec, Pong(ts=1, ref=ref))
            case _:
                await send(ws, codec, Ok(ref=frame.ref))

    async def release(self) -> None:
        """Answer the held `presence` requests, newest first."""
        while self.held:
            ws, codec, frame = self.held.pop()
            reply = PresenceReply(room=frame.room, online=["u1"], count=1, ref=frame.ref)
            await send(ws, codec, reply)

    async def push(self, frame: object) -> None:
        for ws, codec, _ in list(self.open):
            await send(ws, codec, frame)

    async def drop(self, code: int) -> None:
        """Close every open connection with `code`, or cut them (no close frame) for 1006."""
        dropped, self.open = self.open, []
        for ws, _, request in dropped:
            if code == 1006:
                request.transport.close()
            else:
                await ws.close(code=code)


async def send(ws: web.WebSocketResponse, codec: Codec, frame: object) -> None:
    data = codec.encode(frame)
    await (ws.send_bytes(data) if codec.binary else ws.send_str(data.decode()))


def message(room: str, seq: int, text: str, cid: str | None = None) -> Message:
    return Message(room=room, seq=seq, id=f"m{seq}", ts=1, from_=ALICE, kind="text", text=text, cid=cid)


async def eventually(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def fake(aiohttp_server):
    fake = FakeServer()
    server = await aiohttp_server(fake.app)
    fake.url = f"ws://{server.host}:{server.port}/ws"
    return fake


# --------------------------------------------------------------------------
# Session


@pytest.mark.parametrize("codec", SUBPROTOCOLS)
async def test_hello_then_welcome(fake, codec):
    async with ChatClient(fake.url, TOKEN, codec=codec) as client:
        assert client.connected.is_set()
        assert client.welcome.user == ALICE
        assert fake.subprotocols == [codec]
        assert fake.hellos == [Hello(token=TOKEN, ref=0)]
        assert isinstance(await client.ping(), Pong)


async def test_hello_carries_initial_resume(fake):
    async with ChatClient(fake.url, TOKEN, resume={"r1": 5}) as client:
        assert fake.hellos[0].resume == {"r1": 5}
        assert client.last_seq == {"r1": 5}


async def test_refused_hello_raises_chat_error(fake):
    with pytest.raises(ChatError) as info:
        async with ChatClient(fake.url, "bad-token"):
            pass
    assert info.value.code == "unauthorized"
    await asyncio.sleep(0.3)
    assert len(fake.hellos) == 1


async def test_uses_a_borrowed_session_without_closing_it(fake):
    async with aiohttp.ClientSession() as session:
        async with ChatClient(fake.url, TOKEN, session=session) as client:
            await client.ping()
        assert not session.closed


# --------------------------------------------------------------------------
# Requests and events


async def test_send_acks_and_echo_moves_last_seq(fake):
    async with ChatClient(fake.url, TOKEN) as client:
        ack = await client.send("r1", "hello")
        assert (ack.room, ack.seq, ack.dup) == ("r1", 1, False)
        event = await client.next_event()
        assert (event.seq, event.text) == (1, "hello")
        assert re.fullmatch(r"[0-9a-f]{32}", event.cid)
        assert client.last_seq == {"r1": 1}

        assert (await client.send("r1", "again", cid="mine")).seq == 2
        assert (await client.next_event()).cid == "mine"
        assert client.last_seq == {"r1": 2}


async def test_replies_match_refs_with_interleaved_events(fake):
    async with ChatClient(fake.url, TOKEN) as client:
        first = asyncio.create_task(client.presence("r1"))
        second = asyncio.create_task(client.presence("r2"))
        await eventually(lambda: len(fake.held) == 2)
        assert isinstance(await client.ping(), Pong)  # answered while two are held
        history = await client.history("r1", before=10)
        assert history.messages[0].seq == 99
        await client.send("r1", "hi")
        await fake.release()  # r2's reply comes back before r1's
        assert (await first).room == "r1"
        assert (await second).room == "r2"

        assert isinstance(await client.next_event(), TypingEvent)
        assert (await client.next_event()).text == "hi"
        assert client.last_seq == {"r1": 1}  # the history page did not count
        with pytest.raises(TimeoutError):
            await client.next_event(timeout=0.1)


async def test_error_reply_raises_chat_error_and_connection_stays(fake):
    async with ChatClient(fake.url, TOKEN) as client:
        with pytest.raises(ChatError) as info:
            await client.join("secret")
        assert (info.value.code, info.value.message) == ("forbidden", "not open")
        with pytest.raises(ChatError) as info:
            await client.recall("r1", 3)
        assert (info.value.code, info.value.retry_after) == ("rate_limited", 1500)
        assert isinstance(await client.join("lobby"), Ok)


async def test_typing_expects_no_reply(fake):
    async with ChatClient(fake.url, TOKEN) as client:
        assert await client.typing("r1") is None
        assert await client.next_event() == TypingEvent(room="r1", user=ALICE)


async def test_request_timeout_and_late_reply_is_dropped(fake):
    async with ChatClient(fake.url, TOKEN) as client:
        with pytest.raises(TimeoutError):
            await client.request(PresenceRequest(room="r1"), timeout=0.1)
        await fake.release()
        await client.ping()
        with pytest.raises(TimeoutError):
            await client.next_event(timeout=0.1)


# --------------------------------------------------------------------------
# Reconnect


@pytest.mark.parametrize("code", [1001, 4009, 1006])
async def test_reconnects_and_resumes_from_last_seq(fake, code):
    async with ChatClient(fake.url, TOKEN, resume={"r3": 7}) as client:
        await client.send("r1", "one")
        await client.send("r1", "two")
        await fake.push(message("r2", 4, "elsewhere"))
        for _ in range(3):
            await client.next_event()

        await fake.drop(code)
        await eventually(lambda: len(fake.hellos) == 2 and client.connected.is_set())
        assert client.close_code == code
        assert fake.hellos[1].resume == {"r1": 2, "r2": 4, "r3": 7}
        assert client.welcome.session == "s2"

        assert (await client.send("r1", "three")).seq == 3
        assert (await client.next_event()).text == "three"


async def test_pending_request_fails_when_connection_drops(fake):
    async with ChatClient(fake.url, TOKEN) as client:
        pending = asyncio.create_task(client.presence("r1"))
        await eventually(lambda: fake.held)
        await fake.drop(1001)
        with pytest.raises(ChatError) as info:
            await pending
        assert info.value.code == "unavailable"
        await eventually(client.connected.is_set)
        assert isinstance(await client.ping(), Pong)


async def test_4001_is_final(fake):
    async with ChatClient(fake.url, TOKEN) as client:
        pending = asyncio.create_task(client.presence("r1"))
        await eventually(lambda: fake.held)
        await fake.push(message("r1", 1, "last words"))
        await fake.drop(4001)

        events = [event async for event in client.events()]  # ends instead of waiting
        assert [event.text for event in events] == ["last words"]
        with pytest.raises(ChatError) as info:
            await pending
        assert info.value.code == "unauthorized"
        assert client.close_code == 4001
        assert not client.connected.is_set()

        await asyncio.sleep(0.5)
        assert len(fake.hellos) == 1
        with pytest.raises(ChatError, match="unauthorized"):
            await client.ping()
        with pytest.raises(ChatError, match="unauthorized"):
            await client.next_event()


async def test_token_refused_on_reconnect_ends_session(fake):
    async with ChatClient(fake.url, TOKEN) as client:
        fake.valid_tokens.clear()
        await fake.drop(1001)
        assert [event async for event in client.events()] == []
        assert len(fake.hellos) == 2
        with pytest.raises(ChatError, match="unauthorized"):
            await client.ping()


async def test_no_reconnect_when_disabled(fake):
    async with ChatClient(fake.url, TOKEN, reconnect=False) as client:
        await fake.drop(1001)
        assert [event async for event in client.events()] == []
        assert client.close_code == 1001
        await asyncio.sleep(0.3)
        assert len(fake.hellos) == 1


async def test_close_ends_events_and_requests(fake):
    client = ChatClient(fake.url, TOKEN)
    await client.connect()
    await client.close()
    assert [event async for event in client.events()] == []
    with pytest.raises(ChatError, match="unavailable"):
        await client.ping()
    await eventually(lambda: not fake.open)
    await asyncio.sleep(0.3)
    assert len(fake.hellos) == 1


def test_client_proto_imports_only_itself_and_libraries():
    """docs/architecture.md §2: client_proto sits below chatserver and beside storage."""
    import ast
    from pathlib import Path

    import client_proto

    for path in Path(client_proto.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            assert not any(name.split(".")[0] in ("chatserver", "storage") for name in names), path
