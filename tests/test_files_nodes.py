"""Files on real server processes: a file uploaded on one node downloads from another with no
shared disk (PostgreSQL and Redis, the database blob engine), and uploads stream: ten concurrent
25 MiB uploads grow the server's memory by less than 64 MiB (docs/protocol.md §12.10)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import uuid
from pathlib import Path

import pytest
from PIL import Image

from client_proto.client import ChatClient
from client_proto.http import ApiClient
from scripts.redis_server import RedisProcess
from tests.conftest import drop_pg_database, fresh_pg_database, pg_available, require
from tests.test_cluster import group_of, signed_up

MIB = 1024 * 1024


@pytest.fixture
async def pg_url():
    require(pg_available(), "CHAT_REQUIRE_PG")
    url = await fresh_pg_database()
    yield url
    await drop_pg_database(url)


def picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (900, 600), (30, 160, 90)).save(out, "JPEG")
    return out.getvalue()


async def test_a_file_uploaded_on_one_node_downloads_from_another(spawn_server, pg_url, tmp_path):
    require(RedisProcess.available(), "CHAT_REQUIRE_REDIS")
    redis = RedisProcess().start()
    try:
        # Each node its own files directory: nothing on disk is shared, the bytes travel in PostgreSQL.
        a, b = [await spawn_server({"CHAT_DATABASE_URL": pg_url, "CHAT_REDIS_URL": redis.url,
                                    "CHAT_FILES_DIR": str(tmp_path / name)}) for name in ("a", "b")]
        (alice, alice_token), (bob, bob_token), (_, stranger_token) = await signed_up(a.url, 3)
        room = await group_of(a.url, alice_token, [bob])
        data = picture()
        big = os.urandom(3 * MIB)
        async with ApiClient(a.url, alice_token) as on_a, ApiClient(b.url, bob_token) as on_b, \
                ApiClient(b.url, stranger_token) as stranger_on_b:
            image = await on_a.upload(data, name="field.jpg")
            blob = await on_a.upload(big, name="data.bin")
            async with ChatClient(b.ws_url, bob_token) as bob_live:
                async with ChatClient(a.ws_url, alice_token) as alice_live:
                    ack = await alice_live.send(room, "photos", files=[image["id"], blob["id"]])
                async for event in bob_live.events():  # bob, on node B, hears of it
                    if getattr(event, "seq", None) == ack.seq:
                        assert [f.id for f in event.files] == [image["id"], blob["id"]]
                        break
            status, headers, body = await on_b.download(image["id"])
            assert (status, body) == (200, data) and headers["ETag"] == f'"{image["sha256"]}"'
            status, headers, thumb = await on_b.download(image["id"], thumb=True)
            assert status == 200 and Image.open(io.BytesIO(thumb)).size == (320, 213)
            status, _, body = await on_b.download(blob["id"])
            assert status == 200 and hashlib.sha256(body).hexdigest() == blob["sha256"]
            status, _, part = await on_b.download(blob["id"], headers={"Range": f"bytes={MIB - 5}-{MIB + 4}"})
            assert (status, part) == (206, big[MIB - 5 : MIB + 5])
            assert (await stranger_on_b.download(image["id"]))[0] == 403
        for node in ("a", "b"):  # nothing was written to either node's directory
            assert not [p for p in (tmp_path / node).rglob("*") if p.is_file()]
    finally:
        redis.stop()


async def test_a_filesystem_node_sends_the_exact_bytes_whole_and_in_ranges(spawn_server, tmp_path):
    """The server process runs on uvloop where it is installed, which has no `loop.sendfile`: the
    filesystem engine then sends what the socket's buffer takes in one `os.sendfile` and hands
    the transport the rest as slices of the mapped file (chatserver/http/sending.py). A socket
    buffer holds at most 4 MiB here (`net.ipv4.tcp_wmem`), so a 16 MiB file goes both ways, the
    mapping starting wherever the socket stopped taking bytes."""
    node = await spawn_server({"CHAT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"})
    (_, token), = await signed_up(node.url, 1)
    data = os.urandom(16 * MIB + 12_345)  # several slices, the last one partial
    async with ApiClient(node.url, token) as api:
        big, tiny, empty = [await api.upload(body) for body in (data, b"x", b"")]
        status, headers, body = await api.download(big["id"])
        assert (status, int(headers["Content-Length"])) == (200, len(data)) and body == data
        spans = [(0, 0), (4095, 4097), (MIB - 3, MIB + 3), (MIB + 70_000, 16 * MIB + 1), (3 * MIB, len(data) - 1)]
        for first, last in spans:  # inclusive, across page and slice boundaries
            status, headers, part = await api.download(big["id"], headers={"Range": f"bytes={first}-{last}"})
            assert (status, part) == (206, data[first : last + 1]), (first, last)
            assert headers["Content-Range"] == f"bytes {first}-{last}/{len(data)}"
        status, _, part = await api.download(big["id"], headers={"Range": "bytes=-100"})
        assert (status, part) == (206, data[-100:])
        assert (await api.download(tiny["id"]))[::2] == (200, b"x")
        assert (await api.download(empty["id"]))[::2] == (200, b"")


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


@pytest.fixture(params=["filesystem", "database"])
async def engine_env(request, tmp_path):
    """The filesystem engine beside SQLite; the database engine on PostgreSQL."""
    if request.param == "filesystem":
        yield request.param, {"CHAT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"}
        return
    require(pg_available(), "CHAT_REQUIRE_PG")
    url = await fresh_pg_database()
    yield request.param, {"CHAT_DATABASE_URL": url, "CHAT_FILE_STORE": "database"}
    await drop_pg_database(url)


async def test_ten_concurrent_25_mib_uploads_stream(spawn_server, engine_env):
    engine, env = engine_env
    node = await spawn_server(env)
    (_, token), = await signed_up(node.url, 1)
    async with ApiClient(node.url, token) as api:
        await api.upload(picture())  # the first upload loads what it needs (Pillow, the thread pools)
        pid = node.proc.pid
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
        before = _status(pid)["VmRSS"]
        block = os.urandom(256 * 1024)

        async def body(n: int):
            yield uuid.uuid4().bytes * 16  # each upload different: no two share a blob
            for _ in range(25 * 4 - 1):
                yield block
            yield b"x" * (256 * 1024 - 256)

        sizes = await asyncio.gather(*(api.upload(body(n)) for n in range(10)))
    assert [s["size"] for s in sizes] == [25 * MIB] * 10
    growth = _status(pid)["VmHWM"] - before
    print(f"{engine}: peak RSS growth during 10 concurrent 25 MiB uploads: {growth / MIB:.1f} MiB")
    assert growth < 64 * MIB, f"{growth / MIB:.1f} MiB"
