"""`chat-loadtest`: drive a chat server over its real protocol and measure what it delivers.

M member connections in K rooms, S of them sending R messages a second each
for D seconds (one step per rate given), against one or several server URLs
(connections spread round-robin over them). It reports deliveries a second,
loss, duplicates, order violations, latency from send to receipt, and, given
the server's pid(s), the server's CPU time per delivery and its RSS.

    chat-loadtest --url http://127.0.0.1:8080 --members 1000 --rooms 1 --senders 1 \\
        --rate 50 --rate 100 --duration 10 --server-pid 1234 --json out.json --plot out.png

Targets (`--target`):
- `chat` (default): this project's server (docs/protocol.md). Users (bots by
  default), rooms and memberships are created through the HTTP API first.
- `bare`: `scripts/bench_servers/bare_broadcast.py`, and `socketio`: the
  python-socketio and Node socket.io servers in `scripts/bench_servers/`.
  They keep the same room semantics (a per-room seq, the same message fields)
  with no storage and no accounts: a connection joins its room by name.

How it measures (and stays cheap: one core of load generator must keep up
with the server):
- Receivers are raw asyncio protocols, not `ChatClient`: WebSocket frames are
  parsed straight out of `data_received`, decoded with msgspec into a small
  struct, and a read's frames share one clock reading.
- Each test message's text is `~<index>~<send time ns>~<padding>`, so the
  send time travels with the message; the index counts its deliveries.
- Per connection, a room's seq must be strictly increasing: a repeat or a
  step back is an order violation, a jump a seq gap.
- Loss: for every acked message, the members of its room that did not get it
  once the step drained; duplicates: deliveries beyond that count. A step
  that does not drain within `--drain` seconds (the server fell behind) ends
  the run: higher rates would only measure its backlog.
- Server CPU per delivery: utime+stime of `/proc/<pid>/stat` over the step
  (sending and draining) divided by the deliveries received in it.
- The generator's own CPU (`time.process_time`) over the sending window;
  above 90 % of a core the output says the generator was saturated.
- Run delay (`/proc/<pid>/task/*/schedstat`): the time the server's and the
  generator's threads were runnable but waited for a CPU, as a fraction of
  the step. Far above zero, other work on the machine shaped the figures.

Senders honour the server's per-connection limit: `--rate` is per sender and
must stay under the server's `CHAT_SEND_RATE` (20/s by default; start the
server with a higher `CHAT_SEND_RATE`/`CHAT_SEND_BURST` for benchmarks).
`rate_limited` replies are counted in `errors`.

JSON result (`--json`), every figure per step and for the whole run:
    tool, version, target, codec, urls, members, rooms, senders, conns_per_user,
    size, duration, setup_seconds, connect_seconds,
    server: {pids, rss_before_connect, rss_connected, rss_per_connection},
    steps: [{rate, offered_msgs_per_s, sent, acked, acked_per_s, dup_acks, errors, unacked,
             expected, deliveries, deliveries_per_s, lost, duplicates,
             order_violations, seq_gaps, latency_ms: {p50, p90, p99, max, mean},
             ack_latency_ms: {...}, seconds, drained, server_cpu_seconds,
             server_cpu_us_per_delivery, server_rss, server_run_delay,
             generator_cpu, generator_run_delay, generator_saturated}],
    stopped (only when a step did not drain and the higher rates were skipped),
    totals: {sent, acked, unacked, deliveries, lost, duplicates, order_violations,
             seq_gaps, closes, disconnects, generator_saturated}
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import resource
import secrets
import shutil
import struct
import sys
import time
from array import array
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgspec

from client_proto.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL
from client_proto.http import ApiClient

TARGETS = ("chat", "bare", "socketio")
SATURATED = 0.9  # fraction of a core above which the generator says it was the limit
TICK = 0.005  # seconds between send rounds
_ns = time.monotonic_ns


@dataclass
class Plan:
    """What to run. `rates` are messages a second per sender, one step each."""

    urls: list[str]
    target: str = "chat"
    codec: str = "json"
    members: int = 100
    rooms: int = 1
    senders: int = 1
    rates: list[float] = field(default_factory=lambda: [10.0])
    duration: float = 10.0
    warmup: float = 1.0
    size: int = 64
    drain: float = 10.0
    settle: float = 1.0
    server_pids: list[int] = field(default_factory=list)
    accounts: str = "bots"
    conns_per_user: int = 1
    # Rooms each user is a member of: its own room (where it sends) and the next ones. More than one
    # only without senders (the idle shape "5,000 users each in 3 rooms"): a connection then hears
    # several rooms, which the per-connection seq check of a sending run does not expect.
    rooms_per_user: int = 1
    setup_concurrency: int = 16
    connect_concurrency: int = 64

    @classmethod
    def quick(cls, urls: list[str], **overrides: Any) -> "Plan":
        """Small sizes and a few seconds: for smoke tests."""
        values: dict[str, Any] = dict(members=20, rooms=2, senders=4, rates=[5.0], duration=2.0, warmup=0.5,
                                      drain=5.0, settle=0.2)
        values.update(overrides)
        return cls(urls=urls, **values)

    def validate(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}")
        if self.codec not in ("json", "msgpack") or (self.codec == "msgpack" and self.target != "chat"):
            raise ValueError("codec: json, or msgpack with --target chat")
        if not self.urls:
            raise ValueError("at least one --url")
        if self.members < 1 or self.rooms < 1 or self.rooms > self.members:
            raise ValueError("need 1 <= rooms <= members")
        if not 0 <= self.senders <= self.members:
            raise ValueError("need 0 <= senders <= members")
        if self.conns_per_user < 1:
            raise ValueError("conns_per_user >= 1")
        if not 1 <= self.rooms_per_user <= self.rooms or (self.rooms_per_user > 1 and self.senders):
            raise ValueError("need 1 <= rooms_per_user <= rooms, and no senders when above 1")
        if self.accounts not in ("bots", "users"):
            raise ValueError("accounts: bots or users")


# ---------------------------------------------------------------------------- wire helpers


class _In(msgspec.Struct):
    """The few fields of a server frame the generator looks at; the rest is skipped unparsed."""

    op: str = ""
    seq: int = 0
    text: str | None = None
    ref: int | str | None = None
    code: str | None = None
    dup: bool = False


_json_in = msgspec.json.Decoder(_In).decode
_msgpack_in = msgspec.msgpack.Decoder(_In).decode
_sio_event = msgspec.json.Decoder(tuple[str, _In]).decode
_sio_ack = msgspec.json.Decoder(tuple[_In]).decode
_json_out = msgspec.json.encode
_msgpack_out = msgspec.msgpack.encode


def client_frame(payload: bytes, opcode: int) -> bytes:
    """One masked client frame with FIN set (RFC 6455 §5.3)."""
    n = len(payload)
    key = os.urandom(4)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0xFF, n)
    if n:
        mask = (key * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "little") ^ int.from_bytes(mask, "little")).to_bytes(n, "little")
    return head + key + payload


def _handshake(host: str, port: int, path: str, subprotocol: str | None) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# ---------------------------------------------------------------------------- shared counters


class _Stats:
    """Everything the connections count, in flat arrays indexed by test message."""

    def __init__(self) -> None:
        self.sent_ns: list[int] = []
        self.counts: list[int] = []
        self.expected: list[int] = []
        self.replied = 0
        self.acked = 0
        self.dup_acks = 0
        self.expected_total = 0
        self.errors: dict[str, int] = {}
        self.delivered = 0
        self.order_violations = 0
        self.seq_gaps = 0
        self.unknown = 0
        self.lat = array("q")  # ns, send -> receipt, per delivery
        self.rt = array("q")  # ns, receipt time, per delivery
        self.ack_lat = array("q")  # ns, send -> ack, per acked send
        self.ack_rt = array("q")  # ns, ack receipt time
        self.closes: dict[int, int] = {}
        self.disconnects = 0
        self.stopping = False


# ---------------------------------------------------------------------------- connections


class _Conn(asyncio.Protocol):
    """A lean client WebSocket: handshake, then frames parsed straight from `data_received`."""

    binary = False

    def __init__(self, stats: _Stats, request: bytes, room_id: str, room_size: int, tag: str):
        self.stats = stats
        self.request = request
        self.room_id = room_id
        self.room_size = room_size
        self.tag = tag
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.handshaking = True
        self.last_seq = 0
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.opcode = 2 if self.binary else 1
        self.extra_rooms: list[str] = []  # rooms joined besides `room_id` (reference servers: by name)
        self.joins_owed = 0

    # -- asyncio.Protocol

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost before ready: {exc}"))
        elif not self.stats.stopping:
            self.stats.disconnects += 1

    def data_received(self, data: bytes) -> None:
        now = _ns()
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if self.handshaking:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            head, data = data[:end], data[end + 4:]
            self.handshaking = False
            if not head.startswith(b"HTTP/1.1 101"):
                status = head.split(b"\r\n", 1)[0].decode(errors="replace")
                self._fail(f"handshake refused: {status}")
                return
            self.opened()
        n = len(data)
        pos = 0
        on_payload = self.on_payload
        while pos + 2 <= n:
            length = data[pos + 1]  # server frames are never masked
            if length < 126:
                start = pos + 2
            elif length == 126:
                if pos + 4 > n:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                if pos + 10 > n:
                    break
                length = int.from_bytes(data[pos + 2:pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > n:
                break
            opcode = data[pos] & 0x0F
            if opcode == 1 or opcode == 2:
                on_payload(data[start:end], now)
            else:
                self._control(opcode, data[start:end])
            pos = end
        if pos < n:
            self.buf = data[pos:]

    # -- helpers

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == 9:  # ping -> pong
            self.transport.write(client_frame(payload, 0xA))
        elif opcode == 8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.stats.closes[code] = self.stats.closes.get(code, 0) + 1
            if not self.ready.done():
                self._fail(f"closed {code} {payload[2:].decode(errors='replace')}")
            self.transport.close()

    def _fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        self.transport.close()

    def write(self, payload: bytes) -> None:
        self.transport.write(client_frame(payload, self.opcode))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(struct.pack("!H", 1000), 0x8))
            self.transport.close()

    def _delivered(self, seq: int, text: str | None, now: int) -> None:
        stats = self.stats
        last = self.last_seq
        if seq <= last:
            stats.order_violations += 1
        else:
            if last and seq != last + 1:
                stats.seq_gaps += seq - last - 1
            self.last_seq = seq
        if text and text[0] == "~":
            index = int(text[1:text.find("~", 1)])
            try:
                stats.counts[index] += 1
            except IndexError:
                stats.unknown += 1
                return
            # The send time is in the text too; the same value from the table spares parsing it.
            stats.lat.append(now - stats.sent_ns[index])
            stats.rt.append(now)
            stats.delivered += 1

    def _replied(self, index: int, ok: bool, code: str | None, dup: bool, now: int) -> None:
        stats = self.stats
        if not 0 <= index < len(stats.sent_ns):
            return
        stats.replied += 1
        if ok:
            stats.acked += 1
            stats.dup_acks += dup
            stats.expected[index] = self.room_size
            stats.expected_total += self.room_size
            stats.ack_lat.append(now - stats.sent_ns[index])
            stats.ack_rt.append(now)
        else:
            stats.errors[code or "?"] = stats.errors.get(code or "?", 0) + 1

    def send_message(self, text: str, index: int) -> None:
        raise NotImplementedError

    def opened(self) -> None:
        raise NotImplementedError

    def on_payload(self, payload: bytes, now: int) -> None:
        raise NotImplementedError


class _ChatConn(_Conn):
    """docs/protocol.md §4: `hello`, then a `ping` whose `pong` says every room is attached."""

    def __init__(self, *args: Any, token: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.token = token
        self.decode = _json_in
        self.encode = _json_out

    def opened(self) -> None:
        self.write(self.encode({"op": "hello", "token": self.token}))
        # Answered only once the read loop runs, i.e. after every room's catch-up.
        self.write(self.encode({"op": "ping", "ref": -1}))

    def send_message(self, text: str, index: int) -> None:
        self.write(self.encode({"op": "send", "room": self.room_id, "text": text, "cid": f"{self.tag}{index}",
                                "ref": index}))

    def on_payload(self, payload: bytes, now: int) -> None:
        m = self.decode(payload)
        op = m.op
        if op == "message":
            self._delivered(m.seq, m.text, now)
        elif op == "ack":
            self._replied(m.ref, True, None, m.dup, now)
        elif op == "error":
            if isinstance(m.ref, int) and m.ref >= 0:
                self._replied(m.ref, False, m.code, False, now)
            else:
                self.stats.errors[m.code or "?"] = self.stats.errors.get(m.code or "?", 0) + 1
                if not self.ready.done():
                    self._fail(f"error {m.code}")
        elif op == "pong" and not self.ready.done():
            self.ready.set_result(None)


class _ChatMsgpackConn(_ChatConn):
    binary = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.decode = _msgpack_in
        self.encode = _msgpack_out


class _BareConn(_ChatConn):
    """The bare broadcast server: `join` a room by name, then the same `send`/`ack`/`message` frames."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, token="", **kwargs)

    def opened(self) -> None:
        for room in [self.room_id, *self.extra_rooms]:
            self.write(self.encode({"op": "join", "room": room, "ref": -1}))
            self.joins_owed += 1

    def on_payload(self, payload: bytes, now: int) -> None:
        m = self.decode(payload)
        if m.op == "ok" and not self.ready.done():
            self.joins_owed -= 1
            if not self.joins_owed:
                self.ready.set_result(None)
        else:
            _ChatConn.on_payload(self, payload, now)


class _SocketIOConn(_Conn):
    """A minimal Engine.IO v4 / Socket.IO v5 client on the websocket transport.

    `0{…}` open → `40` → `40{…}` connected → `420["join",room]` → `430[…]`
    ready. Events `42["message",{…}]`; sends `42<index+1>["send",{…}]` acked
    by `43<index+1>[{…}]`; Engine.IO ping `2` is answered `3`.
    """

    def opened(self) -> None:
        pass  # the server speaks first (`0{...}`)

    def send_message(self, text: str, index: int) -> None:
        body = _json_out(["send", {"room": self.room_id, "text": text, "cid": f"{self.tag}{index}"}])
        self.write(b"42" + str(index + 1).encode() + body)

    def on_payload(self, payload: bytes, now: int) -> None:
        kind = payload[:1]
        if kind == b"4":
            packet = payload[1:2]
            if packet == b"2":
                body = payload[2:]
                if body[:1] == b"[":
                    name, m = _sio_event(body)
                    if name == "message":
                        self._delivered(m.seq, m.text, now)
                return
            if packet == b"3":
                i = 2
                while payload[i:i + 1].isdigit():
                    i += 1
                ack_id = int(payload[2:i])
                (m,) = _sio_ack(payload[i:])
                if ack_id == 0:
                    self.joins_owed -= 1
                    if not self.ready.done() and not self.joins_owed:
                        self.ready.set_result(None)
                else:
                    self._replied(ack_id - 1, m.op != "error", m.code, m.dup, now)
                return
            if packet == b"0":
                for room in [self.room_id, *self.extra_rooms]:
                    self.write(b"420" + _json_out(["join", room]))
                    self.joins_owed += 1
                return
            if packet == b"4":
                self._fail(f"socket.io connect error: {payload[2:].decode(errors='replace')}")
        elif kind == b"2":
            self.write(b"3")
        elif kind == b"0":
            self.write(b"40")
        elif kind == b"1":
            self._fail("engine.io close")


# ---------------------------------------------------------------------------- the run


def proc_cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_delay_seconds(pids: list[int]) -> float:
    """Time the processes' threads spent runnable but waiting for a CPU (/proc/…/schedstat).

    On a shared machine this says how much other work got in the way of a measurement.
    """
    total = 0
    for pid in pids:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass  # a thread that just ended, or a kernel without schedstats
    return total / 1e9


def proc_rss(pids: list[int]) -> int:
    """Resident set size of the processes, in bytes."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def latency_summary(values: array) -> dict[str, float] | None:
    """p50, p90, p99, max and mean in ms of nanosecond samples (None if there are none)."""
    if not values:
        return None
    try:
        import numpy as np
    except ImportError:
        ordered = sorted(values)
        pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
        p50, p90, p99, top, mean = pick(0.5), pick(0.9), pick(0.99), ordered[-1], sum(ordered) / len(ordered)
    else:
        a = np.frombuffer(values, dtype=np.int64)
        p50, p90, p99 = np.percentile(a, [50, 90, 99])
        top, mean = a.max(), a.mean()
    return {k: round(float(v) / 1e6, 3) for k, v in
            (("p50", p50), ("p90", p90), ("p99", p99), ("max", top), ("mean", mean))}


class _Progress:
    """A rich progress bar when rich is installed and asked for, else nothing."""

    def __init__(self, enabled: bool):
        self._progress = None
        if enabled:
            try:
                from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
            except ImportError:
                return
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                                      TextColumn("{task.fields[info]}"), refresh_per_second=4, transient=False)

    def __enter__(self) -> "_Progress":
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def add(self, description: str, total: float) -> Any:
        if self._progress is None:
            return None
        return self._progress.add_task(description, total=total, info="")

    def update(self, task: Any, completed: float, info: str) -> None:
        if self._progress is not None and task is not None:
            self._progress.update(task, completed=completed, info=info)


class LoadTest:
    """One run of a `Plan`: set up, connect, run each step, drain, report."""

    def __init__(self, plan: Plan, *, progress: bool = False, log=None):
        plan.validate()
        self.plan = plan
        self.stats = _Stats()
        self.tag = secrets.token_hex(3)
        self.conns: list[_Conn] = []
        self.senders: list[_Conn] = []
        self.progress = _Progress(progress)
        self.log = log or (lambda *a: None)
        self.result: dict[str, Any] = {}

    # -- layout

    def layout(self) -> tuple[list[int], list[int]]:
        """Room index per connection, and the connection indexes that send (spread over rooms)."""
        p = self.plan
        rooms = [(i // p.conns_per_user) % p.rooms for i in range(p.members)]
        by_room: list[list[int]] = [[] for _ in range(p.rooms)]
        for i, r in enumerate(rooms):
            by_room[r].append(i)
        senders: list[int] = []
        depth = 0
        while len(senders) < p.senders:
            for members in by_room:
                if depth < len(members) and len(senders) < p.senders:
                    senders.append(members[depth])
            depth += 1
        return rooms, senders

    def rooms_of_user(self, user: int) -> list[int]:
        """Room indexes of a user: its own (`layout`) and the `rooms_per_user - 1` after it."""
        p = self.plan
        return [(user % p.rooms + j) % p.rooms for j in range(p.rooms_per_user)]

    # -- setup

    async def setup_chat(self) -> tuple[list[str], list[str]]:
        """Users (bots by default), rooms and memberships through the HTTP API: (room ids, token per user)."""
        p = self.plan
        users = math.ceil(p.members / p.conns_per_user)
        limit = asyncio.Semaphore(p.setup_concurrency)

        async def bounded(coro):
            async with limit:
                return await coro

        async with ApiClient(p.urls[0]) as api:
            owner_name, password = f"lt{self.tag}_owner", secrets.token_urlsafe(12)
            await api.register(owner_name, password)
            owner = api.as_user(await api.login(owner_name, password))

            async def make_user(i: int) -> tuple[str, str]:
                name = f"lt{self.tag}_{i}"
                if p.accounts == "bots":
                    made = await owner.post("/api/bots", {"name": name})
                    return made["user"]["id"], made["token"]
                user = await api.register(name, password)
                return user["id"], await api.login(name, password)

            made = await asyncio.gather(*(bounded(make_user(i)) for i in range(users)))
            rooms = await asyncio.gather(
                *(bounded(owner.create_room(f"loadtest {self.tag} {k}")) for k in range(p.rooms))
            )
            room_ids = [r["id"] for r in rooms]
            await asyncio.gather(
                *(bounded(owner.add_member(room_ids[k], uid)) for u, (uid, _) in enumerate(made)
                  for k in self.rooms_of_user(u))
            )
        return room_ids, [token for _, token in made]

    def make_conn(self, i: int, room_index: int, room_ids: list[str], tokens: list[str],
                  sizes: list[int]) -> tuple[_Conn, str, int]:
        p = self.plan
        url = urlsplit(p.urls[i % len(p.urls)])
        host, port = url.hostname or "127.0.0.1", url.port or (443 if url.scheme in ("https", "wss") else 80)
        common = dict(room_id=room_ids[room_index], room_size=sizes[room_index], tag=self.tag)
        if p.target == "chat":
            sub = MSGPACK_SUBPROTOCOL if p.codec == "msgpack" else JSON_SUBPROTOCOL
            request = _handshake(host, port, "/ws", sub)
            cls = _ChatMsgpackConn if p.codec == "msgpack" else _ChatConn
            conn = cls(self.stats, request, token=tokens[i // p.conns_per_user], **common)
        elif p.target == "bare":
            conn = _BareConn(self.stats, _handshake(host, port, "/ws", None), **common)
        else:
            path = "/socket.io/?EIO=4&transport=websocket"
            conn = _SocketIOConn(self.stats, _handshake(host, port, path, None), **common)
        conn.extra_rooms = [room_ids[k] for k in self.rooms_of_user(i // p.conns_per_user)[1:]]
        return conn, host, port

    async def connect_all(self, room_of: list[int], room_ids: list[str], tokens: list[str]) -> None:
        p = self.plan
        loop = asyncio.get_running_loop()
        sizes = [room_of.count(k) for k in range(p.rooms)]
        limit = asyncio.Semaphore(p.connect_concurrency)
        task = self.progress.add("connecting", p.members)
        done = 0

        async def connect(i: int) -> _Conn:
            nonlocal done
            conn, host, port = self.make_conn(i, room_of[i], room_ids, tokens, sizes)
            async with limit:
                for attempt in range(5):
                    try:
                        await loop.create_connection(lambda: conn, host, port)
                        break
                    except OSError:
                        if attempt == 4:
                            raise
                        await asyncio.sleep(0.2 * (attempt + 1))
                await asyncio.wait_for(conn.ready, 60)
            done += 1
            if done % 100 == 0 or done == p.members:
                self.progress.update(task, done, f"{done:,}/{p.members:,}")
            return conn

        self.conns = list(await asyncio.gather(*(connect(i) for i in range(p.members))))

    # -- steps

    async def send_for(self, rate: float, seconds: float, label: str) -> None:
        """Send at `rate` per sender for `seconds`, round-robin over the senders."""
        stats, senders = self.stats, self.senders
        p = self.plan
        task = self.progress.add(label, seconds)
        if not senders or rate <= 0:
            await asyncio.sleep(seconds)
            return
        total_rate = rate * len(senders)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        issued = 0
        k = 0
        pad_to = p.size
        last_info, last_delivered = t0, stats.delivered
        while True:
            now = loop.time()
            elapsed = now - t0
            if elapsed >= seconds:
                break
            due = int(elapsed * total_rate) + 1 - issued
            for _ in range(due):
                sender = senders[k]
                k = k + 1 if k + 1 < len(senders) else 0
                index = len(stats.sent_ns)
                ns = _ns()
                stats.sent_ns.append(ns)
                stats.counts.append(0)
                stats.expected.append(0)
                text = f"~{index}~{ns}~"
                if len(text) < pad_to:
                    text += "x" * (pad_to - len(text))
                sender.send_message(text, index)
            issued += max(due, 0)
            if now - last_info >= 0.5:
                rate_now = (stats.delivered - last_delivered) / (now - last_info)
                self.progress.update(task, elapsed, f"{rate_now:,.0f} deliveries/s")
                last_info, last_delivered = now, stats.delivered
            await asyncio.sleep(TICK)
        self.progress.update(task, seconds, "")

    async def drain(self, sent: int) -> bool:
        """Wait until every send got its reply and every expected delivery arrived; False if
        `plan.drain` seconds passed first (the server is behind: a backlog is still in flight)."""
        stats = self.stats
        deadline = time.monotonic() + self.plan.drain
        while time.monotonic() < deadline:
            if stats.replied >= sent and stats.delivered >= stats.expected_total:
                return True
            await asyncio.sleep(0.02)
        return False

    async def step(self, rate: float, seconds: float, label: str) -> dict[str, Any]:
        p, stats = self.plan, self.stats
        pids = p.server_pids
        first_msg = len(stats.sent_ns)
        first_lat = len(stats.lat)
        first_ack = len(stats.ack_lat)
        delivered0, order0, gaps0 = stats.delivered, stats.order_violations, stats.seq_gaps
        acked0, dup0, replied0 = stats.acked, stats.dup_acks, stats.replied
        errors0 = dict(stats.errors)
        cpu0 = proc_cpu_seconds(pids) if pids else None
        wait0 = run_delay_seconds(pids) if pids else None
        gen_wait0 = run_delay_seconds([os.getpid()])
        own0, t0 = time.process_time(), _ns()
        await self.send_for(rate, seconds, label)
        own1, t1 = time.process_time(), _ns()
        gen_wait1 = run_delay_seconds([os.getpid()])
        drained = await self.drain(len(stats.sent_ns))
        cpu1 = proc_cpu_seconds(pids) if pids else None
        wait1 = run_delay_seconds(pids) if pids else None
        t2 = _ns()
        last = len(stats.sent_ns)
        deliveries = stats.delivered - delivered0
        lost = duplicates = expected = 0
        for i in range(first_msg, last):
            e = stats.expected[i]
            if e:  # acked; an unacked send (no reply yet) is counted in `unacked`, not as loss
                c = stats.counts[i]
                expected += e
                if c < e:
                    lost += e - c
                elif c > e:
                    duplicates += c - e
        end_ns = stats.rt[-1] if len(stats.rt) > first_lat else t1
        window = max(end_ns - t0, 1) / 1e9
        acks = len(stats.ack_rt) - first_ack
        ack_window = max((stats.ack_rt[-1] if acks else t1) - t0, 1) / 1e9
        gen_cpu = (own1 - own0) / max((t1 - t0) / 1e9, 1e-9)
        server_cpu = None if cpu0 is None else round(cpu1 - cpu0, 3)
        return {
            "rate": rate,
            "offered_msgs_per_s": round(rate * len(self.senders), 3),
            "sent": last - first_msg,
            "acked": stats.acked - acked0,
            "acked_per_s": round(acks / ack_window, 1),
            "dup_acks": stats.dup_acks - dup0,
            "errors": {k: v - errors0.get(k, 0) for k, v in stats.errors.items() if v - errors0.get(k, 0)},
            "unacked": (last - first_msg) - (stats.replied - replied0),
            "expected": expected,
            "deliveries": deliveries,
            "deliveries_per_s": round(deliveries / window, 1),
            "lost": lost,
            "duplicates": duplicates,
            "order_violations": stats.order_violations - order0,
            "seq_gaps": stats.seq_gaps - gaps0,
            "latency_ms": latency_summary(stats.lat[first_lat:]),
            "ack_latency_ms": latency_summary(stats.ack_lat[first_ack:]),
            "seconds": round(seconds, 3),
            "drained": drained,
            "server_cpu_seconds": server_cpu,
            "server_cpu_us_per_delivery": (round(server_cpu / deliveries * 1e6, 3)
                                           if server_cpu is not None and deliveries else None),
            "server_rss": proc_rss(pids) if pids else None,
            "server_run_delay": None if wait0 is None else round((wait1 - wait0) / max((t2 - t0) / 1e9, 1e-9), 3),
            "generator_cpu": round(gen_cpu, 3),
            "generator_run_delay": round((gen_wait1 - gen_wait0) / max((t1 - t0) / 1e9, 1e-9), 3),
            "generator_saturated": gen_cpu > SATURATED,
            "_marks": (first_lat, len(stats.lat)),
        }

    # -- the whole run

    async def run(self) -> dict[str, Any]:
        p = self.plan
        raise_nofile()
        room_of, sender_indexes = self.layout()
        t0 = time.monotonic()
        with self.progress:
            if p.target == "chat":
                room_ids, tokens = await self.setup_chat()
            else:
                room_ids, tokens = [f"lt{self.tag}-r{k}" for k in range(p.rooms)], []
            t1 = time.monotonic()
            rss0 = proc_rss(p.server_pids) if p.server_pids else None
            await self.connect_all(room_of, room_ids, tokens)
            self.senders = [self.conns[i] for i in sender_indexes]
            await asyncio.sleep(p.settle)
            t2 = time.monotonic()
            rss1 = proc_rss(p.server_pids) if p.server_pids else None
            self.result = {
                "tool": "chat-loadtest",
                "version": 1,
                "target": p.target,
                "codec": p.codec,
                "urls": p.urls,
                "members": p.members,
                "rooms": p.rooms,
                "senders": p.senders,
                "conns_per_user": p.conns_per_user,
                "rooms_per_user": p.rooms_per_user,
                "size": p.size,
                "duration": p.duration,
                "setup_seconds": round(t1 - t0, 3),
                "connect_seconds": round(t2 - t1 - p.settle, 3),
                "server": {
                    "pids": p.server_pids,
                    "rss_before_connect": rss0,
                    "rss_connected": rss1,
                    "rss_per_connection": None if rss0 is None else round((rss1 - rss0) / p.members),
                },
                "steps": [],
            }
            try:
                if p.warmup > 0 and p.senders and p.rates:
                    await self.step(p.rates[0], p.warmup, "warm-up")
                for rate in p.rates or [0.0]:
                    step = await self.step(rate, p.duration, f"{rate:g} msgs/s/sender")
                    self.result["steps"].append(step)
                    if not step["drained"] and rate != p.rates[-1]:
                        # A backlog is still in flight: a higher rate would only measure it.
                        self.result["stopped"] = f"the {rate:g} msgs/s step did not drain in {p.drain:g} s"
                        break
            finally:
                self.stats.stopping = True
                for conn in self.conns:
                    conn.close()
        return self._finish()

    def _finish(self) -> dict[str, Any]:
        stats, result = self.stats, self.result
        steps = result["steps"]
        lost = sum(e - c for e, c in zip(stats.expected, stats.counts) if c < e)
        duplicates = sum(c - e for e, c in zip(stats.expected, stats.counts) if e and c > e)
        result["totals"] = {
            "sent": len(stats.sent_ns),
            "acked": stats.acked,
            "unacked": len(stats.sent_ns) - stats.replied,
            "deliveries": stats.delivered,
            "lost": lost,
            "duplicates": duplicates,
            "order_violations": stats.order_violations,
            "seq_gaps": stats.seq_gaps,
            "errors": dict(stats.errors),
            "closes": {str(k): v for k, v in stats.closes.items()},
            "disconnects": stats.disconnects,
            "generator_saturated": any(s["generator_saturated"] for s in steps),
        }
        self._marks = [s.pop("_marks") for s in steps]
        return result

    # -- output

    def plot(self, path: str) -> None:
        """Latency over time (every delivery, p99 per 100 ms) and a latency histogram, as a PNG."""
        write_plot(path, self.stats, self._marks, self.result)


def write_plot(path: str, stats: _Stats, marks: list[tuple[int, int]], result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), gridspec_kw={"height_ratios": [3, 2]})
    lat = np.frombuffer(stats.lat, dtype=np.int64) / 1e6
    rt = np.frombuffer(stats.rt, dtype=np.int64)
    if len(rt):
        origin = rt[marks[0][0]] if marks and marks[0][0] < len(rt) else rt[0]
        t = (rt - origin) / 1e9
        keep = np.zeros(len(lat), dtype=bool)
        for a, b in marks:
            keep[a:b] = True
        t, lat = t[keep], lat[keep]
        sample = np.random.default_rng(0).choice(len(t), size=min(len(t), 50_000), replace=False)
        top.scatter(t[sample], lat[sample], s=1, alpha=0.3, color="tab:blue", label="deliveries (sample)")
        if len(t):
            bins = np.arange(t.min(), t.max() + 0.1, 0.1)
            which = np.digitize(t, bins)
            xs, p99 = [], []
            for b in np.unique(which):
                sel = lat[which == b]
                xs.append(bins[b - 1] + 0.05)
                p99.append(np.percentile(sel, 99))
            top.plot(xs, p99, color="tab:red", lw=1, label="p99 per 100 ms")
        for step, (a, b) in zip(result["steps"], marks):
            if a < len(rt):
                x = (rt[a] - origin) / 1e9
                top.axvline(x, color="grey", lw=0.5, ls=":")
                top.text(x, 1.0, f" {step['offered_msgs_per_s']:g} msg/s", transform=top.get_xaxis_transform(),
                         fontsize=7, va="top", color="grey")
        top.set_yscale("log")
        top.set_xlabel("seconds")
        top.set_ylabel("send → receipt latency (ms)")
        top.legend(loc="lower right", fontsize=7)
        bottom.hist(lat, bins=np.logspace(np.log10(max(lat.min(), 0.01)), np.log10(lat.max() + 0.01), 80),
                    color="tab:blue")
        bottom.set_xscale("log")
        bottom.set_xlabel("latency (ms)")
        bottom.set_ylabel("deliveries")
    fig.suptitle(f"chat-loadtest: {result['target']}, {result['members']:,} members in {result['rooms']:,} "
                 f"room(s), {result['senders']:,} sender(s)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The summary table: a header and one row per step."""
    header = ["msgs/s", "sent", "acked", "deliv/s", "lost", "dup", "order", "p50 ms", "p90 ms", "p99 ms",
              "max ms", "srv µs/deliv", "srv RSS MiB", "srv wait", "gen CPU", "gen wait"]
    rows = []
    for s in result["steps"]:
        lat = s["latency_ms"] or {}
        rows.append([
            f"{s['offered_msgs_per_s']:g}", f"{s['sent']:,}", f"{s['acked']:,}", f"{s['deliveries_per_s']:,.0f}",
            f"{s['lost']:,}", f"{s['duplicates']:,}", f"{s['order_violations']:,}",
            *(f"{lat[k]:.1f}" if k in lat else "-" for k in ("p50", "p90", "p99", "max")),
            "-" if s["server_cpu_us_per_delivery"] is None else f"{s['server_cpu_us_per_delivery']:.2f}",
            "-" if s["server_rss"] is None else f"{s['server_rss'] / 2**20:,.0f}",
            "-" if s["server_run_delay"] is None else f"{s['server_run_delay'] * 100:.0f}%",
            f"{s['generator_cpu'] * 100:.0f}%" + (" SATURATED" if s["generator_saturated"] else ""),
            f"{s['generator_run_delay'] * 100:.0f}%",
        ])
    return header, rows


def print_summary(result: dict[str, Any], file=sys.stdout) -> None:
    header, rows = summary_rows(result)
    srv = result["server"]
    totals = result["totals"]
    title = (f"{result['target']} ({result['codec']}): {result['members']:,} connections, {result['rooms']:,} "
             f"room(s), {result['senders']:,} sender(s), {result['duration']:g} s a step")
    notes = [f"setup {result['setup_seconds']:.1f} s, connect {result['connect_seconds']:.1f} s"]
    if srv["rss_per_connection"] is not None:
        notes.append(f"server RSS {srv['rss_connected'] / 2**20:,.0f} MiB connected, "
                     f"{srv['rss_per_connection'] / 1024:.1f} KiB per connection")
    notes.append(f"totals: {totals['deliveries']:,} deliveries, lost {totals['lost']}, duplicates "
                 f"{totals['duplicates']}, order violations {totals['order_violations']}, seq gaps "
                 f"{totals['seq_gaps']}, errors {totals['errors'] or 0}, closes {totals['closes'] or 0}")
    if totals["unacked"]:
        notes.append(f"{totals['unacked']:,} sends got no reply before the run ended")
    if result.get("stopped"):
        notes.append(f"stopped early: {result['stopped']}")
    if totals["generator_saturated"]:
        notes.append("WARNING: the load generator used more than 90% of a core in a step: figures of that "
                     "step are bounded by the generator, not the server")
    notes.append("srv wait / gen wait: time runnable but waiting for a CPU, per second of the step "
                 "(other work on the machine)")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title, file=file)
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) for h, w in zip(header, widths)), file=file)
        for r in rows:
            print("  ".join(c.rjust(w) for c, w in zip(r, widths)), file=file)
        for n in notes:
            print(n, file=file)
        return
    table = Table(title=title)
    for h in header:
        table.add_column(h, justify="right")
    for r in rows:
        table.add_row(*r)
    console = Console(file=file, width=max(150, shutil.get_terminal_size().columns))
    console.print(table)
    for n in notes:
        console.print(n, style="bold red" if n.startswith("WARNING") else None)


async def run_loadtest(plan: Plan, *, progress: bool = False, json_path: str | None = None,
                       plot_path: str | None = None) -> dict[str, Any]:
    """Run a plan; optionally write the JSON result and the plot. Returns the result."""
    test = LoadTest(plan, progress=progress)
    result = await test.run()
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
    if plot_path:
        test.plot(plot_path)
    return result


# ---------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None = None) -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="chat-loadtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", action="append", required=True,
                        help="server base URL, e.g. http://127.0.0.1:8080 (repeat for several nodes)")
    parser.add_argument("--target", choices=TARGETS, default="chat")
    parser.add_argument("--codec", choices=("json", "msgpack"), default="json")
    parser.add_argument("--members", "-M", type=int, default=100, help="connections (default 100)")
    parser.add_argument("--rooms", "-K", type=int, default=1)
    parser.add_argument("--senders", "-S", type=int, default=1)
    parser.add_argument("--rate", "-R", action="append",
                        help="messages a second per sender; repeat (or comma-separate) for steps (default 10)")
    parser.add_argument("--duration", "-D", type=float, default=10.0, help="seconds per step (default 10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of unrecorded sending first")
    parser.add_argument("--size", type=int, default=64, help="characters of each message text (default 64)")
    parser.add_argument("--drain", type=float, default=10.0, help="seconds a step may wait for stragglers")
    parser.add_argument("--server-pid", type=int, action="append", default=[],
                        help="server pid for CPU per delivery and RSS (repeat for several)")
    parser.add_argument("--accounts", choices=("bots", "users"), default="bots")
    parser.add_argument("--conns-per-user", type=int, default=1)
    parser.add_argument("--rooms-per-user", type=int, default=1,
                        help="rooms each user is in (above 1 only with --senders 0: an idle shape)")
    parser.add_argument("--setup-concurrency", type=int, default=16)
    parser.add_argument("--connect-concurrency", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds (smoke test)")
    parser.add_argument("--json", dest="json_path", help="write the result as JSON here")
    parser.add_argument("--plot", dest="plot_path", help="write a latency PNG here (needs matplotlib)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    rates = [float(x) for r in (args.rate or []) for x in str(r).split(",")] if args.rate else None
    values = dict(target=args.target, codec=args.codec, server_pids=args.server_pid, accounts=args.accounts,
                  setup_concurrency=args.setup_concurrency, connect_concurrency=args.connect_concurrency)
    if args.quick:
        plan = Plan.quick(args.url, **values, **({"rates": rates} if rates else {}))
    else:
        plan = Plan(urls=args.url, members=args.members, rooms=args.rooms, senders=args.senders,
                    rates=rates or [10.0], duration=args.duration, warmup=args.warmup, size=args.size,
                    drain=args.drain, conns_per_user=args.conns_per_user,
                    rooms_per_user=args.rooms_per_user, **values)
    return plan, args


def main(argv: list[str] | None = None) -> None:
    plan, args = parse_args(argv)
    try:
        plan.validate()
    except ValueError as exc:
        sys.exit(f"chat-loadtest: {exc}")
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    result = runner(run_loadtest(plan, progress=not args.no_progress and sys.stderr.isatty(),
                                 json_path=args.json_path, plot_path=args.plot_path))
    print_summary(result)
    totals = result["totals"]
    if totals["lost"] or totals["duplicates"] or totals["order_violations"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
