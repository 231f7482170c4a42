"""What crossing nodes costs: the same fan-out load on one node, on three nodes behind one Redis, and on
three nodes behind a Redis Cluster (3 masters + 3 replicas, sharded pub/sub).

    .venv/bin/python scripts/bench_cluster.py            # 1 room x 500 members, 1 sender, stepped rates
    .venv/bin/python scripts/bench_cluster.py --rooms 30 --senders 30 --members 600 --rate 2 --rate 4
    .venv/bin/python scripts/bench_cluster.py --quick    # small and short

Every set-up stores in a private PostgreSQL (started for the run, so its CPU
is measured; the shared one on 127.0.0.1:5432 when PostgreSQL's binaries are
missing), so the differences are the Redis hop and the kind of Redis: connections are
spread over the nodes (with three nodes two deliveries in three cross nodes).
Redis is private to the run (a `redis-server` on a free port, or the private
cluster), so its CPU is measured too. Servers are pinned to CPU 0 (all nodes
share it, so CPU per delivery compares), the load generator to CPU 1. Prints
deliveries/s, latency p50/p99, server CPU per delivery and Redis CPU per
message side by side, then the cluster's extra CPU per cross-node delivery.
Figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench_fanout import Server, free_port, fresh_pg_database  # noqa: E402
from scripts.loadtest import LoadTest, Plan, proc_cpu_seconds as cpu_seconds  # noqa: E402
from scripts.postgres_server import PostgresProcess  # noqa: E402
from scripts.redis_cluster import RedisCluster  # noqa: E402
from scripts.redis_server import RedisProcess  # noqa: E402

BENCH_ENV = {"CHAT_SEND_RATE": "10000", "CHAT_SEND_BURST": "10000", "CHAT_LOG_LEVEL": "WARNING"}
SETUPS = {"one node": (1, None), "3 nodes + Redis": (3, "redis"), "3 nodes + Redis Cluster": (3, "cluster")}


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and all its children, the exited ones included (for PostgreSQL's backends)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid:
            total += sum(int(x) for x in fields[11:15]) / tick  # utime, stime, cutime, cstime
        elif int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class MeasuredLoadTest(LoadTest):
    """The load test, with Redis's and PostgreSQL's CPU per message sent measured around each step."""

    def __init__(self, plan: Plan, redis_pids: list[int], pg_pid: int | None):
        super().__init__(plan, progress=False)
        self.redis_pids, self.pg_pid = redis_pids, pg_pid

    async def step(self, rate: float, seconds: float, label: str) -> dict:
        redis0 = cpu_seconds(self.redis_pids)
        pg0 = tree_cpu_seconds(self.pg_pid) if self.pg_pid else None
        result = await super().step(rate, seconds, label)
        sent = result.get("sent") or 0
        if sent and self.redis_pids:
            result["redis_cpu_us_per_msg"] = round((cpu_seconds(self.redis_pids) - redis0) * 1e6 / sent, 2)
        if sent and pg0 is not None:
            result["pg_cpu_us_per_msg"] = round((tree_cpu_seconds(self.pg_pid) - pg0) * 1e6 / sent, 2)
        return result


async def start_nodes(count: int, redis_url: str | None, name: str, logs: Path, database: str) -> list[Server]:
    env = {**BENCH_ENV, "CHAT_DATABASE_URL": database}
    if redis_url:
        env["CHAT_REDIS_URL"] = redis_url
    nodes = []
    for i in range(count):
        port = free_port()
        node = Server(f"node{i}", [sys.executable, "-m", "chatserver", "--port", str(port)], port,
                      env=env, log=logs / f"{name.replace(' ', '-')}-node{i}.log")
        nodes.append(await node.start())
    return nodes


async def run(name: str, plan_args: dict, logs: Path) -> dict:
    count, redis_kind = SETUPS[name]
    redis = RedisProcess().start() if redis_kind == "redis" else RedisCluster().start() if redis_kind else None
    redis_pids = ([redis.proc.pid] if redis_kind == "redis" else [p.pid for p in redis.procs.values()]) if redis else []
    pg = PostgresProcess().init().start() if PostgresProcess.available() is None else None
    try:
        pg_pid = int((Path(pg.dir) / "postmaster.pid").read_text().split()[0]) if pg else None
        if pg is None:  # the shared server: its CPU cannot be told apart from other work
            database, drop = await fresh_pg_database()
        else:
            database, drop = pg.url, None
        nodes = await start_nodes(count, redis.url if redis else None, name, logs, database)
        try:
            plan = Plan(urls=[n.url for n in nodes], server_pids=[n.proc.pid for n in nodes], **plan_args)
            result = await MeasuredLoadTest(plan, redis_pids, pg_pid).run()
            result["nodes"] = count
            return result
        finally:
            for node in nodes:
                await node.stop()
            if drop is not None:
                await drop()
    finally:
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.remove()


def _steps(result: dict):
    for step in result["steps"]:
        yield step, step.get("server_cpu_us_per_delivery")


def table(results: dict[str, dict]) -> str:
    lines = ["| set-up | msgs/s | deliveries/s | lost | dup | order | p50 ms | p99 ms | server CPU µs/delivery | "
             "Redis CPU µs/msg | PostgreSQL CPU µs/msg |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, result in results.items():
        for step, cpu in _steps(result):
            lat = step.get("latency_ms") or {}
            redis_us, pg_us = step.get("redis_cpu_us_per_msg", "-"), step.get("pg_cpu_us_per_msg", "-")
            lines.append(
                f"| {name} | {step['rate']:g} | {step['deliveries_per_s']:,.0f} | {step['lost']} | "
                f"{step['duplicates']} | {step['order_violations']} | {lat.get('p50', float('nan')):.1f} | "
                f"{lat.get('p99', float('nan')):.1f} | {cpu if cpu is not None else '-'} | {redis_us} | {pg_us} |"
            )
    return "\n".join(lines)


def cluster_extra(results: dict[str, dict]) -> str:
    """The cluster's extra server CPU per cross-node delivery against one Redis, step by step
    (with three nodes and connections spread evenly, two deliveries in three cross nodes)."""
    single, cluster = results.get("3 nodes + Redis"), results.get("3 nodes + Redis Cluster")
    if not single or not cluster:
        return ""
    lines = ["| msgs/s | one Redis µs/delivery | cluster µs/delivery | cluster extra µs per cross-node delivery |",
             "|---:|---:|---:|---:|"]
    for (a, cpu_a), (b, cpu_b) in zip(_steps(single), _steps(cluster)):
        if cpu_a is None or cpu_b is None:
            continue
        lines.append(f"| {a['rate']:g} | {cpu_a} | {cpu_b} | {(cpu_b - cpu_a) * 3 / 2:+.2f} |")
    return "\n".join(lines)


def publish_cost(commands: int = 4000) -> str:
    """Node CPU per published message through redis-py: the cluster client's pipeline (routing by slot)
    against the plain one, in batches of 1 and 20 (what a node's publisher sends per write)."""
    from redis.asyncio import Redis
    from redis.asyncio.cluster import ClusterNode
    from redis.asyncio.cluster import RedisCluster as ClusterClient

    async def per_command(client, batch: int) -> float:
        started = time.process_time()
        for i in range(0, commands, batch):
            async with client.pipeline(transaction=False) as pipe:
                for j in range(batch):
                    pipe.execute_command("SPUBLISH", f"chat:room:r{(i + j) % 50}", b"x" * 200)
                await pipe.execute()
        return (time.process_time() - started) * 1e6 / commands

    async def run(cluster: RedisCluster, single: RedisProcess) -> list[str]:
        clustered = ClusterClient(startup_nodes=[ClusterNode("127.0.0.1", cluster.ports[0])])
        await clustered.initialize()
        plain = Redis(port=single.port)
        rows = []
        for batch in (1, 20):
            a, b = await per_command(plain, batch), await per_command(clustered, batch)
            rows.append(f"| {batch} | {a:.1f} | {b:.1f} | {b - a:+.1f} |")
        await clustered.aclose()
        await plain.aclose()
        return rows

    cluster, single = RedisCluster().start(), RedisProcess().start()
    try:
        rows = asyncio.run(run(cluster, single))
    finally:
        cluster.stop()
        single.stop()
    return "\n".join(["| messages per write | one Redis µs/msg | cluster µs/msg | extra |", "|---:|---:|---:|---:|", *rows])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 members, two short steps")
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--rooms", type=int, default=1)
    parser.add_argument("--senders", type=int, default=1)
    parser.add_argument("--rate", type=float, action="append", help="messages a second; repeat for steps")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--publish-only", action="store_true", help="only the publishing cost table (seconds)")
    parser.add_argument("--json", default=str(ROOT / "bench-results" / "bench-cluster.json"))
    args = parser.parse_args(argv)
    if args.publish_only:
        print(publish_cost())
        return
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    plan_args = dict(members=args.members, rooms=args.rooms, senders=args.senders, rates=args.rate or [50, 100, 200],
                     duration=args.duration)
    if args.quick:
        plan_args.update(members=200, rates=[50, 100], duration=3.0, warmup=0.5)
    logs = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    results = {}
    for name in SETUPS:
        results[name] = asyncio.run(run(name, plan_args, logs))
    print(table(results))
    print()
    print(cluster_extra(results))
    print()
    print(publish_cost())
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"\nfull results: {args.json}; server logs: {logs}")


if __name__ == "__main__":
    main()
