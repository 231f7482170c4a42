"""Signing out and a new password take effect on every node, although each node remembers who a
token belongs to (chatserver/services/token_cache.py): two real server processes on PostgreSQL
and a private Redis. The nodes keep tokens for an hour (`CHAT_TOKEN_CACHE_TTL=3600`), so a
refusal within seconds is the bus's news at work, never an entry running out. A changed avatar
reaches the user's live connections on the other node, so their next messages carry it."""

from __future__ import annotations

import asyncio
import io
import time

import aiohttp
from PIL import Image

from client_proto import frames
from client_proto.client import ChatClient
from client_proto.http import ApiClient
from tests.test_cluster import cluster, group_of, signed_up  # noqa: F401 (cluster: a fixture)

CACHED_FOR_AN_HOUR = {"CHAT_TOKEN_CACHE_TTL": "3600"}
NEWS_DEADLINE = 5.0  # seconds the bus may take to carry a revocation to the other node (it takes ms)


async def status(url: str, token: str, path: str = "/api/me") -> int:
    async with aiohttp.ClientSession() as session:
        async with session.get(url + path, headers={"Authorization": f"Bearer {token}"}) as response:
            await response.read()
            return response.status


async def refused_within(url: str, token: str, path: str = "/api/me") -> float:
    """Seconds until the node refuses the token (401); fails after NEWS_DEADLINE."""
    started = time.monotonic()
    while (code := await status(url, token, path)) != 401:
        assert code == 200, code
        assert time.monotonic() - started < NEWS_DEADLINE, f"{url} still accepts a revoked token"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def second_token(url: str, user: dict) -> str:
    async with ApiClient(url) as api:
        return await api.login(user["name"], "password")  # tests.test_cluster.signed_up's password


async def test_signing_out_on_one_node_is_refused_on_the_other(cluster):  # noqa: F811
    node_a, node_b = await cluster(2, **CACHED_FOR_AN_HOUR)
    (alice, token), = await signed_up(node_a.url, 1)
    other = await second_token(node_a.url, alice)
    async with ApiClient(node_a.url, token) as api:
        file_id = (await api.upload(b"a small file"))["id"]
    for node in (node_a, node_b):  # both nodes now remember the token
        assert await status(node.url, token) == 200
        assert await status(node.url, token, f"/api/files/{file_id}") == 200

    async with ApiClient(node_a.url, token) as api:
        await api.delete("/api/tokens/current")
    # The node that revoked knew before it answered; the other hears it over the bus.
    assert await status(node_a.url, token) == 401
    await refused_within(node_b.url, token)
    for node in (node_a, node_b):
        assert await status(node.url, token, f"/api/files/{file_id}") == 401
        assert await status(node.url, other) == 200  # the user's other token is not touched


async def test_a_new_password_ends_every_other_token_on_every_node(cluster):  # noqa: F811
    node_a, node_b = await cluster(2, **CACHED_FOR_AN_HOUR)
    (alice, changer), = await signed_up(node_a.url, 1)
    others = [await second_token(node_a.url, alice) for _ in range(2)]
    for node in (node_a, node_b):
        for token in (changer, *others):
            assert await status(node.url, token) == 200

    async with ApiClient(node_b.url, changer) as api:
        await api.patch("/api/me", {"password": {"old": "password", "new": "a new password"}})
    for token in others:
        assert await status(node_b.url, token) == 401
        await refused_within(node_a.url, token)
    for node in (node_a, node_b):
        assert await status(node.url, changer) == 200


def picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 90, 30)).save(out, "PNG")
    return out.getvalue()


async def test_a_new_avatar_and_name_reach_the_users_live_connections_on_another_node(cluster):  # noqa: F811
    node_a, node_b = await cluster(2, **CACHED_FOR_AN_HOUR)
    (alice, alice_token), (bob, bob_token) = await signed_up(node_a.url, 2)
    room = await group_of(node_a.url, alice_token, [bob])
    async with (
        ChatClient(node_b.ws_url, alice_token) as alice_on_b,
        ChatClient(node_a.ws_url, bob_token) as bob_on_a,
        ApiClient(node_a.url, alice_token) as alice_api,
        ApiClient(node_b.url, alice_token) as alice_api_on_b,
    ):
        ack = await alice_on_b.send(room, "before")
        assert (await heard(bob_on_a, room, ack.seq)).from_.avatar is None
        avatar = (await alice_api.upload(picture(), name="me.png"))["id"]
        await alice_api.patch("/api/me", {"avatar": avatar, "display": "Alice Again"})

        # The news that changed node B's memory of the token is the news that changes the
        # connection (one event, handled at once): once /api/me on B says so, so do her messages.
        started = time.monotonic()
        while (await alice_api_on_b.get("/api/me"))["avatar"] != avatar:
            assert time.monotonic() - started < NEWS_DEADLINE, "node B never heard of the new avatar"
            await asyncio.sleep(0.02)
        ack = await alice_on_b.send(room, "after")
        sender = (await heard(bob_on_a, room, ack.seq)).from_
        assert (sender.avatar, sender.display) == (avatar, "Alice Again")


async def heard(client: ChatClient, room: str, seq: int) -> frames.Message:
    async with asyncio.timeout(NEWS_DEADLINE):
        async for event in client.events():
            if isinstance(event, frames.Message) and event.room == room and event.seq == seq:
                return event
