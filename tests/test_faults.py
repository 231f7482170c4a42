"""Dependencies failing under a running server: it says so, never acks falsely, and recovers by itself."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from client_proto.client import ChatClient, ChatError
from client_proto.http import ApiClient, ApiError
from tests.conftest import require, unique_name
from tests.postgres_server import PostgresProcess


async def status_of(url: str, path: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url + path) as response:
        return response.status


async def wait_for_status(url: str, path: str, status: int, timeout: float) -> float:
    """Seconds until `path` answers `status`."""
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while True:
            try:
                if await status_of(url, path) == status:
                    return time.monotonic() - started
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


@pytest.fixture
def private_postgres():
    require(PostgresProcess.available(), "CHAT_REQUIRE_PG")
    pg = PostgresProcess().init().start()
    yield pg
    pg.remove()


async def test_postgres_outage_gives_503_and_unavailable_then_recovers_by_itself(private_postgres, spawn_server):
    node = await spawn_server({"CHAT_DATABASE_URL": private_postgres.url})
    name = unique_name("pg")
    async with ApiClient(node.url) as api:
        await api.register(name, "password")
        token = await api.login(name, "password")
        user_api = api.as_user(token)
        room = (await user_api.create_room("outage"))["id"]
    acked = []
    async with ChatClient(node.ws_url, token) as client, ApiClient(node.url, token=token) as user_api:
        acked.append(await client.send(room, "before"))
        private_postgres.stop()
        await wait_for_status(node.url, "/healthz", 503, timeout=10)
        assert await status_of(node.url, "/readyz") == 503
        assert await status_of(node.url, "/livez") == 200
        with pytest.raises(ChatError) as refused:
            acked.append(await client.send(room, "during"))
        assert refused.value.code == "unavailable"
        with pytest.raises(ApiError) as refused_http:
            await user_api.post(f"/api/rooms/{room}/messages", {"text": "during", "cid": "http-during"})
        assert refused_http.value.status == 503 and refused_http.value.code == "unavailable"

        private_postgres.start()
        recovery = await wait_for_status(node.url, "/healthz", 200, timeout=10)
        assert recovery < 5
        acked.append(await client.send(room, "after"))
        history = await client.history(room)
    assert [m.text for m in history.messages] == ["before", "after"]
    assert [a.seq for a in acked] == [m.seq for m in history.messages]
