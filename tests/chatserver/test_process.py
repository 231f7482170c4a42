"""Real `python -m chatserver` processes (docs/protocol.md §10.2, §10.8, §13): an acked message survives kill -9
on SQLite and on PostgreSQL, and SIGTERM closes connections with 1001 and exits in time, losing nothing."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from client_proto.http import ApiClient
from tests.conftest import drop_pg_database, fresh_pg_database, pg_available, require, unique_name

from .conftest import Closed, open_wire, seqs

SENDS = 150


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request, tmp_path):
    """A database URL for real server processes: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"
        return
    require(pg_available(), "CHAT_REQUIRE_PG")
    url = await fresh_pg_database()
    yield url
    await drop_pg_database(url)


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


async def user_with_room(session, url: str) -> tuple[str, str]:
    """A new user's token and a room they own."""
    api = ApiClient(url, session=session)
    name = unique_name("proc")
    await api.register(name, "password")
    owner = api.as_user(await api.login(name, "password"))
    return owner.token, (await owner.create_room("durable"))["id"]


async def full_history(session, url: str, token: str, room_id: str) -> list[dict]:
    api = ApiClient(url, token, session=session)
    messages, after = [], 0
    while True:
        page = await api.get(f"/api/rooms/{room_id}/messages", after=after, limit=100)
        messages += page["messages"]
        if not page["more"]:
            return messages
        after = messages[-1]["seq"]


def sends(room_id: str) -> list[dict]:
    return [{"op": "send", "room": room_id, "text": f"m{i}", "cid": f"c{i}"} for i in range(SENDS)]


async def send_all_until_acked(wire, room_id: str, count: int) -> dict[int, dict]:
    """Pipeline every send (`ref` = its number), then wait for the first `count` acks; acks by ref."""
    for ref, frame in enumerate(sends(room_id)):
        await wire.send({**frame, "ref": ref})
    acked: dict[int, dict] = {}
    while len(acked) < count:
        frame = await wire.recv()
        if frame["op"] == "ack":
            acked[frame["ref"]] = frame
    return acked


async def acks_until_closed(wire, acked: dict) -> int:
    """Collect acks (by cid order `ref`) until the connection ends; its close code."""
    try:
        while True:
            frame = await wire.recv(timeout=30)
            if frame["op"] == "ack":
                acked[frame["ref"]] = frame
    except Closed as closed:
        return closed.code


async def test_acked_messages_survive_kill_9(spawn_server, database, session):
    env = {"CHAT_DATABASE_URL": database, "CHAT_SEND_RATE": "1000", "CHAT_SEND_BURST": "1000"}
    node = await spawn_server(env)
    token, room_id = await user_with_room(session, node.url)
    api = ApiClient(node.url, token, session=session)
    posted = await api.post(f"/api/rooms/{room_id}/messages", {"text": "over http", "cid": "http"})  # a 201

    wire = await open_wire(session, node.ws_url, token)
    acked = await send_all_until_acked(wire, room_id, 20)
    node.kill()  # SIGKILL, mid-stream
    await acks_until_closed(wire, acked)  # acks already on their way count too

    node = await spawn_server(env)  # a new process on the same database
    history = await full_history(session, node.url, token, room_id)
    assert seqs(history) == list(range(1, len(history) + 1))  # gapless
    by_cid = {m["cid"]: m for m in history}
    assert (by_cid["http"]["seq"], by_cid["http"]["id"]) == (posted["seq"], posted["id"])
    for ref, ack in acked.items():
        stored = by_cid[f"c{ref}"]
        assert (stored["seq"], stored["id"], stored["text"]) == (ack["seq"], ack["id"], f"m{ref}")

    # Retrying every send with its cid: what was stored comes back as dup, the rest is new, nothing twice.
    wire = await open_wire(session, node.ws_url, token)
    replies = await wire.pipeline(sends(room_id), timeout=30)
    for ref, reply in enumerate(replies):
        assert reply["op"] == "ack", reply
        if ref in acked:
            assert (reply["dup"], reply["seq"], reply["id"]) == (True, acked[ref]["seq"], acked[ref]["id"])
    history = await full_history(session, node.url, token, room_id)
    assert sorted(m["cid"] for m in history) == sorted(["http"] + [f"c{i}" for i in range(SENDS)])


async def test_sigterm_closes_with_1001_exits_in_time_and_loses_nothing(spawn_server, tmp_path, session):
    env = {"CHAT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'drain.db'}", "CHAT_SEND_RATE": "1000",
           "CHAT_SEND_BURST": "1000"}
    node = await spawn_server(env)
    token, room_id = await user_with_room(session, node.url)
    sender = await open_wire(session, node.ws_url, token)
    listener = await open_wire(session, node.ws_url, token)
    acked = await send_all_until_acked(sender, room_id, 10)

    exited = asyncio.create_task(node.terminate(timeout=30))  # SIGTERM; fails if not gone within 30 s
    assert await acks_until_closed(sender, acked) == 1001
    assert await listener.closed(timeout=30) == 1001
    await exited
    with pytest.raises(aiohttp.ClientConnectionError):  # nobody serves any more
        await open_wire(session, node.ws_url, token)

    node = await spawn_server(env)
    history = await full_history(session, node.url, token, room_id)
    by_cid = {m["cid"]: m for m in history}
    for ref, ack in acked.items():
        assert (by_cid[f"c{ref}"]["seq"], by_cid[f"c{ref}"]["id"]) == (ack["seq"], ack["id"])
    assert seqs(history) == list(range(1, len(history) + 1))
