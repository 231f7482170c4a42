"""Reactions storm: many members toggling reactions on the same few messages while others chat.

    .venv/bin/python scripts/bench_reactions.py                 # 200 reactors, 1,000 reactions/s, 20 senders
    .venv/bin/python scripts/bench_reactions.py --quick         # 40 reactors, 200 reactions/s, 5 senders
    .venv/bin/python scripts/bench_reactions.py --server http://127.0.0.1:8080   # a running server

Every reaction is a timeline update entry (docs/protocol.md §6.4) sequenced by the group commit
like a message. The members of one room (bots, made through the HTTP API) are: `reactors`, each
toggling a reaction (`react`, on or off as it last left it) on one of `messages` target messages
at `reaction_rate / reactors` a second; `senders`, each sending `send_rate` messages a second.
Every member's connection reads everything the room gets. The senders' connections are the
observers: each checks that it received every entry of the room once, in gapless seq order, and
measures delivery latency (arrival minus the entry's `ts`, one host's clock) of the reaction
entries. The reactors' connections are raw sockets that write their frames and read and drop what
comes (no WebSocket parsing: a Python client decoding 200 x 1,100 frames a second would measure
itself, not the server). Ingest: reaction entries stored a second (as the observers saw them)
against the rate offered.

Without `--server` it starts `python -m chatserver` on a fresh SQLite file (pinned to CPU 0 with
taskset when there is one); this process is the load generator. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from client_proto.http import ApiClient  # noqa: E402

EMOJI = ["👍", "❤️", "😂", "🎉", "👀", "🙏"]
FULL = dict(reactors=200, messages=20, reaction_rate=1000.0, senders=20, send_rate=5.0, duration=10.0, warmup=2.0)
QUICK = dict(reactors=40, messages=20, reaction_rate=200.0, senders=5, send_rate=5.0, duration=5.0, warmup=1.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def local_server():
    """`python -m chatserver` on a fresh SQLite file; yields its URL."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-reactions-"))
    port = free_port()
    env = {**os.environ, "CHAT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'chat.db'}",
           "CHAT_SEND_RATE": "1000", "CHAT_SEND_BURST": "1000", "CHAT_LOG_LEVEL": "WARNING"}
    argv = [sys.executable, "-m", "chatserver", "--host", "127.0.0.1", "--port", str(port)]
    if shutil.which("taskset"):
        argv = ["taskset", "-c", "0", *argv]
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(url + "/healthz") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)


async def setup(url: str, members: int, targets: int) -> tuple[str, list[str], list[int]]:
    """One room of `members` bots and `targets` messages to react to: (room id, tokens, target seqs)."""
    tag = uuid.uuid4().hex[:6]
    async with ApiClient(url) as api:
        password = uuid.uuid4().hex
        await api.register(f"storm{tag}", password)
        owner = api.as_user(await api.login(f"storm{tag}", password))
        room = (await owner.create_room(f"storm {tag}"))["id"]
        limit = asyncio.Semaphore(20)

        async def bot(i: int) -> str:
            async with limit:
                made = await owner.post("/api/bots", {"name": f"storm{tag}_{i}"})
                await owner.add_member(room, made["user"]["id"])
                return made["token"]

        tokens = await asyncio.gather(*(bot(i) for i in range(members)))
        seqs = []
        for n in range(targets):
            ack = await owner.post(f"/api/rooms/{room}/messages", {"text": f"react to me {n}", "cid": f"t{n}"})
            seqs.append(ack["seq"])
    return room, tokens, seqs


class RawReactor(asyncio.Protocol):
    """A member that sends `react` frames and drops what it receives, unparsed (cheap at any rate)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.upgraded = asyncio.get_running_loop().create_future()
        self.head = b""
        self.received = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if not self.upgraded.done():
            self.head += data
            if b"\r\n\r\n" in self.head:
                self.upgraded.set_result(self.head.startswith(b"HTTP/1.1 101"))

    def connection_lost(self, exc) -> None:
        if not self.upgraded.done():
            self.upgraded.set_result(False)

    def send(self, frame: dict) -> None:
        """One masked text frame; the zero mask (allowed by RFC 6455) leaves the payload as is."""
        payload = json.dumps(frame).encode()
        n = len(payload)
        if n < 126:
            head = bytes([0x81, 0x80 | n])
        elif n < 65536:
            head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
        self.transport.write(head + b"\0\0\0\0" + payload)


async def raw_reactor(url: str, token: str) -> RawReactor:
    host, port = url.split("//", 1)[1].split(":")
    loop = asyncio.get_running_loop()
    _, reactor = await loop.create_connection(RawReactor, host, int(port))
    reactor.transport.write(
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: chat.v1.json\r\n\r\n".encode()
    )
    assert await reactor.upgraded, "the WebSocket handshake failed"
    reactor.send({"op": "hello", "token": token})
    return reactor


class Member:
    """A sender's connection, an observer: reads everything, keeps the seqs, times the reactions."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, room: str):
        self.ws = ws
        self.room = room
        self.refs = 0
        self.seqs: list[int] = []
        self.latencies: list[float] = []  # seconds, reaction entries only
        self.reactions_seen = 0
        self.errors: dict[str, int] = {}
        self.measuring = False

    async def request(self, frame: dict) -> None:
        """Send without waiting for the answer (an error is counted when it comes)."""
        self.refs += 1
        await self.ws.send_str(json.dumps({**frame, "ref": self.refs}))

    async def read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            now = time.time()
            frame = json.loads(msg.data)
            op = frame.get("op")
            if op == "message" and frame["room"] == self.room:
                self.seqs.append(frame["seq"])
                if self.measuring and frame["kind"] == "update" and frame["update"]["type"] == "reaction":
                    self.latencies.append(now - frame["ts"] / 1000)
                    self.reactions_seen += 1
            elif op == "error":
                self.errors[frame["code"]] = self.errors.get(frame["code"], 0) + 1


async def connect(session: aiohttp.ClientSession, url: str, token: str, room: str) -> Member:
    ws = await session.ws_connect(url.replace("http", "ws", 1) + "/ws", protocols=("chat.v1.json",),
                                  max_msg_size=0)
    await ws.send_str(json.dumps({"op": "hello", "token": token}))
    welcome = await ws.receive_json()
    assert welcome["op"] == "welcome", welcome
    return Member(ws, room)


async def paced(rate: float, until: float, act) -> None:
    """Call `act()` `rate` times a second (from a random phase) until `until`."""
    interval = 1.0 / rate
    next_at = time.monotonic() + random.random() * interval
    while next_at < until:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await act()
        next_at += interval


async def storm(url: str, reactors: int, messages: int, reaction_rate: float, senders: int, send_rate: float,
                duration: float, warmup: float) -> dict:
    room, tokens, targets = await setup(url, reactors + senders, messages)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        raws = [await raw_reactor(url, token) for token in tokens[:reactors]]
        members = [await connect(session, url, token, room) for token in tokens[reactors:]]
        readers = [asyncio.create_task(m.read()) for m in members]
        rng = random.Random(7)
        state: dict[tuple[int, int, str], bool] = {}
        sent = {"reactions": 0, "messages": 0}
        start = time.monotonic()
        measure_from = start + warmup
        until = measure_from + duration

        def reactor(i: int):
            raw = raws[i]

            async def act():
                target = targets[rng.randrange(len(targets))]
                emoji = EMOJI[rng.randrange(len(EMOJI))]
                on = not state.get((i, target, emoji), False)  # always a change: always an entry
                state[(i, target, emoji)] = on
                sent["reactions"] += time.monotonic() >= measure_from
                raw.send({"op": "react", "room": room, "seq": target, "emoji": emoji, "on": on})

            return act

        def sender(i: int):
            member = members[i]

            async def act():
                member.measuring = time.monotonic() >= measure_from
                sent["messages"] += member.measuring
                await member.request({"op": "send", "room": room, "text": "chat during the storm",
                                      "cid": uuid.uuid4().hex})

            return act

        await asyncio.gather(
            *(paced(reaction_rate / reactors, until, reactor(i)) for i in range(reactors)),
            *(paced(send_rate, until, sender(i)) for i in range(senders)),
        )
        for m in members:
            m.measuring = False
        # Let the last entries arrive: every observer reaches the room's last seq.
        async with ApiClient(url, token=tokens[-1]) as api:
            last = (await api.get(f"/api/rooms/{room}/messages", limit=1))["messages"][-1]["seq"]
        deadline = time.monotonic() + 30
        observers = members
        while time.monotonic() < deadline and any(not o.seqs or o.seqs[-1] < last for o in observers):
            await asyncio.sleep(0.1)
        for raw in raws:
            raw.transport.close()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    latencies = sorted(x * 1000 for o in observers for x in o.latencies)
    in_order = all(o.seqs == list(range(o.seqs[0], o.seqs[0] + len(o.seqs))) for o in observers if o.seqs)
    complete = all(o.seqs and o.seqs[-1] >= last for o in observers)
    stored = max(o.reactions_seen for o in observers)
    errors: dict[str, int] = {}
    for m in members:
        for code, n in m.errors.items():
            errors[code] = errors.get(code, 0) + n
    return {
        "reactors": reactors, "messages": messages, "senders": senders,
        "offered_reactions_per_s": reaction_rate, "offered_messages_per_s": send_rate * senders,
        "reactions_sent_per_s": round(sent["reactions"] / duration, 1),
        "reaction_entries_stored_per_s": round(stored / duration, 1),
        "reactor_bytes_received": sum(r.received for r in raws),
        "observers_every_entry_once_in_order": in_order and complete,
        "reaction_deliveries_timed": len(latencies),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "errors": errors,
    }


def percentile(ordered: list[float], p: float) -> float | None:
    """The nearest-rank percentile of an ascending list (None when empty)."""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))], 1)


async def main_async(args: argparse.Namespace) -> dict:
    sizes = dict(QUICK if args.quick else FULL)
    for key in sizes:
        value = getattr(args, key)
        if value is not None:
            sizes[key] = value
    if args.server:
        return await storm(args.server, **sizes)
    async with local_server() as url:
        return await storm(url, **sizes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="a running server's URL (default: start one on SQLite)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few seconds")
    for key, value in FULL.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None, help=f"default {value}")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    if shutil.which("taskset"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {1 % (os.cpu_count() or 1)})
    result = asyncio.run(main_async(args))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
