"""CPU per delivery of the hub's fan-out alone, beside a bare write loop, in one process.

    .venv/bin/python scripts/bench_hub.py                  # 1,000 members, bursts of 1 and 4
    .venv/bin/python scripts/bench_hub.py --members 200 --messages 200 --bursts 1

`scripts/bench_fanout.py` measures whole servers from outside, and on a
shared machine its figures move with the load of others (the generator
starved of CPU sends in bursts, which changes the server's cost per
delivery). This isolates the fan-out itself: messages enter
`Hub._sequence` as the bus hands them over, and the loop turn ends with the
flusher writing to real loopback sockets (uvloop when installed), whose far
ends a child process on the other CPU reads and discards. What is timed is
this thread's CPU time (`time.thread_time`) over the whole run, the event
loop's own writes included. `bare` is a loop under any hub: one frame
encoded once, one `transport.write` per member, nothing else; `send` is the
floor: one `send(2)` per member on its socket, which is what the picows
broadcast does per member, in C, when the transport's buffer is empty.
`--burst N` puts N messages in each loop turn: messages arriving faster than
the loop turns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chatserver import hub as hub_module  # noqa: E402
from chatserver import wsframe  # noqa: E402
from chatserver.connection import Connection, Flusher  # noqa: E402
from chatserver.metrics import Metrics  # noqa: E402
from chatserver.wsproto import BorrowedSocket  # noqa: E402
from client_proto.codec import JSON_SUBPROTOCOL, server_codec  # noqa: E402
from storage.records import Message, User  # noqa: E402

READER = r"""
import os, selectors, socket, sys
with __import__("contextlib").suppress(OSError):
    os.sched_setaffinity(0, {int(sys.argv[3])})
port, n = int(sys.argv[1]), int(sys.argv[2])
sel = selectors.DefaultSelector()
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    socks.append(s)
print("connected", flush=True)
while socks:
    for key, _ in sel.select():
        try:
            data = key.fileobj.recv(1 << 18)
        except BlockingIOError:
            continue
        if not data:
            sel.unregister(key.fileobj)
            socks.remove(key.fileobj)
"""


class _Sink(asyncio.Protocol):
    def __init__(self, transports: list) -> None:
        self.transports = transports

    def connection_made(self, transport) -> None:
        self.transports.append(transport)


def _message(room_id: str, seq: int, sender: User, text: str) -> Message:
    return Message(room_id=room_id, seq=seq, id=f"m_{seq:016x}", ts=time.time_ns() // 1_000_000, sender=sender,
                   kind="text", text=text, cid=f"c{seq}")


async def run(members: int, messages: int, bursts: list[int], size: int, reader_cpu: int) -> list[dict]:
    loop = asyncio.get_running_loop()
    transports: list = []
    borrowed: list = []
    server = await loop.create_server(lambda: _Sink(transports), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader = subprocess.Popen([sys.executable, "-c", READER, str(port), str(members), str(reader_cpu)],
                              stdout=subprocess.PIPE)
    try:
        await loop.run_in_executor(None, reader.stdout.readline)
        while len(transports) < members:
            await asyncio.sleep(0.01)
        hub = hub_module.Hub(None, None, replay_limit=0, heartbeat=3600.0, metrics=Metrics())
        flusher = getattr(hub, "flusher", None) or Flusher()
        flush = getattr(flusher, "flush_now", None) or flusher._flush  # older hubs: `_flush` only
        codec = server_codec(JSON_SUBPROTOCOL)
        sender = User(id="u_bench", name="bench", display="bench", bot=True)
        room_id = "r_bench"
        try:
            room = hub_module._Room(room_id, next_seq=1, flusher=flusher)
        except TypeError:  # an older hub (rooms without an id or flusher)
            room = hub_module._Room(next_seq=1)
        hub._rooms[room_id] = room
        borrowed[:] = [BorrowedSocket.of(transport) for transport in transports]
        for i, (transport, socket) in enumerate(zip(transports, borrowed)):
            user = User(id=f"u_{i}", name=f"m{i}", display=f"m{i}")
            kwargs = dict(transport=transport, user=user, token_hash="", codec=codec, flusher=flusher,
                          send_buffer=1 << 24)
            conn = None
            for extra in ({"socket": socket}, {}, {"ws": None}):  # older connections: no socket; aiohttp's ws
                with contextlib.suppress(TypeError):
                    conn = Connection(**kwargs, **extra)
                    break
            conn.ready.set()
            room.json.add(conn)
        text = "x" * size
        results = []
        for burst in bursts:
            for target in ("hub", "bare", "send"):
                seq = room.next_seq
                turns = max(1, messages // burst)
                await asyncio.sleep(0.2)  # the reader catches up with the previous run
                started = time.thread_time()
                for _ in range(turns):
                    if target == "hub":
                        for _ in range(burst):
                            hub._sequence(room_id, _message(room_id, seq, sender, text))
                            seq += 1
                        flush()
                    else:
                        for _ in range(burst):
                            frame = hub_module.message_frame(_message(room_id, seq, sender, text))
                            data = wsframe.data_frame(codec.encode(frame), False)
                            if target == "bare":
                                for transport in transports:
                                    transport.write(data)
                            else:
                                for socket in borrowed:
                                    socket.send(data)
                            seq += 1
                    await asyncio.sleep(0)  # the loop turns: uvloop writes what the kernel did not take
                cpu = time.thread_time() - started
                room.next_seq = seq
                deliveries = turns * burst * members
                results.append({"target": target, "burst": burst, "deliveries": deliveries,
                                "cpu_us_per_delivery": cpu / deliveries * 1e6})
        return results
    finally:
        for socket in borrowed:
            socket.detach()
        for transport in transports:
            transport.abort()
        server.close()
        with contextlib.suppress(Exception):
            reader.wait(timeout=10)
        if reader.poll() is None:
            reader.kill()


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=2000, help="messages per measurement")
    parser.add_argument("--bursts", default="1,4", help="messages per loop turn, one measurement each")
    parser.add_argument("--size", type=int, default=64, help="characters of each message text")
    parser.add_argument("--repeat", type=int, default=3, help="runs; each figure is the lowest (least disturbed)")
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    reader_cpu = cpus[-1]  # the measured thread runs on the first (pinned there when run as a script)
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    bursts = [int(b) for b in args.bursts.split(",")]
    best: dict[tuple, dict] = {}
    for _ in range(args.repeat):
        for r in runner(run(args.members, args.messages, bursts, args.size, reader_cpu)):
            key = (r["target"], r["burst"])
            if key not in best or r["cpu_us_per_delivery"] < best[key]["cpu_us_per_delivery"]:
                best[key] = r
    rows = list(best.values())
    print(f"{args.members} members, {args.messages} messages a measurement, lowest of {args.repeat} runs")
    print(f"{'burst':>5}  {'hub µs':>7}  {'bare µs':>7}  {'send µs':>7}  hub/bare")
    for burst in bursts:
        h, b, d = (best[(target, burst)]["cpu_us_per_delivery"] for target in ("hub", "bare", "send"))
        print(f"{burst:>5}  {h:7.3f}  {b:7.3f}  {d:7.3f}  {h / b:.2f}x")
    return rows


if __name__ == "__main__":
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) > 1:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    main()
