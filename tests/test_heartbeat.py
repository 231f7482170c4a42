"""A client frozen with SIGSTOP is found out by the heartbeat (docs/protocol.md §4.5).

A real server process pings every `CHAT_HEARTBEAT` seconds and closes a
connection that answered none for two heartbeats. The frozen client is a
separate process (its kernel still acknowledges TCP, so only the missing
pongs can give it away). A client that keeps answering is never cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time

import aiohttp

from client_proto.client import ChatClient
from client_proto.http import ApiClient
from tests.conftest import unique_name

HEARTBEAT = 2.0  # long enough that a loaded machine does not make the answering clients late
# Closed once silent for two heartbeats, noticed at the next beat: at most three after the freeze.
DETECTED_WITHIN = 3 * HEARTBEAT + 3.0  # plus slack for a busy machine

# A bare client: says hello, then only reads (aiohttp answers the server's pings while it reads).
CLIENT = """
import asyncio, json, os, sys
import aiohttp

async def main():
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(os.environ["CHAT_WS_URL"], protocols=("chat.v1.json",)) as ws:
            await ws.send_str(json.dumps({"op": "hello", "token": os.environ["CHAT_TOKEN"]}))
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["op"] == "welcome":
                    print("ready", flush=True)
    print("closed", ws.close_code, flush=True)

asyncio.run(main())
"""


async def signed_up(api: ApiClient) -> tuple[dict, str]:
    name = unique_name("hb")
    await api.register(name, "password")
    token = await api.login(name, "password")
    return await api.as_user(token).get("/api/me"), token


async def connections_gauge(url: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("chat_connections "):
                return float(line.split()[1])
    raise AssertionError("no chat_connections in /metrics")


async def test_a_frozen_client_is_dropped_within_two_heartbeats(spawn_server, tmp_path):
    node = await spawn_server({"CHAT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
                               "CHAT_HEARTBEAT": str(HEARTBEAT)})
    async with ApiClient(node.url) as api:
        (frozen, frozen_token), (watcher, watcher_token) = [await signed_up(api) for _ in range(2)]
        room = await api.as_user(watcher_token).create_room("heartbeat")
        await api.as_user(watcher_token).add_member(room["id"], frozen["id"])

    client = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "CHAT_WS_URL": node.ws_url, "CHAT_TOKEN": frozen_token},
    )
    try:
        assert await asyncio.wait_for(client.stdout.readline(), 10) == b"ready\n"
        async with ChatClient(node.ws_url, watcher_token, reconnect=False) as watching:

            async def online() -> list[str]:
                return (await watching.presence(room["id"])).online

            # Answering pings, it stays: three heartbeats pass and it is still there.
            await asyncio.sleep(3 * HEARTBEAT)
            assert frozen["id"] in await online()
            assert await connections_gauge(node.url) == 2

            client.send_signal(signal.SIGSTOP)
            frozen_at = time.monotonic()
            while frozen["id"] in await online():
                assert time.monotonic() - frozen_at < DETECTED_WITHIN + 10, "never dropped"
                await asyncio.sleep(0.05)
            dropped_after = time.monotonic() - frozen_at
            assert await connections_gauge(node.url) == 1
            assert watching.connected.is_set()  # the watcher, answering every ping, was never cut
        assert dropped_after < DETECTED_WITHIN, f"dropped {dropped_after:.1f} s after the freeze"

        client.send_signal(signal.SIGCONT)  # woken, it finds its connection gone
        assert (await asyncio.wait_for(client.stdout.readline(), 15)).startswith(b"closed")
    finally:
        with contextlib.suppress(ProcessLookupError):
            client.send_signal(signal.SIGCONT)
            client.kill()
        await client.wait()
