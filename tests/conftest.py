"""Fixtures shared by every server test: a live server in this process, real server processes,
users with tokens, and WebSocket clients.

`CHAT_TEST_DATABASE=postgresql` runs the server tests on PostgreSQL instead of SQLite.
"""

from __future__ import annotations

import functools
import itertools
import os
import secrets
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from chatserver.app import create_app
from chatserver.config import Settings
from chatserver.services import accounts as account_service
from client_proto.client import ChatClient
from client_proto.http import ApiClient
from scripts.chat_node import ServerProcess
from scripts.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("CHAT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
_names = itertools.count()


def unique_name(prefix: str = "u") -> str:
    """A valid user name no other test uses (docs/protocol.md §2 name rule)."""
    return f"{prefix}{next(_names)}_{secrets.token_hex(3)}"


# ---------------------------------------------------------------------------- databases


def pg_available() -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return None
    except OSError as exc:
        return f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}"


def redis_available() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return None
            return "Redis at 127.0.0.1:6379 did not answer PING"
    except OSError as exc:
        return f"Redis not reachable at 127.0.0.1:6379: {exc}"


def require(reason: str | None, env: str) -> None:
    """Skip loudly when a service is missing, or fail when the run demands it (`env`=1)."""
    if reason is None:
        return
    if os.environ.get(env) == "1":
        pytest.fail(f"{reason} (and {env}=1 demands it)")
    pytest.skip(reason)


async def fresh_pg_database() -> str:
    """A new, empty PostgreSQL database for one server (or cluster) under test."""
    import asyncpg

    name = f"chat_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def redis_cluster():
    """A private Redis Cluster (3 masters + 3 replicas) for the whole run; tests that break it `heal()` it."""
    from scripts.redis_cluster import RedisCluster

    require(RedisCluster.available(), "CHAT_REQUIRE_REDIS")
    cluster = RedisCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
async def database_url(tmp_path) -> AsyncIterator[str]:
    """SQLite by default; PostgreSQL with CHAT_TEST_DATABASE=postgresql."""
    if os.environ.get("CHAT_TEST_DATABASE") == "postgresql":
        require(pg_available(), "CHAT_REQUIRE_PG")
        url = await fresh_pg_database()
        yield url
        await drop_pg_database(url)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"


# ---------------------------------------------------------------------------- servers


@dataclass
class LiveServer:
    """A server under test: its URLs and, in-process, its app."""

    url: str
    app: object = None
    process: subprocess.Popen | None = None
    settings: Settings | None = None
    _sessions: list = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws"


@pytest.fixture
def cheap_password_hashing(monkeypatch):
    """Argon2id at its smallest cost for in-process servers started after it: real hashing, ~1 ms
    instead of ~150, for tests that sign up many accounts. Server processes keep the real cost."""
    monkeypatch.setattr(account_service, "PasswordHasher",
                        functools.partial(PasswordHasher, time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def settings_overrides() -> dict:
    """Override in a test module to change the server's settings (e.g. a small send buffer)."""
    return {}


@pytest.fixture
async def server(database_url, settings_overrides) -> AsyncIterator[LiveServer]:
    """A server running in this process on a free port."""
    settings = Settings(**{"database_url": database_url, "heartbeat": 25.0, **settings_overrides})
    app = create_app(settings)
    test_server = TestServer(app, host="127.0.0.1", port=free_port())
    await test_server.start_server()
    try:
        yield LiveServer(url=str(test_server.make_url("")).rstrip("/"), app=app, settings=settings)
    finally:
        await test_server.close()


@dataclass
class Account:
    """A signed-up user with a token and an HTTP client acting as them."""

    user: dict
    token: str
    api: ApiClient
    ws_url: str

    @property
    def id(self) -> str:
        return self.user["id"]

    def client(self, **kwargs) -> ChatClient:
        return ChatClient(self.ws_url, self.token, **kwargs)


@pytest.fixture
async def api(server) -> AsyncIterator[ApiClient]:
    async with ApiClient(server.url) as client:
        yield client


@pytest.fixture
def make_account(server, api):
    """`await make_account("alice")` signs up a user (unique name) and signs them in."""

    async def make(prefix: str = "u", password: str = "correct horse") -> Account:
        name = unique_name(prefix)
        await api.register(name, password)
        token = await api.login(name, password)
        user_api = api.as_user(token)
        user = await user_api.get("/api/me")
        return Account(user=user, token=token, api=user_api, ws_url=server.ws_url)

    return make


@pytest.fixture
def make_room(make_account):
    """`room, owner = await make_room(members=[acc, ...], join_policy="invite")`."""

    async def make(owner: Account | None = None, members=(), join_policy: str = "invite", name: str = "group"):
        owner = owner or await make_account("owner")
        room = await owner.api.create_room(name, join_policy=join_policy)
        for member in members:
            await owner.api.add_member(room["id"], member.id)
        return room, owner

    return make


# ---------------------------------------------------------------------------- real processes


@pytest.fixture
async def spawn_server(tmp_path):
    """`await spawn_server({"CHAT_DATABASE_URL": ...})` starts a real server process; all are killed after."""
    started: list[ServerProcess] = []

    async def spawn(env: dict[str, str], port: int | None = None) -> ServerProcess:
        proc = ServerProcess(env, port=port, log_path=tmp_path / f"server-{len(started)}.log")
        started.append(proc)
        return await proc.start()

    yield spawn
    for proc in started:
        proc.kill()
