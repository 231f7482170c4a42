"""What crossing nodes costs: the same fan-out load on one node and on two nodes behind Redis.

    .venv/bin/python scripts/bench_cluster.py            # 1 room x 500 members, 1 sender, stepped rates
    .venv/bin/python scripts/bench_cluster.py --quick    # small and short

Both set-ups store in PostgreSQL (a fresh database each, on 127.0.0.1:5432),
so the only difference is the Redis hop: in the two-node run the sender and
half the members are on node A, the other half on node B. Servers are pinned
to CPU 0 (both nodes share it, so CPU per delivery compares), the load
generator to CPU 1. Redis is the one on 127.0.0.1:6379. Prints deliveries/s,
latency p50/p99 and server CPU per delivery side by side. Figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench_fanout import Server, free_port, fresh_pg_database  # noqa: E402
from scripts.loadtest import LoadTest, Plan  # noqa: E402

REDIS_URL = os.environ.get("CHAT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
BENCH_ENV = {"CHAT_SEND_RATE": "10000", "CHAT_SEND_BURST": "10000", "CHAT_LOG_LEVEL": "WARNING"}


async def start_nodes(count: int, logs: Path) -> tuple[list[Server], object]:
    database, drop = await fresh_pg_database()
    env = {**BENCH_ENV, "CHAT_DATABASE_URL": database}
    if count > 1:
        env["CHAT_REDIS_URL"] = REDIS_URL
    nodes = []
    for i in range(count):
        port = free_port()
        node = Server(f"node{i}", [sys.executable, "-m", "chatserver", "--port", str(port)], port,
                      env=env, log=logs / f"cluster-{count}-node{i}.log")
        nodes.append(await node.start())
    return nodes, drop


async def run(count: int, plan_args: dict, logs: Path) -> dict:
    nodes, drop = await start_nodes(count, logs)
    try:
        plan = Plan(urls=[n.url for n in nodes], server_pids=[n.proc.pid for n in nodes], **plan_args)
        return await LoadTest(plan, progress=False).run()
    finally:
        for node in nodes:
            await node.stop()
        await drop()


def table(results: dict[str, dict]) -> str:
    lines = ["| set-up | msgs/s | deliveries/s | lost | dup | order | p50 ms | p99 ms | server CPU µs/delivery |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, result in results.items():
        for step in result["steps"]:
            lat = step.get("latency_ms") or {}
            cpu = step.get("server_cpu_us_per_delivery")
            lines.append(
                f"| {name} | {step['rate']:g} | {step['deliveries_per_s']:,.0f} | {step['lost']} | "
                f"{step['duplicates']} | {step['order_violations']} | {lat.get('p50', float('nan')):.1f} | "
                f"{lat.get('p99', float('nan')):.1f} | {cpu if cpu is not None else '-'} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 members, two short steps")
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--rate", type=float, action="append", help="messages a second; repeat for steps")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--json", default=str(ROOT / "bench-results" / "bench-cluster.json"))
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    plan_args = dict(members=args.members, rooms=1, senders=1, rates=args.rate or [50, 100, 200],
                     duration=args.duration)
    if args.quick:
        plan_args.update(members=200, rates=[50, 100], duration=3.0, warmup=0.5)
    logs = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    results = {}
    for count, name in ((1, "one node"), (2, "two nodes + Redis")):
        results[name] = asyncio.run(run(count, plan_args, logs))
    print(table(results))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"\nfull results: {args.json}; server logs: {logs}")


if __name__ == "__main__":
    main()
