"""The fan-out benchmark: our server beside a bare broadcast and socket.io, in one run.

    .venv/bin/python scripts/bench_fanout.py                       # every scenario, every target
    .venv/bin/python scripts/bench_fanout.py --scenario fanout --targets ours,bare
    .venv/bin/python scripts/bench_fanout.py --quick               # small sizes, a few seconds
    .venv/bin/python scripts/bench_fanout.py --scenario fanout --targets ours,bare --rounds 3

Each server runs as a subprocess pinned to CPU 0 (`taskset -c 0`); this
script, the load generator (`scripts/loadtest.py`, in-process), pins itself
to CPU 1. Targets:
- `ours`: `python -m chatserver` on a fresh SQLite file (`ours-pg`: a fresh
  PostgreSQL database on 127.0.0.1:5432, ingest only), with
  CHAT_SEND_RATE/BURST raised so the benchmark's senders are not rate limited;
- `bare`: `bench_servers/bare_broadcast.py` (picows), the limit;
- `aiohttp`: `bench_servers/aiohttp_broadcast.py`, the same broadcast on
  aiohttp, which our server is built on: what is aiohttp's and what is ours;
- `socketio`: `bench_servers/socketio_server.py` (python-socketio on aiohttp);
- `node`: `bench_servers/node_socketio/server.js` (socket.io on Node; run
  `npm install` there first, or it is skipped with a note).

Scenarios (`--quick` shrinks them):
- `fanout`: 1 room x 1,000 members, 1 sender, stepped rates;
- `rooms`: 2,000 connections in 200 rooms of 10, each sending 1 msg/s;
- `idle`: 10,000 connections (1,000 users x 10) in 100 rooms: server RSS per connection;
- `idle-users`: 5,000 distinct users, one connection each, each in 3 of 100 rooms;
- `ingest`: acked, stored messages a second from 100 senders (each alone in
  a room), SQLite and PostgreSQL.

`--rounds N` runs every scenario's targets N times in turn (A B A B ...)
and reports, per rate, the round with the median CPU per delivery (its p99
is that round's; losses are summed over all rounds): on a shared machine
one round's figures move by ±20 %, and alternating spreads the disturbance
over both sides instead of giving it all to whichever ran in a busy minute.

Writes the full results as JSON (`--json`, default bench-results/bench-fanout.json),
prints the tables (Markdown with `--markdown PATH`), and draws `--plot PATH`.
Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.loadtest import LoadTest, Plan, raise_nofile  # noqa: E402

SERVERS = ROOT / "scripts" / "bench_servers"
NODE_DIR = SERVERS / "node_socketio"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"

FANOUT_RATES = [20, 50, 100, 200, 300]  # messages a second from the one sender
SOCKETIO_FANOUT_RATES = [10, 20]  # python-socketio: ~50 µs a delivery cannot go further on one core

SCENARIOS: dict[str, dict[str, Any]] = {
    "fanout": dict(members=1000, rooms=1, senders=1, rates=FANOUT_RATES, duration=8.0, warmup=2.0, drain=20.0),
    "rooms": dict(members=2000, rooms=200, senders=2000, rates=[1.0], duration=20.0, warmup=2.0, drain=10.0),
    "idle": dict(members=10000, rooms=100, senders=0, rates=[], duration=3.0, warmup=0.0, conns_per_user=10,
                 settle=3.0),
    "idle-users": dict(members=5000, rooms=100, senders=0, rates=[], duration=3.0, warmup=0.0, conns_per_user=1,
                       rooms_per_user=3, settle=3.0),
    "ingest": dict(members=100, rooms=100, senders=100, rates=[50.0, 100.0, 150.0, 200.0], duration=8.0,
                   warmup=2.0, drain=20.0),
}
QUICK: dict[str, dict[str, Any]] = {
    "fanout": dict(members=100, rooms=1, senders=1, rates=[20, 100], duration=2.0, warmup=0.5, drain=5.0),
    "rooms": dict(members=200, rooms=20, senders=200, rates=[1.0], duration=3.0, warmup=0.5, drain=5.0),
    "idle": dict(members=500, rooms=10, senders=0, rates=[], duration=1.0, warmup=0.0, conns_per_user=5,
                 settle=1.0),
    "idle-users": dict(members=300, rooms=10, senders=0, rates=[], duration=1.0, warmup=0.0, conns_per_user=1,
                       rooms_per_user=3, settle=1.0),
    "ingest": dict(members=20, rooms=20, senders=20, rates=[20.0, 50.0], duration=2.0, warmup=0.5, drain=5.0),
}
TARGETS = {
    "fanout": ["ours", "bare", "aiohttp", "socketio", "node"],
    "rooms": ["ours", "bare", "aiohttp", "socketio", "node"],
    "idle": ["ours", "bare", "aiohttp", "socketio", "node"],
    "idle-users": ["ours", "bare", "aiohttp", "socketio", "node"],
    "ingest": ["ours", "ours-pg"],
}
LOADTEST_TARGET = {"ours": "chat", "ours-pg": "chat", "bare": "bare", "aiohttp": "bare", "socketio": "socketio",
                   "node": "socketio"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pin(cpu: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if shutil.which("taskset") and os.cpu_count() > 1 else argv


def _raise_child_nofile() -> None:
    raise_nofile()


@dataclass
class Server:
    """One server under test: started pinned to CPU 0, healthy before use, stopped after."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    health: str | None = "/healthz"  # HTTP path answering 200, or None: wait for the port
    cwd: Path = ROOT
    log: Path | None = None
    proc: subprocess.Popen | None = None
    cleanup: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 60.0) -> "Server":
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(pin(0, self.argv), cwd=self.cwd, env={**os.environ, **self.env},
                                     stdout=out, stderr=subprocess.STDOUT, preexec_fn=_raise_child_nofile)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} (log: {self.log})")
            if await self._healthy():
                return self
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become healthy in {timeout:g} s (log: {self.log})")

    async def _healthy(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            if self.health is None:
                return True
            writer.write(f"GET {self.health} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            line = await asyncio.wait_for(reader.readline(), 5)
            return b" 200 " in line
        except (OSError, asyncio.TimeoutError):
            return False
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            for _ in range(100):
                if self.proc.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            else:
                self.proc.kill()
                self.proc.wait()
        for fn in self.cleanup:
            await fn()


async def fresh_pg_database() -> tuple[str, Any]:
    """A new PostgreSQL database for one run, and the coroutine function that drops it."""
    import asyncpg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", drop


def available(target: str) -> str | None:
    """None if the target can run here, else why not."""
    if target == "bare":
        try:
            import picows  # noqa: F401
        except ImportError:
            return "picows is not installed (pip install -e '.[bench]')"
    if target == "socketio":
        try:
            import socketio  # noqa: F401
        except ImportError:
            return "python-socketio is not installed (pip install -e '.[bench]')"
    if target == "node":
        if shutil.which("node") is None:
            return "node is not installed"
        if not (NODE_DIR / "node_modules" / "socket.io").is_dir():
            if shutil.which("npm") is None:
                return "npm is not installed"
            done = subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                return f"npm install socket.io failed: {done.stderr.strip()[-200:]}"
    if target == "ours-pg":
        try:
            with socket.create_connection(("127.0.0.1", 5432), timeout=1):
                pass
        except OSError as exc:
            return f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc})"
    return None


async def make_server(target: str, workdir: Path) -> Server:
    port = free_port()
    log = workdir / f"{target}-{port}.log"
    py = sys.executable
    if target in ("ours", "ours-pg"):
        env = {"CHAT_PORT": str(port), "CHAT_HOST": "127.0.0.1", "CHAT_LOG_LEVEL": "WARNING",
               "CHAT_SEND_RATE": "1000000", "CHAT_SEND_BURST": "1000000", "CHAT_MAX_CONNECTIONS": "50000",
               "CHAT_REDIS_URL": ""}
        server = Server(target, [py, "-m", "chatserver"], port, env=env, log=log)
        if target == "ours":
            env["CHAT_DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / f'bench-{port}.db'}"
        else:
            url, drop = await fresh_pg_database()
            env["CHAT_DATABASE_URL"] = url
            server.cleanup.append(drop)
        return server
    if target == "bare":
        return Server(target, [py, str(SERVERS / "bare_broadcast.py"), "--port", str(port)], port, health=None,
                      log=log)
    if target == "aiohttp":
        return Server(target, [py, str(SERVERS / "aiohttp_broadcast.py"), "--port", str(port)], port, health=None,
                      log=log)
    if target == "socketio":
        return Server(target, [py, str(SERVERS / "socketio_server.py"), "--port", str(port)], port, log=log)
    if target == "node":
        return Server(target, ["node", "server.js", "--port", str(port)], port, cwd=NODE_DIR, log=log)
    raise ValueError(target)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def run_one(scenario: str, target: str, sizes: dict[str, Any], workdir: Path,
                  progress: bool) -> dict[str, Any]:
    values = dict(sizes)
    if scenario == "fanout" and target == "socketio" and values["rates"] == FANOUT_RATES:
        values["rates"] = SOCKETIO_FANOUT_RATES
    server = await make_server(target, workdir)
    load_before = loadavg()
    try:
        await server.start()
        plan = Plan(urls=[server.url], target=LOADTEST_TARGET[target], server_pids=[server.proc.pid], **values)
        test = LoadTest(plan, progress=progress)
        result = await test.run()
    finally:
        await server.stop()
    result["bench"] = {"scenario": scenario, "target": target, "loadavg_before": load_before,
                       "loadavg_after": loadavg()}
    result["_test"] = test
    return result


# ---------------------------------------------------------------------------- tables


def merge_rounds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several rounds of one scenario and target (see `--rounds`).

    Each step is the round whose CPU per delivery was the median at that step (the upper
    one of an even count), so its p99 and CPU come from one real run; loss, duplicates and
    order errors are summed over every round. Idle results take the round with the median
    memory per connection.
    """
    if len(runs) == 1:
        return runs[0]
    if not runs[0]["steps"]:
        per_conn = [r["server"]["rss_per_connection"] or 0 for r in runs]
        merged = dict(runs[per_conn.index(statistics.median_high(per_conn))])
        merged["rounds_rss_per_connection"] = per_conn
    else:
        merged = dict(runs[0])
        merged["steps"] = []
        for i in range(min(len(r["steps"]) for r in runs)):
            same = [r["steps"][i] for r in runs]
            cpus = [s["server_cpu_us_per_delivery"] or 0.0 for s in same]
            step = dict(same[cpus.index(statistics.median_high(cpus))])
            step["rounds_cpu_us_per_delivery"] = cpus
            for key in ("lost", "duplicates", "order_violations"):
                step[key] = sum(s[key] for s in same)
            merged["steps"].append(step)
    merged["rounds"] = len(runs)
    return merged




def best_sustained(result: dict[str, Any], p99_ms: float) -> dict[str, Any] | None:
    """The highest step with no loss, p99 under `p99_ms` and at least 95% of the offered deliveries."""
    best = None
    for s in result["steps"]:
        offered = s["offered_msgs_per_s"] * result["members"] / result["rooms"]
        lat = s["latency_ms"] or {}
        if (s["drained"] and s["lost"] == 0 and s["duplicates"] == 0 and s["order_violations"] == 0 and lat
                and lat["p99"] < p99_ms and s["deliveries_per_s"] >= 0.95 * offered):
            best = s
    return best


def _fmt(x: Any, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec)


def _wait(step: dict[str, Any]) -> str:
    """Run delay of the server and of the generator: time runnable but waiting for a CPU."""
    srv = step.get("server_run_delay")
    return f"{'-' if srv is None else f'{srv * 100:.0f}%'}/{step['generator_run_delay'] * 100:.0f}%"


def tables(results: list[dict[str, Any]]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for each table of the report."""
    out = []
    by = {(r["bench"]["scenario"], r["bench"]["target"]): r for r in results}
    fan = [r for r in results if r["bench"]["scenario"] == "fanout"]
    if fan:
        rows = []
        for r in fan:
            for s in r["steps"]:
                lat = s["latency_ms"] or {}
                rows.append([r["bench"]["target"], _fmt(s["offered_msgs_per_s"], "g"), _fmt(s["deliveries_per_s"]),
                             _fmt(s["server_cpu_us_per_delivery"], ".2f"), _fmt(lat.get("p50"), ".1f"),
                             _fmt(lat.get("p99"), ".1f"), _fmt(s["lost"]), _fmt(s["duplicates"] +
                                                                               s["order_violations"]),
                             f"{s['generator_cpu'] * 100:.0f}%" + (" (sat.)" if s["generator_saturated"] else ""),
                             _wait(s), " / ".join(f"{x:.2f}" for x in s.get("rounds_cpu_us_per_delivery", []))])
        out.append(("fanout: 1 room x %d members, 1 sender" % fan[0]["members"],
                    ["server", "msgs/s", "deliveries/s", "CPU µs/delivery", "p50 ms", "p99 ms", "lost",
                     "dup+order", "generator CPU", "CPU wait srv/gen", "every round's µs"], rows))
        ours = by.get(("fanout", "ours"))
        if ours:
            others = [t for t in ("bare", "aiohttp", "socketio", "node") if ("fanout", t) in by]
            header = ["msgs/s", "ours µs", "ours p99 ms", "ours lost"]
            for t in others:
                header += [f"{t} µs", f"ours/{t}", f"{t} p99 ms"]
            rows = []
            for s in ours["steps"]:
                rate = s["offered_msgs_per_s"]
                mine = s["server_cpu_us_per_delivery"]
                row = [_fmt(rate, "g"), _fmt(mine, ".2f"), _fmt((s["latency_ms"] or {}).get("p99"), ".1f"),
                       _fmt(s["lost"])]
                for t in others:
                    theirs = next((x for x in by[("fanout", t)]["steps"] if x["offered_msgs_per_s"] == rate), None)
                    cpu = theirs and theirs["server_cpu_us_per_delivery"]
                    row += [_fmt(cpu, ".2f"), f"{mine / cpu:.2f}x" if mine and cpu else "-",
                            _fmt(theirs and (theirs["latency_ms"] or {}).get("p99"), ".1f")]
                rows.append(row)
            out.append(("fanout: server CPU per delivery at the same rate, ours against each reference "
                        "(bare = picows)", header, rows))
            rows = []
            for r in fan:
                b = best_sustained(r, 100.0)
                rows.append([r["bench"]["target"], _fmt(b and b["deliveries_per_s"]),
                             _fmt(b and b["latency_ms"]["p99"], ".1f"), _fmt(b and b["server_cpu_us_per_delivery"],
                                                                             ".2f")])
            out.append(("fanout: highest step sustained with zero loss and p99 < 100 ms",
                        ["server", "deliveries/s", "p99 ms", "CPU µs/delivery"], rows))
    for scenario, title in (("rooms", "rooms: 2,000 connections in 200 rooms of 10, 1 msg/s each"),
                            ("ingest", "ingest: acked (stored) messages a second from 100 senders")):
        rs = [r for r in results if r["bench"]["scenario"] == scenario]
        if not rs:
            continue
        if scenario == "rooms":
            title = (f"rooms: {rs[0]['members']:,} connections in {rs[0]['rooms']:,} rooms of "
                     f"{rs[0]['members'] // rs[0]['rooms']}, {rs[0]['steps'][0]['rate']:g} msg/s each")
        else:
            title = f"ingest: acked (stored) messages a second from {rs[0]['senders']:,} senders"
        rows = []
        for r in rs:
            for s in r["steps"]:
                lat = s["latency_ms"] or {}
                ack = s["ack_latency_ms"] or {}
                rows.append([r["bench"]["target"], _fmt(s["offered_msgs_per_s"], "g"), _fmt(s["acked_per_s"]),
                             f"{s['acked']:,}/{s['sent']:,}", _fmt(s["deliveries_per_s"]),
                             _fmt(s["server_cpu_us_per_delivery"], ".2f"), _fmt(ack.get("p99"), ".1f"),
                             _fmt(lat.get("p99"), ".1f"), _fmt(s["lost"]),
                             f"{s['generator_cpu'] * 100:.0f}%" + (" (sat.)" if s["generator_saturated"] else ""),
                             _wait(s)])
        out.append((title, ["server", "msgs/s", "acked/s", "acked/sent", "deliveries/s", "CPU µs/delivery",
                            "ack p99 ms", "p99 ms", "lost", "generator CPU", "CPU wait srv/gen"], rows))
    idle = [r for r in results if r["bench"]["scenario"] in ("idle", "idle-users")]
    if idle:
        rows = [[r["bench"]["target"],
                 f"{r['members']:,} conns, {r['members'] // r['conns_per_user']:,} users x "
                 f"{r.get('rooms_per_user', 1)} of {r['rooms']} rooms",
                 _fmt(r["server"]["rss_before_connect"] and r["server"]["rss_before_connect"] / 2**20, ",.0f"),
                 _fmt(r["server"]["rss_connected"] and r["server"]["rss_connected"] / 2**20, ",.0f"),
                 _fmt(r["server"]["rss_per_connection"] and r["server"]["rss_per_connection"] / 1024, ".1f")]
                for r in idle]
        out.append(("idle: server RSS per connection", ["server", "shape", "RSS before MiB",
                                                                  "RSS connected MiB", "KiB per connection"], rows))
    return out


def markdown(tabs) -> str:
    parts = []
    for title, header, rows in tabs:
        parts.append(f"**{title}**\n")
        parts.append("| " + " | ".join(header) + " |")
        parts.append("|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|")
        parts.extend("| " + " | ".join(r) + " |" for r in rows)
        parts.append("")
    return "\n".join(parts)


def print_tables(tabs) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(markdown(tabs))
        return
    console = Console(width=max(170, shutil.get_terminal_size().columns))
    for title, header, rows in tabs:
        table = Table(title=title)
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right")
        for r in rows:
            table.add_row(*r)
        console.print(table)


def plot(results: list[dict[str, Any]], path: str) -> None:
    """CPU per delivery and p99 against deliveries/s per server (fanout), and our latency over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    fan = [r for r in results if r["bench"]["scenario"] == "fanout"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    (cpu_ax, p99_ax), (time_ax, hist_ax) = axes
    for r in fan:
        xs = [s["deliveries_per_s"] / 1000 for s in r["steps"]]
        cpu_ax.plot(xs, [s["server_cpu_us_per_delivery"] for s in r["steps"]], "o-", label=r["bench"]["target"])
        p99_ax.plot(xs, [(s["latency_ms"] or {}).get("p99") for s in r["steps"]], "o-", label=r["bench"]["target"])
    cpu_ax.set_xlabel("deliveries/s (thousands)")
    cpu_ax.set_ylabel("server CPU µs per delivery")
    cpu_ax.set_yscale("log")
    cpu_ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    cpu_ax.set_title("fanout: 1 room x %s members, 1 sender" % (fan[0]["members"] if fan else "?"), fontsize=9)
    cpu_ax.grid(alpha=0.3, which="both")
    cpu_ax.legend(fontsize=8)
    p99_ax.set_xlabel("deliveries/s (thousands)")
    p99_ax.set_ylabel("p99 send → receipt (ms)")
    p99_ax.set_yscale("log")
    p99_ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    p99_ax.axhline(100, color="grey", ls=":", lw=1)
    p99_ax.grid(alpha=0.3, which="both")
    p99_ax.legend(fontsize=8)
    ours = next((r for r in fan if r["bench"]["target"] == "ours"), None)
    if ours is not None:
        test = ours["_test"]
        stats, marks = test.stats, test._marks
        lat = np.frombuffer(stats.lat, dtype=np.int64) / 1e6
        rt = np.frombuffer(stats.rt, dtype=np.int64)
        if marks and len(rt):
            origin = rt[marks[0][0]]
            for step, (a, b) in zip(ours["steps"], marks):
                t = (rt[a:b] - origin) / 1e9
                sample = np.random.default_rng(0).choice(len(t), size=min(len(t), 20_000), replace=False)
                time_ax.scatter(t[sample], lat[a:b][sample], s=1, alpha=0.3,
                                label=f"{step['offered_msgs_per_s']:g} msgs/s")
            time_ax.set_yscale("log")
            time_ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            time_ax.set_xlabel("seconds (steps back to back)")
            time_ax.set_ylabel("latency (ms)")
            time_ax.set_title("ours, fanout: every delivery's latency (sampled)", fontsize=9)
            time_ax.legend(fontsize=7, markerscale=8)
            keep = np.concatenate([lat[a:b] for a, b in marks])
            hist_ax.hist(keep, bins=np.logspace(np.log10(max(keep.min(), 0.05)), np.log10(keep.max() + 0.1), 80))
            hist_ax.set_xscale("log")
            hist_ax.set_xlabel("latency (ms)")
            hist_ax.set_ylabel("deliveries")
            hist_ax.set_title("ours, fanout: latency histogram, all steps", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------- main


async def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    sizes = QUICK if args.quick else SCENARIOS
    if args.rates:
        sizes = {**sizes, "fanout": {**sizes["fanout"], "rates": [float(r) for r in args.rates.split(",")]}}
    if args.members:
        sizes = {**sizes, "fanout": {**sizes["fanout"], "members": args.members}}
    scenarios = list(SCENARIOS) if args.scenario == "all" else args.scenario.split(",")
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    for scenario in scenarios:
        targets = TARGETS[scenario]
        if args.targets:
            targets = [t for t in targets if t in args.targets.split(",")]
        rounds: dict[str, list[dict[str, Any]]] = {}
        for n in range(1, args.rounds + 1):
            for target in targets:
                why = available(target)
                if why:
                    if n == 1:
                        notes.append(f"{scenario}/{target} skipped: {why}")
                        print(f"--- {scenario}/{target} skipped: {why}", flush=True)
                    continue
                print(f"--- {scenario}/{target} round {n}/{args.rounds} (load {os.getloadavg()[0]:.2f})", flush=True)
                try:
                    rounds.setdefault(target, []).append(
                        await run_one(scenario, target, sizes[scenario], workdir, args.progress))
                except Exception as exc:  # one target failing must not lose the others' figures
                    notes.append(f"{scenario}/{target} round {n} failed: {exc!r}")
                    print(f"--- {scenario}/{target} FAILED: {exc!r} (logs in {workdir})", flush=True)
        results.extend(merge_rounds(runs) for runs in rounds.values())
    tabs = tables(results)
    print_tables(tabs)
    for note in notes:
        print("note:", note)
    if any(r["totals"]["generator_saturated"] for r in results):
        print("note: the load generator passed 90% of its core in some steps (marked 'sat.'): those figures are "
              "bounded by the generator")
    if args.plot:
        plot(results, args.plot)
    for r in results:
        r.pop("_test", None)
    meta = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "quick": args.quick,
            "python": platform.python_version(), "cpus": os.cpu_count(), "notes": notes,
            "machine": platform.platform()}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(markdown(tabs))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="all",
                        help="fanout, rooms, idle, ingest, a comma-separated list, or all (default)")
    parser.add_argument("--targets", help="comma-separated subset of ours, ours-pg, bare, aiohttp, socketio, node")
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds per step")
    parser.add_argument("--rates", help="fanout only: comma-separated msgs/s steps instead of the default "
                        f"{','.join(map(str, FANOUT_RATES))}")
    parser.add_argument("--members", type=int, help="fanout only: room size instead of 1,000 (a small room "
                        "separates the cost per message from the cost per delivery)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run each scenario's targets this many times in turn (A B A B); per step the "
                             "round with the median CPU is reported")
    parser.add_argument("--json", default=str(ROOT / "bench-results" / "bench-fanout.json"))
    parser.add_argument("--markdown", help="also write the tables as Markdown here")
    parser.add_argument("--plot", help="write the comparison PNG here (needs matplotlib)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the generator to CPU 1")
    parser.add_argument("--progress", action="store_true", help="rich progress bars (default: when a terminal)")
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness for the generator and the servers (negative needs root; on a shared "
                             "machine it keeps other work from starving the measured processes)")
    args = parser.parse_args(argv)
    args.progress = args.progress or sys.stderr.isatty()
    for s in ([] if args.scenario == "all" else args.scenario.split(",")):
        if s not in SCENARIOS:
            parser.error(f"unknown scenario {s!r}")
    if not args.no_pin and os.cpu_count() and os.cpu_count() > 1:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {1})
    if args.nice:
        os.nice(args.nice)  # the servers, started from here, inherit it
    raise_nofile()
    try:
        import uvloop
    except ImportError:
        asyncio.run(bench(args))
    else:
        uvloop.run(bench(args))


if __name__ == "__main__":
    main()
