"""chat-loadtest (scripts/loadtest.py): its frame parsing without sockets, and a --quick run
against the in-process server. No timing is asserted: figures are benchmark output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import msgspec
import pytest

from chatserver import wsframe
from scripts.loadtest import Plan, _ChatConn, _Stats, client_frame, parse_args, run_loadtest
from tests.conftest import free_port

SERVERS = Path(__file__).resolve().parents[2] / "scripts" / "bench_servers"

STEP_FIELDS = {
    "rate", "offered_msgs_per_s", "sent", "acked", "acked_per_s", "dup_acks", "errors", "unacked", "expected",
    "deliveries", "deliveries_per_s", "lost", "duplicates", "order_violations", "seq_gaps", "latency_ms",
    "ack_latency_ms", "seconds", "drained", "server_cpu_seconds", "server_cpu_us_per_delivery", "server_rss",
    "server_run_delay", "generator_cpu", "generator_run_delay", "generator_saturated",
}
TOP_FIELDS = {
    "tool", "version", "target", "codec", "urls", "members", "rooms", "senders", "conns_per_user", "size",
    "duration", "setup_seconds", "connect_seconds", "server", "steps", "totals",
}
TOTAL_FIELDS = {
    "sent", "acked", "unacked", "deliveries", "lost", "duplicates", "order_violations", "seq_gaps", "errors", "closes",
    "disconnects", "generator_saturated",
}


def unmask(frame: bytes) -> bytes:
    length = frame[1] & 0x7F
    start = 2 if length < 126 else 4
    key, payload = frame[start:start + 4], frame[start + 4:]
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("size", [0, 5, 125, 126, 300, 70_000])
def test_client_frames_are_masked_and_unmask_to_the_payload(size):
    payload = os.urandom(size)
    frame = client_frame(payload, 0x1)
    assert frame[0] == 0x81 and frame[1] & 0x80
    if size < 65536:
        assert unmask(frame) == payload


class _FakeTransport:
    def __init__(self):
        self.written = []

    def write(self, data):
        self.written.append(data)

    def close(self):
        pass

    def is_closing(self):
        return False


async def test_frames_split_anywhere_are_parsed_once_each_in_order():
    stats = _Stats()
    conn = _ChatConn(stats, b"GET / HTTP/1.1\r\n\r\n", room_id="r1", room_size=3, tag="t", token="tok")
    conn.connection_made(_FakeTransport())
    for _ in range(3):
        stats.sent_ns.append(0)
        stats.counts.append(0)
        stats.expected.append(0)
    events = [{"op": "message", "room": "r1", "seq": seq, "text": f"~{seq - 1}~0~" + "x" * 200, "kind": "text",
               "from": {"id": "u", "name": "n", "display": "d", "bot": True}} for seq in (1, 2, 3)]
    data = b"HTTP/1.1 101 Switching Protocols\r\n\r\n" + b"".join(
        wsframe.data_frame(msgspec.json.encode(e), False) for e in events)
    for i in range(0, len(data), 7):  # the worst case: every frame split across reads
        conn.data_received(data[i:i + 7])
    assert stats.counts == [1, 1, 1]
    assert stats.delivered == 3 and stats.order_violations == 0 and stats.seq_gaps == 0
    conn.data_received(wsframe.data_frame(msgspec.json.encode(events[1]), False))  # a repeat
    assert stats.order_violations == 1


def test_rates_parse_as_steps():
    plan, _ = parse_args(["--url", "http://x:1", "--rate", "5,10", "--rate", "20"])
    assert plan.rates == [5.0, 10.0, 20.0]


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_quick_run_loses_nothing_and_writes_the_documented_json(server, tmp_path, codec):
    out = tmp_path / "result.json"
    plan = Plan.quick([server.url], codec=codec, duration=1.5, server_pids=[os.getpid()])
    await run_loadtest(plan, json_path=str(out))
    result = json.loads(out.read_text())
    assert TOP_FIELDS <= set(result)
    assert TOTAL_FIELDS <= set(result["totals"])
    assert len(result["steps"]) == 1 and STEP_FIELDS <= set(result["steps"][0])
    step, totals = result["steps"][0], result["totals"]
    assert step["sent"] > 0 and step["acked"] == step["sent"] and step["unacked"] == 0 and step["drained"]
    assert step["deliveries"] == step["expected"] == step["acked"] * 10  # 20 members in 2 rooms
    assert totals["lost"] == totals["duplicates"] == totals["order_violations"] == totals["seq_gaps"] == 0
    assert totals["errors"] == {} and totals["closes"] == {}
    assert set(step["latency_ms"]) == {"p50", "p90", "p99", "max", "mean"}
    assert step["server_cpu_us_per_delivery"] is not None and result["server"]["rss_per_connection"] is not None


REFERENCE_SERVERS = ["aiohttp_broadcast.py", "bare_broadcast.py"]


@contextlib.asynccontextmanager
async def reference_server(script: str):
    """One of the benchmark's reference servers, listening; yields its process and port."""
    if script == "bare_broadcast.py":
        pytest.importorskip("picows", reason="picows comes with the bench extra")
    port = free_port()
    server = subprocess.Popen([sys.executable, str(SERVERS / script), "--port", str(port)])
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                except OSError:
                    assert server.poll() is None, f"{script} exited with {server.returncode}"
                    await asyncio.sleep(0.1)
        yield server, port
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize("script", REFERENCE_SERVERS)
async def test_the_reference_broadcasts_deliver_every_message_once_in_order(script, tmp_path):
    """The benchmark's reference servers speak the protocol the load generator expects."""
    async with reference_server(script) as (server, port):
        out = tmp_path / "result.json"
        plan = Plan.quick([f"http://127.0.0.1:{port}"], target="bare", duration=1.0, server_pids=[server.pid])
        await run_loadtest(plan, json_path=str(out))
        result = json.loads(out.read_text())
        step, totals = result["steps"][0], result["totals"]
        assert step["sent"] > 0 and step["acked"] == step["sent"]
        assert step["deliveries"] == step["expected"] == step["acked"] * 10  # 20 members in 2 rooms
        assert totals["lost"] == totals["duplicates"] == totals["order_violations"] == totals["seq_gaps"] == 0


@pytest.mark.parametrize("script", REFERENCE_SERVERS)
async def test_a_member_dropping_costs_the_others_nothing(script):
    async with reference_server(script) as (_, port), aiohttp.ClientSession() as session:
        gone, sender, listener = [await session.ws_connect(f"http://127.0.0.1:{port}/ws") for _ in range(3)]
        for ws in (gone, sender, listener):
            await ws.send_str(json.dumps({"op": "join", "room": "r", "ref": 0}))
            assert json.loads((await ws.receive(timeout=10)).data)["op"] == "ok"
        gone._response.connection.transport.abort()  # no close frame: the server finds out by writing
        for i in range(200):
            await sender.send_str(json.dumps({"op": "send", "room": "r", "text": "x", "cid": str(i), "ref": i}))
        seqs = []
        while len(seqs) < 200:
            seqs.append(json.loads((await listener.receive(timeout=10)).data)["seq"])
        assert seqs == list(range(1, 201))
        assert not sender.closed


def test_users_in_several_rooms_is_an_idle_shape_only():
    with pytest.raises(ValueError):
        Plan(urls=["http://x:1"], members=10, rooms=5, senders=1, rooms_per_user=2).validate()
    with pytest.raises(ValueError):
        Plan(urls=["http://x:1"], members=10, rooms=2, senders=0, rooms_per_user=3).validate()


async def test_idle_users_each_hear_several_rooms(server):
    """The idle shape "5,000 users each in 3 rooms", small: every connection is attached to three rooms."""
    from chatserver import keys

    from tests.chatserver.conftest import eventually

    hub = server.app[keys.HUB]
    plan = Plan(urls=[server.url], members=12, rooms=4, senders=0, rates=[], duration=3.0, warmup=0.0,
                conns_per_user=1, rooms_per_user=3, settle=0.2, server_pids=[os.getpid()])
    run = asyncio.create_task(run_loadtest(plan))
    await eventually(lambda: hub.connection_count == 12 and all(len(c.rooms) == 3 for c in hub.connections()))
    result = await run
    assert result["rooms_per_user"] == 3 and result["totals"]["closes"] == {} and result["totals"]["errors"] == {}
    assert result["server"]["rss_per_connection"] is not None


@pytest.mark.parametrize("script", REFERENCE_SERVERS)
async def test_the_reference_broadcasts_take_users_in_several_rooms(script):
    async with reference_server(script) as (server, port):
        plan = Plan(urls=[f"http://127.0.0.1:{port}"], target="bare", members=9, rooms=3, senders=0, rates=[],
                    duration=0.5, warmup=0.0, rooms_per_user=3, settle=0.1, server_pids=[server.pid])
        result = await run_loadtest(plan)  # each connection is ready once all three joins are answered
        assert result["totals"]["closes"] == {} and result["totals"]["errors"] == {}
