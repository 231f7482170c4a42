"""Soak: minutes of steady mixed load against one or two nodes, watching for anything that grows.

    .venv/bin/python scripts/soak.py --spawn 1                 # starts a node (SQLite), 10 minutes
    .venv/bin/python scripts/soak.py --spawn 2 --minutes 3     # two nodes on PostgreSQL and Redis
    .venv/bin/python scripts/soak.py http://127.0.0.1:8080 http://127.0.0.1:8081 --minutes 10

Bots (one owner signs up and creates them: no password hashing per user)
share a few open groups. Each keeps one connection, spread round-robin over
the nodes, and does a steady mix: sends (acked), history pages, typing, joins
and leaves of a churn group, presence, and reconnects with resume. Every
`--interval` seconds (10) it samples each server process's RSS and open file
descriptors (/proc/PID), the connections the servers count (/metrics), and
the window's p99 latencies: send to ack, and send to delivery at the other
members, and the servers' run delay (time ready to run but waiting for a
CPU: how much other work on the machine got in the way). It prints a row per sample, then a linear fit of each series over
the run after the warm-up (the first fifth) and a verdict: a series "grows"
when the fitted rise over the run passes both an absolute and a relative
bound (RSS: 8 MiB and 10 %; descriptors: 16 and 10 %; p99: 10 ms and 50 %)
with r² >= 0.5. It also counts what must stay zero: unexpected errors,
disconnects and out-of-order deliveries.

Targets are 127.0.0.1 only. Given URLs, the server pids are found from the
listening ports (or given with --pid). With --spawn, one node stores in
SQLite in a temporary directory; two nodes share a fresh PostgreSQL database
on 127.0.0.1:5432 and the Redis at --redis-url. Exit status 1 if something
grew or an error that must not happen happened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from client_proto import frames  # noqa: E402
from client_proto.client import ChatClient, ChatError  # noqa: E402
from client_proto.http import ApiClient  # noqa: E402
from scripts.bench_fanout import Server, free_port, fresh_pg_database  # noqa: E402
from scripts.loadtest import proc_rss, raise_nofile  # noqa: E402

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Share of each action in the mix (they add up to 1).
MIX = {"send": 0.50, "history": 0.14, "typing": 0.14, "churn": 0.08, "presence": 0.08, "reconnect": 0.06}
# A series grows when its fitted rise over the run passes both bounds (and the fit is not noise).
GROWTH = {"rss_mib": (8.0, 0.10), "fds": (16.0, 0.10), "ack_p99_ms": (10.0, 0.50), "delivery_p99_ms": (10.0, 0.50)}
MIN_R2 = 0.5
EXPECTED_ERRORS = {"rate_limited"}  # the server's own pacing: counted, not a failure


# ---------------------------------------------------------------------------- servers


def local_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOCAL_HOSTS:
        raise SystemExit(f"soak: {url!r}: only http://127.0.0.1 targets")
    return url.rstrip("/")


def pid_listening_on(port: int) -> int | None:
    """The process listening on 127.0.0.1:`port` (or any address), from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                        return int(pid)
    return None


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def run_delays(pids: list[int]) -> dict[tuple[int, str], float]:
    """Seconds each thread of the processes has spent ready to run but waiting for a CPU, by thread.

    Kept per thread so a window's delay counts only threads alive at both ends or born in it
    (worker threads come and go; a sum over whichever exist would jump backwards).
    """
    delays = {}
    for pid in pids:
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{pid}/task/{task}/schedstat") as f:
                delays[(pid, task)] = int(f.read().split()[1]) / 1e9
    return delays


async def spawn(count: int, workdir: Path, redis_url: str, database_url: str | None) -> tuple[list[Server], list]:
    """`count` nodes; and the cleanups to run after stopping them."""
    cleanups = []
    env = {"CHAT_LOG_LEVEL": "WARNING"}
    if database_url:
        env["CHAT_DATABASE_URL"] = database_url
    elif count == 1:
        env["CHAT_DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / 'soak.db'}"
    else:
        env["CHAT_DATABASE_URL"], drop = await fresh_pg_database()
        cleanups.append(drop)
    if count > 1:
        env["CHAT_REDIS_URL"] = redis_url
    nodes = []
    for i in range(count):
        port = free_port()
        node = Server(f"node{i}", [sys.executable, "-m", "chatserver", "--port", str(port)], port, env=env,
                      log=workdir / f"node{i}.log")
        nodes.append(await node.start())
        # `Server` pins benchmark servers to one CPU; a soak wants the machine's ordinary scheduling.
        os.sched_setaffinity(node.proc.pid, range(os.cpu_count()))
    return nodes, cleanups


async def connections_counted(session: aiohttp.ClientSession, urls: list[str]) -> int | None:
    total = 0
    for url in urls:
        try:
            async with session.get(url + "/metrics") as response:
                match = re.search(r"^chat_connections (\S+)$", await response.text(), re.M)
        except aiohttp.ClientError:
            return None
        if match is None:
            return None
        total += int(float(match.group(1)))
    return total


# ---------------------------------------------------------------------------- load


@dataclass
class Window:
    """What happened since the last sample."""

    ops: int = 0
    acks: int = 0
    deliveries: int = 0
    ack_ms: list[float] = field(default_factory=list)
    delivery_ms: list[float] = field(default_factory=list)


@dataclass
class Totals:
    ops: dict[str, int] = field(default_factory=lambda: {action: 0 for action in MIX})
    deliveries: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    disconnects: int = 0
    order_violations: int = 0


class Bot:
    """One member: a connection, an event reader, and a steady loop of actions until the deadline."""

    def __init__(self, soak: "Soak", token: str, url: str, rooms: list[str], rng: random.Random):
        self.soak = soak
        self.token = token
        self.ws_url = url.replace("http", "ws", 1) + "/ws"
        self.rooms = rooms
        self.rng = rng
        self.client: ChatClient | None = None
        self.reader: asyncio.Task | None = None
        self.last_seq: dict[str, int] = {}
        self.in_churn = False

    async def connect(self) -> None:
        self.client = ChatClient(self.ws_url, self.token, reconnect=False, resume=dict(self.last_seq) or None)
        await self.client.connect()
        self.reader = asyncio.create_task(self.read(self.client))

    async def disconnect(self) -> None:
        client, self.client = self.client, None  # its reader then knows the close was ours
        if client is not None:
            await client.close()
            await asyncio.gather(self.reader, return_exceptions=True)

    async def read(self, client: ChatClient) -> None:
        soak = self.soak
        async for event in client.events():
            if not isinstance(event, frames.Message):
                continue
            if event.seq <= self.last_seq.get(event.room, 0):
                soak.totals.order_violations += 1
            self.last_seq[event.room] = event.seq
            soak.totals.deliveries += 1
            soak.window.deliveries += 1
            if event.text and event.text.startswith("soak "):
                sent_ns = int(event.text.split()[1])
                soak.window.delivery_ms.append((time.time_ns() - sent_ns) / 1e6)
        if not soak.stopping and client is self.client:
            soak.totals.disconnects += 1

    async def run(self, deadline: float, interval: float) -> None:
        actions, weights = zip(*MIX.items())
        while (now := time.monotonic()) < deadline:
            await asyncio.sleep(min(self.rng.uniform(0.5, 1.5) * interval, max(0.0, deadline - now)))
            if time.monotonic() >= deadline:
                break
            (action,) = self.rng.choices(actions, weights)
            try:
                await getattr(self, action)()
            except ChatError as exc:
                errors = self.soak.totals.errors
                errors[exc.code] = errors.get(exc.code, 0) + 1
                if not self.client.connected.is_set():  # the connection is gone (counted): come back
                    await self.disconnect()
                    await self.connect()
            except TimeoutError:
                self.soak.totals.errors["timeout"] = self.soak.totals.errors.get("timeout", 0) + 1
            self.soak.totals.ops[action] += 1
            self.soak.window.ops += 1

    async def send(self) -> None:
        started = time.perf_counter()
        await self.client.send(self.rng.choice(self.rooms), f"soak {time.time_ns()} {'x' * self.rng.randint(0, 200)}")
        self.soak.window.ack_ms.append((time.perf_counter() - started) * 1000)
        self.soak.window.acks += 1

    async def history(self) -> None:
        await self.client.history(self.rng.choice(self.rooms), limit=50)

    async def typing(self) -> None:
        await self.client.typing(self.rng.choice(self.rooms))

    async def presence(self) -> None:
        await self.client.presence(self.rng.choice(self.rooms))

    async def churn(self) -> None:
        try:
            if self.in_churn:
                await self.client.leave(self.soak.churn_room)
            else:
                await self.client.join(self.soak.churn_room)
        except ChatError as exc:
            # After a timed-out join or leave we may be wrong about where we are: the server says.
            if exc.code not in ("conflict", "forbidden"):
                raise
        self.in_churn = not self.in_churn

    async def reconnect(self) -> None:
        await self.disconnect()
        await self.connect()


class Soak:
    def __init__(self, args: argparse.Namespace, urls: list[str], pids: list[int]):
        self.args = args
        self.urls = urls
        self.pids = pids
        self.window = Window()
        self.totals = Totals()
        self.samples: list[dict] = []
        self.run_delay: dict[tuple[int, str], float] = {}
        self.stopping = False
        self.churn_room = ""

    async def setup(self) -> list[Bot]:
        args = self.args
        rng = random.Random(args.seed)
        name = f"soak{os.getpid()}_{rng.randrange(10**6)}"
        async with ApiClient(self.urls[0]) as api:
            await api.register(name, "soak password")
            owner = api.as_user(await api.login(name, "soak password"))
            rooms = [(await owner.create_room(f"soak {i}", join_policy="open"))["id"] for i in range(args.rooms)]
            self.churn_room = (await owner.create_room("soak churn", join_policy="open"))["id"]
            bots = []
            for i in range(args.users):
                made = await owner.post("/api/bots", {"name": f"{name}_b{i}"})
                mine = [rooms[i % len(rooms)], rooms[(i * 7 + 3) % len(rooms)]]
                for room in dict.fromkeys(mine):
                    await owner.add_member(room, made["user"]["id"])
                bots.append(Bot(self, made["token"], self.urls[i % len(self.urls)], list(dict.fromkeys(mine)),
                                random.Random(rng.random())))
        return bots

    def sample(self, started: float, connections: int | None) -> dict:
        window, self.window = self.window, Window()
        before, self.run_delay = self.run_delay, run_delays(self.pids)
        waited = sum(now - before.get(thread, 0.0) for thread, now in self.run_delay.items())
        rss = [proc_rss([pid]) / 2**20 for pid in self.pids]
        fds = [open_fds(pid) for pid in self.pids]
        row = {
            "t": round(time.monotonic() - started, 1),
            "rss_mib": round(sum(rss), 1), "rss_per_node": [round(r, 1) for r in rss],
            "fds": sum(fds), "fds_per_node": fds,
            "connections": connections,
            "ops_per_s": round(window.ops / self.args.interval, 1),
            "deliveries_per_s": round(window.deliveries / self.args.interval, 1),
            "ack_p99_ms": p99(window.ack_ms), "delivery_p99_ms": p99(window.delivery_ms),
            "errors": sum(n for code, n in self.totals.errors.items() if code not in EXPECTED_ERRORS),
            # Time the servers' threads were ready to run but waited for a CPU: other work on the machine.
            "run_delay_pct": round(100 * waited / self.args.interval, 1),
        }
        self.samples.append(row)
        return row

    async def run(self) -> dict:
        args = self.args
        bots = await self.setup()
        for bot in bots:
            await bot.connect()
        self.run_delay = run_delays(self.pids)
        started = time.monotonic()
        deadline = started + args.minutes * 60
        per_bot_interval = len(bots) / args.rate
        print(header(len(self.pids)), flush=True)
        workers = [asyncio.create_task(bot.run(deadline, per_bot_interval)) for bot in bots]
        async with aiohttp.ClientSession() as session:
            next_sample = started + args.interval
            while next_sample <= deadline + 0.001:
                await asyncio.sleep(max(0.0, next_sample - time.monotonic()))
                row = self.sample(started, await connections_counted(session, self.urls))
                print(format_row(row), flush=True)
                next_sample += args.interval
        await asyncio.gather(*workers)
        self.stopping = True
        for bot in bots:
            await bot.disconnect()
        return self.report()

    def report(self) -> dict:
        skip = max(1, len(self.samples) // 5)  # warm-up
        measured = self.samples[skip:] if len(self.samples) - skip >= 3 else self.samples
        trends = {}
        for key, (absolute, relative) in GROWTH.items():
            points = [(s["t"], s[key]) for s in measured if s[key] is not None]
            slope, r2 = fit(points)
            span = (points[-1][0] - points[0][0]) if len(points) > 1 else 0.0
            rise = slope * span
            level = statistics.mean(v for _, v in points) if points else 0.0
            grows = r2 >= MIN_R2 and rise > absolute and rise > relative * level
            trends[key] = {"slope_per_min": round(slope * 60, 3), "rise": round(rise, 2), "r2": round(r2, 2),
                           "mean": round(level, 2), "grows": grows}
        totals = self.totals
        unexpected = {code: n for code, n in totals.errors.items() if code not in EXPECTED_ERRORS}
        return {
            "urls": self.urls, "pids": self.pids, "minutes": self.args.minutes, "users": self.args.users,
            "rooms": self.args.rooms, "rate": self.args.rate, "samples": self.samples, "trends": trends,
            "ops": totals.ops, "deliveries": totals.deliveries, "errors": totals.errors,
            "disconnects": totals.disconnects, "order_violations": totals.order_violations,
            "ok": not any(t["grows"] for t in trends.values()) and not unexpected
            and not totals.disconnects and not totals.order_violations,
        }


# ---------------------------------------------------------------------------- figures


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2)


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope (per second) and r² of (t, value) points."""
    if len(points) < 2:
        return 0.0, 0.0
    ts, ys = zip(*points)
    mt, my = statistics.mean(ts), statistics.mean(ys)
    stt = sum((t - mt) ** 2 for t in ts)
    syy = sum((y - my) ** 2 for y in ys)
    sty = sum((t - mt) * (y - my) for t, y in zip(ts, ys))
    if stt == 0:
        return 0.0, 0.0
    slope = sty / stt
    r2 = (sty * sty) / (stt * syy) if syy else 0.0
    return slope, r2


COLUMNS = ["t s", "RSS MiB", "fds", "conns", "ops/s", "deliv/s", "ack p99 ms", "deliv p99 ms", "errors",
           "run delay %"]


def header(nodes: int) -> str:
    note = f"  (RSS and fds summed over {nodes} server processes)" if nodes > 1 else ""
    return " | ".join(f"{c:>12}" for c in COLUMNS) + note


def format_row(row: dict) -> str:
    cells = [row["t"], row["rss_mib"], row["fds"], row["connections"], row["ops_per_s"], row["deliveries_per_s"],
             row["ack_p99_ms"], row["delivery_p99_ms"], row["errors"], row["run_delay_pct"]]
    return " | ".join(f"{'-' if c is None else c:>12}" for c in cells)


def print_verdict(result: dict) -> None:
    print()
    print(f"{'series':>16} | {'slope /min':>10} | {'rise':>8} | {'r²':>5} | {'mean':>9} | verdict")
    for key, t in result["trends"].items():
        verdict = "GROWS" if t["grows"] else "flat"
        print(f"{key:>16} | {t['slope_per_min']:>10} | {t['rise']:>8} | {t['r2']:>5} | {t['mean']:>9} | {verdict}")
    print(f"\nops {result['ops']}, deliveries {result['deliveries']}, errors {result['errors'] or 'none'}, "
          f"disconnects {result['disconnects']}, order violations {result['order_violations']}")
    print("verdict:", "nothing grows; no errors" if result["ok"] else "FAILED (see above)")


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="soak", description=__doc__.split("\n\n")[0])
    p.add_argument("urls", nargs="*", help="server URLs (http://127.0.0.1:PORT), if not --spawn")
    p.add_argument("--spawn", type=int, choices=(1, 2), help="start this many nodes of our own")
    p.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between samples (default 10)")
    p.add_argument("--users", type=int, default=60, help="bots, one connection each (default 60)")
    p.add_argument("--rooms", type=int, default=6, help="open groups they share (default 6)")
    p.add_argument("--rate", type=float, default=40.0, help="actions a second over all bots (default 40)")
    p.add_argument("--pid", type=int, action="append", help="server pid to sample (default: found from the ports)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="Redis for --spawn 2")
    p.add_argument("--database-url", help="storage for --spawn (default: SQLite for 1 node, a fresh PG db for 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="write the samples and the verdict here")
    args = p.parse_args(argv)
    if bool(args.urls) == bool(args.spawn):
        p.error("give server URLs or --spawn N (not both)")
    if args.minutes <= 0 or args.interval <= 0 or args.users < 2 or args.rooms < 1 or args.rate <= 0:
        p.error("--minutes, --interval, --rate must be positive; at least 2 --users and 1 --rooms")
    return args


async def soak(args: argparse.Namespace) -> dict:
    raise_nofile()
    with tempfile.TemporaryDirectory(prefix="soak-") as workdir:
        nodes, cleanups = [], []
        try:
            if args.spawn:
                nodes, cleanups = await spawn(args.spawn, Path(workdir), args.redis_url, args.database_url)
                urls, pids = [n.url for n in nodes], [n.proc.pid for n in nodes]
            else:
                urls = [local_url(u) for u in args.urls]
                pids = args.pid or [pid_listening_on(urlsplit(u).port or 80) for u in urls]
                if None in pids:
                    raise SystemExit("soak: cannot find the server process of every URL; give --pid")
            print(f"soak: {args.minutes:g} min against {', '.join(urls)} (pids {pids}); {args.users} bots in "
                  f"{args.rooms} groups, {args.rate:g} actions/s", flush=True)
            return await Soak(args, urls, pids).run()
        finally:
            for node in nodes:
                await node.stop()
            for cleanup in cleanups:
                await cleanup()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = asyncio.run(soak(args))
    print_verdict(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
