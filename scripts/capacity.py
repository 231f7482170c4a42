"""A capacity model: how many chat nodes, Redis shards and what PostgreSQL serve a target load,
computed from costs measured here (docs/scaling.md explains each input and assumption).

    .venv/bin/python scripts/capacity.py                          # the inputs below, 1M / 500k / 30k
    .venv/bin/python scripts/capacity.py --measure-redis          # measure a Redis shard's costs first
    .venv/bin/python scripts/capacity.py --bench bench-results/bench-cluster.json   # node, Redis and PG
                                                                  # costs from a bench_cluster.py run
    .venv/bin/python scripts/capacity.py --set fanout=100 --set connections=2000000

Every figure is CPU time on one core per process. Prints the inputs, then the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# name: (value, where it comes from). Costs are µs of one core; rerun the measurements to refresh them.
INPUTS: dict[str, tuple[float, str]] = {
    # the load (issue 17)
    "connections": (1_000_000, "target: concurrent connections"),
    "groups": (500_000, "target: groups"),
    "msgs_per_s": (30_000, "target: messages sent a second, all groups together"),
    "fanout": (40, "assumption: online members a message reaches (avg; groups up to 2,000, most small)"),
    "max_group": (2_000, "target: largest group"),
    # a chat node
    "node_ingest_us": (54.7, "docs/performance.md newest full run, ingest ours-pg at 10,000 msgs/s: CPU per stored+acked message"),
    "node_deliver_us": (3.9, "docs/performance.md newest full run, fanout 1x1000 at 200 msgs/s: CPU per local delivery"),
    "node_remote_us": (27.1, "bus_receive_us + node_sequence_us: CPU per bus message a node receives"),
    "bus_receive_us": (17.1, "capacity.py --measure-bus: the cluster bus reading and decoding one room event"),
    "node_sequence_us": (10.0, "assumption: the hub's per-message work (sequencer, one encode per codec)"),
    "node_ping_us": (8.0, "assumption: CPU per WebSocket ping/pong round (one per connection per heartbeat)"),
    "heartbeat_s": (25, "docs/protocol.md §13 CHAT_HEARTBEAT default"),
    "conn_kib": (8.8, "docs/performance.md newest full run: idle memory per connection, 5,000 users in 3 rooms each"),
    "conn_active_kib": (8.0, "assumption: extra buffers of a connection with traffic (write buffer, frames)"),
    "node_base_mib": (90, "README soak: a node's RSS before connections"),
    "node_mem_gib": (8, "assumption: memory a node may use"),
    "node_cpu_target": (0.6, "assumption: a node's core kept below 60 % busy (headroom for bursts and failover)"),
    # a Redis shard (one master core; replicas only replicate nothing for pub/sub)
    "redis_publish_us": (5.3, "capacity.py --measure-redis (one SPUBLISH per write): CPU per message on a shard"),
    "redis_per_subscriber_us": (1.9, "capacity.py --measure-redis: extra CPU per subscribed node it goes to"),
    "redis_cpu_target": (0.5, "assumption: a Redis master kept below 50 % of its core"),
    # PostgreSQL
    "pg_us_per_msg": (250.0, "bench_cluster at 200 msgs/s, private PostgreSQL: all backends' CPU per stored message "
                              "(170-276 µs; small group commits at that rate, so an upper bound)"),
    "pg_cores": (32, "assumption: cores of the primary"),
    "pg_cpu_target": (0.6, "assumption: the primary kept below 60 %"),
    "msg_bytes": (600, "assumption: bytes a stored message takes with its index entries and WAL"),
}


def model(v: dict[str, float]) -> list[tuple[str, str, str]]:
    """Rows of (quantity, value, how it follows)."""
    rows = []
    deliveries = v["msgs_per_s"] * v["fanout"]
    rows.append(("deliveries/s", f"{deliveries:,.0f}", "msgs/s x fanout"))

    # Nodes: the most constraining of memory, connections and CPU.
    conn_mib = (v["conn_kib"] + v["conn_active_kib"]) / 1024
    by_memory = math.floor((v["node_mem_gib"] * 1024 - v["node_base_mib"]) / conn_mib)
    rows.append(("connections a node holds by memory", f"{by_memory:,}",
                 f"({v['node_mem_gib']} GiB - base) / {v['conn_kib'] + v['conn_active_kib']:.0f} KiB"))

    def node_cpu(nodes: int) -> float:
        """One node's busy fraction with `nodes` nodes, members spread evenly over them."""
        reach = nodes * (1 - (1 - 1 / nodes) ** v["fanout"])  # nodes a message reaches
        per_node = (v["msgs_per_s"] * v["node_ingest_us"]
                    + deliveries * v["node_deliver_us"]
                    + v["msgs_per_s"] * reach * v["node_remote_us"]
                    + v["connections"] / v["heartbeat_s"] * v["node_ping_us"]) / nodes
        return per_node / 1e6

    nodes = max(1, math.ceil(v["connections"] / by_memory))
    while node_cpu(nodes) > v["node_cpu_target"]:
        nodes += 1
    reach = nodes * (1 - (1 - 1 / nodes) ** v["fanout"])
    rows.append(("nodes a message reaches", f"{reach:.1f}", "N x (1 - (1 - 1/N)^fanout), members spread at random"))
    cpu_parts = {
        "ingest": v["msgs_per_s"] * v["node_ingest_us"],
        "deliveries": deliveries * v["node_deliver_us"],
        "bus messages in": v["msgs_per_s"] * reach * v["node_remote_us"],
        "pings": v["connections"] / v["heartbeat_s"] * v["node_ping_us"],
    }
    total_cores = sum(cpu_parts.values()) / 1e6
    rows.append(("chat node cores busy, all nodes", f"{total_cores:.1f}",
                 ", ".join(f"{k} {p / 1e6:.1f}" for k, p in cpu_parts.items())))
    rows.append(("chat nodes (one core each)", f"{nodes}",
                 f"{node_cpu(nodes):.0%} busy each (target {v['node_cpu_target']:.0%}); "
                 f"{v['connections'] / nodes:,.0f} connections each"))

    # Redis shards: publishes plus copies to subscribed nodes, spread over masters by slot.
    redis_us = v["msgs_per_s"] * (v["redis_publish_us"] + reach * v["redis_per_subscriber_us"])
    shards = max(1, math.ceil(redis_us / 1e6 / v["redis_cpu_target"]))
    rows.append(("Redis CPU, all shards", f"{redis_us / 1e6:.2f} cores",
                 f"msgs/s x (publish + {reach:.1f} x per subscriber)"))
    largest = v["max_group"] and (v["redis_publish_us"] + min(nodes, v["max_group"]) * v["redis_per_subscriber_us"])
    rows.append(("Redis shards (masters; +1 replica each)", f"{shards}",
                 f"{redis_us / 1e6 / shards:.0%} busy each (target {v['redis_cpu_target']:.0%}); one 2,000-member "
                 f"group's message costs its shard {largest:.0f} µs"))

    # PostgreSQL: every message stored once, on the primary.
    pg_cores = v["msgs_per_s"] * v["pg_us_per_msg"] / 1e6
    rows.append(("PostgreSQL primary CPU", f"{pg_cores:.1f} cores",
                 f"{v['pg_us_per_msg']:.0f} µs/msg; {pg_cores / v['pg_cores']:.0%} of a {v['pg_cores']:.0f}-core "
                 f"primary (target {v['pg_cpu_target']:.0%})"))
    rows.append(("PostgreSQL write volume", f"{v['msgs_per_s'] * v['msg_bytes'] / 2**20:.0f} MiB/s",
                 f"{v['msgs_per_s'] * v['msg_bytes'] * 86400 / 2**40:.2f} TiB a day of messages, indexes and WAL"))
    pg_ok = pg_cores <= v["pg_cores"] * v["pg_cpu_target"]
    rows.append(("PostgreSQL layout", "one primary" if pg_ok else "past one primary",
                 "partition messages by room hash; history from replicas" if pg_ok
                 else "distribute by room (Citus) or shard by room id"))
    return rows


def measure_redis(messages: int = 40_000, batch: int = 1) -> dict[str, float]:
    """CPU of a private redis-server per SPUBLISH with 1 and 8 subscribed connections (a line through both).

    `batch` commands go in one write: a node's publisher sends what queued since its last write, which
    at a few hundred messages a second per node is one or two, so 1 is the honest default (every
    message then costs Redis its own read and, per subscriber, its own write). Subscribers are raw
    sockets drained by threads, so the reading side never slows Redis down."""
    import socket
    import threading

    import redis

    from scripts.redis_server import RedisProcess

    server = RedisProcess().start()
    try:
        costs = {}
        payload = b"x" * 200
        for subscribers in (1, 8):
            sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(subscribers)]
            for sock in sockets:
                sock.sendall(b"SSUBSCRIBE chat:room:measure\r\n")
                sock.recv(4096)
            drains = [threading.Thread(target=_drain, args=(sock,), daemon=True) for sock in sockets]
            for thread in drains:
                thread.start()
            publisher = redis.Redis(port=server.port)
            before = _cpu(server.proc.pid)
            for _ in range(0, messages, batch):
                with publisher.pipeline(transaction=False) as pipe:
                    for _ in range(batch):
                        pipe.execute_command("SPUBLISH", "chat:room:measure", payload)
                    pipe.execute()
            costs[subscribers] = (_cpu(server.proc.pid) - before) * 1e6 / messages
            publisher.close()
            for sock in sockets:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        per_subscriber = (costs[8] - costs[1]) / 7
        return {"redis_publish_us": max(costs[1] - per_subscriber, 0.1), "redis_per_subscriber_us": per_subscriber}
    finally:
        server.stop()


def measure_bus_receive(messages: int = 20_000) -> dict[str, float]:
    """CPU of this process per room event the cluster bus receives from another node (read, decode,
    hand to the hub), on a private Redis Cluster; the publisher is a raw socket fed from a thread."""
    import asyncio
    import socket

    import msgspec

    from chatserver.bus.cluster import ClusterBus
    from chatserver.bus.events import Posted
    from chatserver.bus.redis import ROOM_PREFIX, _Envelope
    from storage.records import Message, User
    from scripts.redis_cluster import RedisCluster

    class Counter:
        count = 0

        def on_room_event(self, room_id, event):
            self.count += 1

        def on_control_event(self, event):
            pass

        def on_bus_restored(self):
            pass

    async def run(cluster: RedisCluster) -> float:
        handler = Counter()
        bus = ClusterBus(cluster.url, node_id="measured")
        await bus.start(handler)
        await bus.subscribe_room("measure")
        channel = ROOM_PREFIX + "measure"
        sender = User(id="u_x", name="x", display="X")
        event = Posted(Message(room_id="measure", seq=1, id="m_1", ts=1, sender=sender, kind="text", text="x" * 64))
        data = msgspec.msgpack.encode(_Envelope("another-node", event))
        command = b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in (b"SPUBLISH", channel.encode(), data))
        command = b"*3\r\n" + command
        sock = socket.create_connection(("127.0.0.1", cluster.master_of(channel)))
        started = time.process_time()
        await asyncio.to_thread(sock.sendall, command * messages)
        while handler.count < messages:
            await asyncio.sleep(0.01)
        cpu = time.process_time() - started
        sock.close()
        await bus.close()
        return cpu * 1e6 / messages

    cluster = RedisCluster().start()
    try:
        return {"bus_receive_us": asyncio.run(run(cluster))}
    finally:
        cluster.stop()


def _drain(sock) -> None:
    try:
        while sock.recv(1 << 20):
            pass
    except OSError:
        pass


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def from_bench(path: str) -> dict[str, float]:
    """Node cost per bus message received, Redis and PostgreSQL cost per message from a bench_cluster.py run."""
    results = json.loads(Path(path).read_text())
    found: dict[str, float] = {}
    single, three = results.get("one node"), results.get("3 nodes + Redis Cluster")
    if single and three:
        # Same load; with three nodes each message also arrives over the bus at the two other nodes.
        extra = []
        for a, b in zip(single["steps"], three["steps"]):
            if a.get("server_cpu_seconds") is not None and b.get("server_cpu_seconds") is not None and b.get("sent"):
                extra.append((b["server_cpu_seconds"] - a["server_cpu_seconds"]) * 1e6 / (2 * b["sent"]))
        if extra:
            found["node_remote_us"] = max(sum(extra) / len(extra), 0.0)
    pg = [step["pg_cpu_us_per_msg"] for step in (three or {}).get("steps", []) if step.get("pg_cpu_us_per_msg")]
    if pg:
        found["pg_us_per_msg"] = sum(pg) / len(pg)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure-redis", action="store_true", help="measure a Redis shard's costs first")
    parser.add_argument("--measure-bus", action="store_true", help="measure the cluster bus's receive cost first")
    parser.add_argument("--redis-batch", type=int, default=1, help="SPUBLISHes per write when measuring (default 1)")
    parser.add_argument("--bench", help="a bench_cluster.py JSON result to take measured costs from")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override an input")
    args = parser.parse_args(argv)
    values = {name: value for name, (value, _) in INPUTS.items()}
    sources = {name: source for name, (_, source) in INPUTS.items()}
    measured = {}
    if args.measure_bus:
        measured.update(measure_bus_receive())
    if args.measure_redis:
        measured.update(measure_redis(batch=args.redis_batch))
    if args.bench:
        measured.update(from_bench(args.bench))
    for name, value in measured.items():
        values[name] = round(value, 2)
        sources[name] = f"measured now ({time.strftime('%Y-%m-%d %H:%M')})"
    if "node_remote_us" not in measured:
        values["node_remote_us"] = values["bus_receive_us"] + values["node_sequence_us"]
    for item in args.set:
        name, _, raw = item.partition("=")
        if name not in values:
            raise SystemExit(f"unknown input {name}; inputs: {', '.join(values)}")
        values[name], sources[name] = float(raw), "set on the command line"
    print("| input | value | source |\n|---|---:|---|")
    for name, value in values.items():
        print(f"| {name} | {value:,.6g} | {sources[name]} |")
    print("\n| quantity | value | how |\n|---|---:|---|")
    for quantity, value, how in model(values):
        print(f"| {quantity} | {value} | {how} |")


if __name__ == "__main__":
    main()
