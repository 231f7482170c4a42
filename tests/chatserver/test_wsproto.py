"""The WebSocket layer under the chat protocol: our own frame reader after the upgrade (RFC 6455, docs/protocol.md §8.3).

Raw sockets, so the bytes on the wire are exactly what each test says: a hello
pipelined behind the upgrade request, a fragmented hello with a ping between
its fragments, the client's close answered and TCP ended, and an idle
connection holding no task. (Forbidden frames and their 1002/1007/1009 are in
tests/test_fuzz.py and test_limits.py.)
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from urllib.parse import urlsplit

from chatserver.connection import CLOSE_GRACE
from chatserver.wsproto import unmask

from .conftest import eventually


def masked(first_byte: int, payload: bytes) -> bytes:
    """A client frame: FIN/opcode byte, length, mask, masked payload."""
    n = len(payload)
    head = bytes([first_byte, 0x80 | n]) if n < 126 else bytes([first_byte, 0x80 | 126]) + struct.pack("!H", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def hello(token: str, ref: int = 1) -> bytes:
    return json.dumps({"op": "hello", "token": token, "ref": ref}).encode()


async def open_raw(url: str, behind: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The upgrade request (with `behind` in the same write), then the 101."""
    u = urlsplit(url)
    reader, writer = await asyncio.open_connection(u.hostname, u.port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: chat.v1.json\r\n\r\n")
    writer.write(request.encode() + behind)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"Sec-WebSocket-Protocol: chat.v1.json" in head
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), 5)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    return b0 & 0x0F, await reader.readexactly(n)


async def read_op(reader: asyncio.StreamReader, op: str) -> dict:
    """The next JSON frame with this `op` (pings and other frames before it are skipped)."""
    while True:
        opcode, payload = await read_frame(reader)
        if opcode == 1 and (frame := json.loads(payload))["op"] == op:
            return frame


def test_unmask_is_the_bytewise_xor_with_the_repeated_mask():
    mask = b"\x01\x80\xff\x3c"
    for n in range(10):
        payload = os.urandom(n)
        assert unmask(payload, mask) == bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_a_hello_sent_behind_the_upgrade_request_is_answered(server, make_account):
    alice = await make_account()
    reader, writer = await open_raw(server.ws_url, behind=masked(0x81, hello(alice.token, ref=5)))
    try:
        welcome = await read_op(reader, "welcome")
        assert welcome["ref"] == 5 and welcome["user"]["id"] == alice.id
    finally:
        writer.close()


async def test_a_fragmented_hello_with_a_ping_between_its_fragments(server, make_account):
    alice = await make_account()
    reader, writer = await open_raw(server.ws_url)
    try:
        data = hello(alice.token, ref=9)
        writer.write(masked(0x01, data[:10]) + masked(0x89, b"between") + masked(0x00, data[10:20])
                     + masked(0x80, data[20:]))
        opcode, payload = await read_frame(reader)
        assert (opcode, payload) == (0xA, b"between")  # the pong, before the message is whole
        assert (await read_op(reader, "welcome"))["ref"] == 9
    finally:
        writer.close()


async def test_the_clients_close_is_answered_and_tcp_ends_at_once(server, make_account):
    alice = await make_account()
    reader, writer = await open_raw(server.ws_url, behind=masked(0x81, hello(alice.token)))
    await read_op(reader, "welcome")
    writer.write(masked(0x88, struct.pack("!H", 1000) + b"bye"))
    while (frame := await read_frame(reader))[0] != 0x8:
        pass
    assert struct.unpack("!H", frame[1][:2])[0] == 1000
    # EOF well before the close grace, after which a silent peer would be cut anyway: the answer ended TCP.
    assert await asyncio.wait_for(reader.read(), CLOSE_GRACE / 2) == b""
    writer.close()


async def test_an_idle_connection_runs_no_task(server, make_account):
    """Frames are answered by a task that ends when they are; an idle connection holds no coroutine."""
    alice = await make_account()
    reader, writer = await open_raw(server.ws_url, behind=masked(0x81, hello(alice.token)))
    try:
        await read_op(reader, "welcome")
        writer.write(masked(0x81, json.dumps({"op": "ping", "ref": 2}).encode()))
        assert (await read_op(reader, "pong"))["ref"] == 2

        def session_tasks():
            return [t for t in asyncio.all_tasks() if "_Session._work" in getattr(t.get_coro(), "__qualname__", "")]

        await eventually(lambda: not session_tasks())
    finally:
        writer.close()
