"""The WebSocket handshake (docs/protocol.md §3.2): which `Origin`s may open one."""

from __future__ import annotations

import aiohttp
import pytest

from chatserver.config import Settings

from .conftest import with_settings

ALLOWED = Settings.from_env({"CHAT_ALLOWED_ORIGINS": "https://app.example, https://other.example:8443/"})


@pytest.fixture
def handshake(server):
    """`await handshake(origin)` → the HTTP status of a WebSocket handshake with that Origin (or none)."""

    async def status(origin: str | None) -> int:
        headers = {"Origin": origin} if origin is not None else {}
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(server.ws_url, headers=headers, protocols=("chat.v1.json",)):
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    return status


async def test_no_origin_is_allowed(handshake):
    assert await handshake(None) == 101


async def test_own_origin_is_allowed(handshake, server):
    assert await handshake(server.url) == 101


async def test_foreign_origin_is_refused_with_403(handshake):
    for origin in ("https://evil.example", "http://127.0.0.1:1", "null", "http://localhost.evil"):
        assert await handshake(origin) == 403, origin


async def test_refusal_uses_the_error_shape(http):
    reply = await http("GET", "/ws", headers={
        "Origin": "https://evil.example", "Connection": "Upgrade", "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    })
    reply.error(403, "forbidden")


@with_settings(allowed_origins=ALLOWED.allowed_origins)
async def test_chat_allowed_origins_are_honoured(handshake, server):
    assert await handshake("https://app.example") == 101
    assert await handshake("https://other.example:8443") == 101  # listed with a trailing slash
    assert await handshake(server.url) == 101  # the server's own stays allowed
    assert await handshake("https://app.example.evil") == 403
    assert await handshake("http://app.example") == 403  # another scheme is another origin
