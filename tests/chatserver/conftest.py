"""Helpers for the hub's tests: raw WebSocket sessions that speak docs/protocol.md frame by frame,
raw HTTP calls that expose status, body and headers, and small per-test settings.

Frames are plain dicts (as the contract writes them), not `client_proto` values, so these
tests check the wire itself. Everything goes over real sockets to a real server.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import shutil
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import make_url

from chatserver.services import accounts as account_service
from storage.db import Database
from tests.conftest import drop_pg_database, fresh_pg_database, pg_available, require

JSON = "chat.v1.json"
MSGPACK = "chat.v1.msgpack"
TIMEOUT = 5.0


def with_settings(**overrides):
    """Run one test against a server with these settings (overrides the `settings_overrides` fixture)."""
    label = ",".join(f"{k}={v}" for k, v in overrides.items())
    return pytest.mark.parametrize("settings_overrides", [overrides], ids=[label])


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A SQLite database migrated once per run, copied for each test (migrating costs ~0.4 s a test)."""
    path = tmp_path_factory.mktemp("template") / "chat.db"

    async def build() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.migrate()
        await db.close()

    asyncio.run(build())
    assert not path.with_name("chat.db-wal").exists()  # checkpointed on close: one file is the database
    return path


@pytest.fixture
def database_url(database_url, migrated_sqlite):
    """The root fixture's database, pre-migrated when it is SQLite (the server's own migrate is then a no-op)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        shutil.copyfile(migrated_sqlite, url.database)
    return database_url


@pytest.fixture(params=["sqlite", "postgresql"])
async def sqlite_then_postgresql(request, database_url):
    """The root fixture's (SQLite) database, then a fresh PostgreSQL one: a module that overrides
    `database_url` with this runs its server on each."""
    if request.param == "sqlite":
        yield database_url
        return
    require(pg_available(), "CHAT_REQUIRE_PG")
    url = await fresh_pg_database()
    yield url
    await drop_pg_database(url)


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Argon2id with the smallest cost for the in-process server: real hashing, ~1 ms instead of 150.

    Real server processes (`spawn_server`) keep the production cost.
    """
    monkeypatch.setattr(
        account_service, "PasswordHasher", functools.partial(PasswordHasher, time_cost=1, memory_cost=8, parallelism=1)
    )


async def eventually(check, timeout: float = TIMEOUT, interval: float = 0.02):
    """Poll `check()` (sync or async) until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        await asyncio.sleep(interval)


# ---------------------------------------------------------------------------- WebSocket


class Closed(Exception):
    """The server closed the connection; `code` is its close code."""

    def __init__(self, code: int | None):
        super().__init__(f"closed with {code}")
        self.code = code


class Wire:
    """One WebSocket connection driven frame by frame.

    `request` sends a frame with a `ref` and returns the frame that answers it;
    frames that arrive meanwhile stay queued for `recv`, in arrival order.
    """

    _refs = itertools.count(1)

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.binary = ws.protocol == MSGPACK
        self.welcome: dict | None = None
        self.account = None  # the `Account` it said hello as, if any
        self._queued: deque[dict] = deque()

    @property
    def user_id(self) -> str:
        return self.welcome["user"]["id"]

    async def send(self, frame: dict | str | bytes) -> None:
        if isinstance(frame, dict):
            frame = msgspec.msgpack.encode(frame) if self.binary else json.dumps(frame)
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def _read(self, timeout: float) -> dict:
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type == aiohttp.WSMsgType.TEXT:
                return json.loads(msg.data)
            if msg.type == aiohttp.WSMsgType.BINARY:
                return msgspec.msgpack.decode(msg.data)
            if msg.type == aiohttp.WSMsgType.CLOSE:
                # The code the server sent (aiohttp reports 1006 instead if its own reply then fails).
                raise Closed(msg.data)
            if msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                raise Closed(self.ws.close_code)

    async def recv(self, timeout: float = TIMEOUT) -> dict:
        """The next server frame; `Closed` once the server closed, `TimeoutError` if none comes."""
        if self._queued:
            return self._queued.popleft()
        return await self._read(timeout)

    async def expect(self, op: str, timeout: float = TIMEOUT, **fields) -> dict:
        """Skip frames until one with this `op` and these field values arrives; return it."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - time.monotonic()))
            if frame.get("op") == op and all(frame.get(k) == v for k, v in fields.items()):
                return frame

    async def request(self, frame: dict, timeout: float = TIMEOUT) -> dict:
        """Send `frame` (with a fresh int `ref` unless it has one) and return the reply carrying that ref."""
        frame = {**frame}
        frame.setdefault("ref", next(self._refs))
        await self.send(frame)
        deadline = time.monotonic() + timeout
        skipped = []
        try:
            while True:
                reply = await self._read(max(0.01, deadline - time.monotonic()))
                if "ref" in reply and reply["ref"] == frame["ref"] and reply["op"] != "message":
                    return reply
                skipped.append(reply)
        finally:
            self._queued.extend(skipped)

    async def pipeline(self, frames: list[dict], timeout: float = TIMEOUT) -> list[dict]:
        """Send every frame (each with a fresh `ref`) before reading any reply; the replies in that order."""
        refs = [f"p{next(self._refs)}" for _ in frames]
        for ref, frame in zip(refs, frames):
            await self.send({**frame, "ref": ref})
        replies: dict = {}
        skipped = []
        deadline = time.monotonic() + timeout
        try:
            while len(replies) < len(refs):
                frame = await self._read(max(0.01, deadline - time.monotonic()))
                if frame.get("ref") in refs and frame["op"] != "message":
                    replies[frame["ref"]] = frame
                else:
                    skipped.append(frame)
        finally:
            self._queued.extend(skipped)
        return [replies[ref] for ref in refs]

    async def call(self, op: str, **fields) -> dict:
        """`request` of `{"op": op, **fields}` that must succeed (not an `error`)."""
        reply = await self.request({"op": op, **fields})
        assert reply["op"] != "error", reply
        return reply

    async def drain(self, timeout: float = TIMEOUT) -> list[dict]:
        """Every frame that arrives before the answer to a ping sent now (the server is in sync after it)."""
        ref = f"sync-{uuid.uuid4().hex[:8]}"
        await self.send({"op": "ping", "ref": ref})
        frames = []
        while True:
            frame = await self.recv(timeout)
            if frame.get("op") == "pong" and frame.get("ref") == ref:
                return frames
            frames.append(frame)

    async def messages(self, room: str, count: int, timeout: float = TIMEOUT) -> list[dict]:
        """The next `count` `message` frames of `room` (other frames skipped)."""
        return [await self.expect("message", timeout, room=room) for _ in range(count)]

    async def closed(self, timeout: float = TIMEOUT) -> int:
        """Read until the server closes; its close code."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                await self.recv(max(0.01, deadline - time.monotonic()))
        except Closed as closed:
            return closed.code


async def open_wire(session: aiohttp.ClientSession, url: str, who=None, *, hello: bool = True,
                    resume: dict | None = None, protocol: str | None = JSON, headers: dict | None = None,
                    autoping: bool = True) -> Wire:
    """A `Wire` to the WebSocket at `url`; after `welcome` as `who` (an `Account` or a token) unless `hello=False`."""
    ws = await session.ws_connect(url, protocols=(protocol,) if protocol else (), headers=headers,
                                  autoping=autoping, max_msg_size=0)
    wire = Wire(ws)
    wire.account = None if isinstance(who, str) else who
    if hello:
        token = who if isinstance(who, str) else who.token
        frame = {"op": "hello", "token": token}
        if resume is not None:
            frame["resume"] = resume
        wire.welcome = await wire.request(frame)
        assert wire.welcome["op"] == "welcome", wire.welcome
    return wire


@pytest.fixture
async def connect(server):
    """`await connect(account_or_token, resume=..., protocol=...)`: a `Wire` to the test's server after `welcome`.

    `hello=False` returns the bare connection (nothing sent); `headers` go on the handshake.
    """
    session = aiohttp.ClientSession()
    wires: list[Wire] = []

    async def open_(who=None, *, path: str = "/ws", **options) -> Wire:
        wire = await open_wire(session, server.url.replace("http", "ws", 1) + path, who, **options)
        wires.append(wire)
        return wire

    yield open_
    for wire in wires:
        await wire.ws.close()
    await session.close()


@pytest.fixture
async def pair(make_account, make_room, connect):
    """alice (owner) and bob (member) of an invite-only room, each with one connection: (room_id, a, b).

    Seq 1 of the room is bob's `member.joined`.
    """
    alice = await make_account("alice")
    bob = await make_account("bob")
    room, _ = await make_room(owner=alice, members=[bob])
    return room["id"], await connect(alice), await connect(bob)


# ---------------------------------------------------------------------------- HTTP


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any

    def error(self, status: int, code: str, field: str | None = None) -> dict:
        """Assert the docs/protocol.md §12.1 error shape with this status and code (and a message naming `field`)."""
        assert self.status == status, (self.status, self.body)
        assert set(self.body) == {"error"}, self.body
        error = self.body["error"]
        assert {"code", "message"} <= set(error), error
        assert error["code"] == code, error
        assert isinstance(error["message"], str) and error["message"], error
        if field is not None:
            assert field in error["message"], error
        return error


@pytest.fixture
async def http(server):
    """`await http("POST", "/api/rooms", token=..., json=...)` → `Reply`; `data=` sends raw bytes."""
    session = aiohttp.ClientSession()

    async def call(method: str, path: str, *, token: str | None = None, json: Any = None, data: Any = None,
                   headers: dict | None = None) -> Reply:
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with session.request(method, server.url + path, json=json, data=data, headers=headers) as resp:
            raw = await resp.read()
            try:
                body = msgspec.json.decode(raw) if raw else None
            except msgspec.DecodeError:
                body = raw.decode(errors="replace")
            return Reply(resp.status, body, resp.headers)

    yield call
    await session.close()


async def post_messages(account, room_id: str, count: int, prefix: str = "m") -> list[int]:
    """`count` messages from `account` over HTTP, one after another; their seqs."""
    seqs = []
    for i in range(count):
        reply = await account.api.post(f"/api/rooms/{room_id}/messages", {"text": f"{prefix}{i}", "cid": uuid.uuid4().hex})
        seqs.append(reply["seq"])
    return seqs


def seqs(frames: list[dict]) -> list[int]:
    return [f["seq"] for f in frames]
