"""Chaos: three chat nodes on a private PostgreSQL and a private Redis Cluster (3 masters + 3 replicas),
clients spread over the nodes sending, resuming and reconnecting while faults come in turn:
`kill -9` of a chat node, `SIGSTOP`/`SIGCONT` of a chat node for longer than two heartbeats, a Redis
master killed (its replica takes over), PostgreSQL stopped for 10 s. Afterwards every client catches
up, storage is read straight from PostgreSQL, and `scripts/history_check.py` (independent, pure)
gives a verdict per property with counts.

    .venv/bin/python scripts/chaos.py                  # 10 minutes
    .venv/bin/python scripts/chaos.py --seconds 0      # one round of every fault (tests/scripts/test_chaos.py)

Everything it kills is its own (private ports, a PostgreSQL in a temporary directory); the shared
Redis and PostgreSQL are not touched. Exit status 1 when a property fails. Histories and server logs
stay in the printed directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from client_proto import frames  # noqa: E402
from client_proto.client import ChatClient, ChatError  # noqa: E402
from client_proto.http import ApiClient  # noqa: E402
from scripts.chat_node import ServerProcess  # noqa: E402
from scripts.history_check import Verdict, check  # noqa: E402
from scripts.ports import free_port  # noqa: E402
from scripts.postgres_server import PostgresProcess  # noqa: E402
from scripts.redis_cluster import RedisCluster  # noqa: E402

HEARTBEAT = 1.0  # seconds: a node frozen for 3 s is silent for more than two heartbeats
FREEZE = 3 * HEARTBEAT
PG_DOWN = 10.0
SEND_PATIENCE = 8.0  # seconds a client retries one send on one connection before moving to another node


class LoggedClient(ChatClient):
    """Logs every message and gap the moment it is dispatched, so the log and `last_seq` (the next
    resume) never disagree, however a connection ends."""

    def __init__(self, actor: "Actor", url: str, token: str, **options):
        super().__init__(url, token, **options)
        self.actor = actor

    def _dispatch(self, frame) -> None:
        if isinstance(frame, frames.Message):
            self.actor.log.append({"e": "message", "room": frame.room, "seq": frame.seq, "id": frame.id})
        elif isinstance(frame, frames.Gap):
            self.actor.log.append({"e": "gap", "room": frame.room, "from": frame.from_, "to": frame.to})
            self.actor.unpaged.append((frame.room, frame.from_, frame.to))
        super()._dispatch(frame)


class Actor:
    """One user: sends to its rooms over one node at a time, moves between nodes, logs everything."""

    def __init__(self, name: str, user_id: str, token: str, urls: list[str], rooms: list[str], rng: random.Random):
        self.name, self.user_id, self.token, self.urls, self.rooms, self.rng = name, user_id, token, urls, rooms, rng
        self.log: list[dict] = []
        self.resume = {room: 0 for room in rooms}  # read every room from its first message
        self.unpaged: list[tuple[str, int, int]] = []
        self.pending: tuple[str, str] | None = None  # a send not yet acked: retried with its cid
        self.sent = 0
        self.connections = 0

    async def _session(self, node: int, until: float, stop: asyncio.Event) -> None:
        """Connect, then send (a new message every few tenths of a second) until `until` or `stop`.
        A send not yet acked is always tried first, even after `stop`: `deliver_pending` relies on that."""
        client = LoggedClient(self, self.urls[node], self.token, resume=self.resume, reconnect=False,
                              request_timeout=4)
        self.connections += 1
        self.log.append({"e": "connect", "n": self.connections, "node": node})
        try:
            await client.connect()
            await self._page_gaps(client)
            while client.connected.is_set():
                if self.pending is None:
                    if stop.is_set() or time.monotonic() >= until:
                        break
                    self.sent += 1
                    self.pending = (self.rng.choice(self.rooms), f"{self.name}-{self.sent}")
                if not await self._send(client, *self.pending):
                    break
                self.pending = None
                await self._page_gaps(client)
                await asyncio.sleep(self.rng.uniform(0.05, 0.4))
        finally:
            await _close(client)
            self.resume.update(client.last_seq)

    async def _send(self, client: ChatClient, room: str, cid: str) -> bool:
        """True once acked; False when this connection is no good (lost, or the node stays silent)."""
        deadline = time.monotonic() + SEND_PATIENCE
        while time.monotonic() < deadline:
            self.log.append({"e": "sent", "room": room, "cid": cid})
            try:
                ack = await client.send(room, f"{cid} text", cid=cid)
            except TimeoutError:
                continue
            except ChatError as exc:
                if not client.connected.is_set():
                    return False
                await asyncio.sleep(0.2 if exc.code == "unavailable" else 0.5)
                continue
            self.log.append({"e": "acked", "room": room, "cid": cid, "seq": ack.seq, "id": ack.id})
            return True
        return False

    async def _page_gaps(self, client: ChatClient) -> None:
        """Read announced gaps with `history` (docs/protocol.md §9): kept for the next connection on failure."""
        while self.unpaged:
            room, low, high = self.unpaged[0]
            after, got = low - 1, []
            while after < high:
                page = await client.history(room, after=after, limit=100)
                got += [m for m in page.messages if low <= m.seq <= high]
                if not page.messages:
                    break
                after = page.messages[-1].seq
            self.log.append({"e": "paged", "room": room, "messages": [{"seq": m.seq, "id": m.id} for m in got]})
            self.unpaged.pop(0)

    async def run(self, stop: asyncio.Event) -> None:
        """Sessions of a few seconds on random nodes, with pauses offline long enough to miss messages."""
        node = self.rng.randrange(len(self.urls))
        while not stop.is_set():
            length = self.rng.uniform(2, 8)
            try:  # the watchdog: no session outlives its length plus a send's patience
                async with asyncio.timeout(length + SEND_PATIENCE + 15):
                    await self._session(node, time.monotonic() + length, stop)
            except TimeoutError:  # counted apart: a live connection that neither answered nor closed
                self.log.append({"e": "stalled", "node": node})
            except Exception as exc:  # a node down or frozen: try another
                self.log.append({"e": "failed", "why": repr(exc)[:200]})
                await asyncio.sleep(0.3)
            if self.rng.random() < 0.3:
                await asyncio.sleep(self.rng.uniform(0.5, 4))  # offline: comes back with a resume (maybe a gap)
            node = self.rng.randrange(len(self.urls))

    async def deliver_pending(self, deadline: float) -> None:
        """Everything healthy again: get the send still unacked acked (and no new one)."""
        stopped = asyncio.Event()
        stopped.set()
        await self._until_done(deadline, lambda node: self._session(node, deadline, stopped),
                               lambda: self.pending is None)

    async def catch_up(self, last_seq: dict[str, int], deadline: float) -> None:
        """Once nobody sends any more: read every room up to the stored end."""
        done = False

        async def once(node: int) -> None:
            nonlocal done
            done = await self._catch_up(node, last_seq, deadline)

        await self._until_done(deadline, once, lambda: done)

    async def _until_done(self, deadline: float, attempt, done) -> None:
        """`attempt(node)` on one node after another until `done()` or the deadline."""
        node = 0
        while not done() and time.monotonic() < deadline:
            try:
                await attempt(node)
            except Exception as exc:
                self.log.append({"e": "failed", "why": repr(exc)[:200]})
                node = (node + 1) % len(self.urls)
                await asyncio.sleep(0.3)

    async def _catch_up(self, node: int, last_seq: dict[str, int], deadline: float) -> bool:
        """True once this connection delivered every room up to `last_seq` (and every gap is paged)."""
        client = LoggedClient(self, self.urls[node], self.token, resume=self.resume, reconnect=False)
        self.connections += 1
        self.log.append({"e": "connect", "n": self.connections, "node": node})
        try:
            await client.connect()
            while time.monotonic() < deadline and client.connected.is_set():
                await self._page_gaps(client)
                if all(client.last_seq.get(room, 0) >= top for room, top in last_seq.items()) and not self.unpaged:
                    return True
                await asyncio.sleep(0.1)
            if client.connected.is_set():
                self.log.append({"e": "behind", "node": node, "last_seq": dict(client.last_seq)})
            return False
        finally:
            await _close(client)
            self.resume.update(client.last_seq)


async def _close(client: ChatClient) -> None:
    """Close, but never wait long on a frozen or vanished node."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await client.close()


class Chaos:
    def __init__(self, seconds: float, clients: int, seed: int, logs: Path, calm: tuple[float, float] = (1.5, 3.0)):
        self.seconds, self.clients, self.rng, self.logs = seconds, clients, random.Random(seed), logs
        self.calm = calm  # seconds between two faults, drawn from this range
        self.pg = PostgresProcess()
        self.redis = RedisCluster()
        self.nodes: list[ServerProcess] = []
        self.faults: Counter[str] = Counter()

    async def setup(self) -> None:
        await asyncio.to_thread(lambda: self.pg.init().start())
        await asyncio.to_thread(self.redis.start)
        env = {"CHAT_DATABASE_URL": self.pg.url, "CHAT_REDIS_URL": self.redis.url, "CHAT_HEARTBEAT": str(HEARTBEAT),
               "CHAT_REPLAY_LIMIT": "20", "CHAT_SEND_RATE": "1000", "CHAT_SEND_BURST": "1000",
               "CHAT_LOG_LEVEL": "WARNING"}
        self.nodes = [ServerProcess(env, port=free_port(), log_path=self.logs / f"node{i}.log") for i in range(3)]
        await self.nodes[0].start()  # the first one migrates the schema
        await asyncio.gather(*(node.start() for node in self.nodes[1:]))

    async def teardown(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGCONT)
            node.kill()
        await asyncio.to_thread(self.redis.stop)
        await asyncio.to_thread(self.pg.remove)

    # ------------------------------------------------------------------ faults

    async def kill_node(self) -> None:
        node = self.rng.choice(self.nodes)
        node.kill()
        await asyncio.sleep(1.0)
        await node.start()

    async def freeze_node(self) -> None:
        node = self.rng.choice(self.nodes)
        node.proc.send_signal(signal.SIGSTOP)
        await asyncio.sleep(FREEZE)
        node.proc.send_signal(signal.SIGCONT)

    async def kill_redis_master(self) -> None:
        master = self.rng.choice(self.redis.masters())
        self.redis.kill(master)
        await asyncio.to_thread(self.redis.wait_ok)  # a replica took over
        await asyncio.to_thread(self.redis.restart, master)  # back, as a replica
        await asyncio.to_thread(self.redis.wait_ok)

    async def stop_postgres(self) -> None:
        await asyncio.to_thread(self.pg.stop)
        await asyncio.sleep(PG_DOWN)
        await asyncio.to_thread(self.pg.start)

    async def inject(self, until: float) -> None:
        """Every fault in turn, round after round until `until`; at least one whole round however short the run."""
        faults = [self.kill_node, self.freeze_node, self.kill_redis_master, self.stop_postgres]
        for round_ in itertools.count():
            for fault in faults:
                await asyncio.sleep(self.rng.uniform(*self.calm))
                if time.monotonic() >= until and round_ > 0:
                    return
                print(f"  {time.strftime('%H:%M:%S')} fault: {fault.__name__}", flush=True)
                await fault()
                self.faults[fault.__name__] += 1

    # ------------------------------------------------------------------ the run

    async def run(self) -> tuple[list[Verdict], dict]:
        await self.setup()
        urls = [node.ws_url for node in self.nodes]
        async with ApiClient(self.nodes[0].url) as api:
            accounts = []
            for i in range(self.clients):
                name = f"chaos{i}_{self.rng.randrange(10**6)}"
                user = await api.register(name, "chaos password")
                accounts.append((name, user["id"], await api.login(name, "chaos password")))
            owner = api.as_user(accounts[0][2])
            rooms = []
            for n in range(2):
                room = await owner.create_room(f"chaos {n}")
                for _, user_id, _ in accounts[1:]:
                    await owner.add_member(room["id"], user_id)
                rooms.append(room["id"])
        actors = [Actor(name, user_id, token, urls, rooms, random.Random(self.rng.random()))
                  for name, user_id, token in accounts]
        stop = asyncio.Event()
        started = time.monotonic()
        tasks = [asyncio.create_task(actor.run(stop)) for actor in actors]
        await self.inject(until=started + self.seconds)
        await asyncio.sleep(self.rng.uniform(*self.calm))  # clients send through every fault and after the last
        stop.set()
        await asyncio.gather(*tasks)
        await asyncio.to_thread(self.redis.heal)
        deadline = time.monotonic() + 60
        await asyncio.gather(*(actor.deliver_pending(deadline) for actor in actors))
        stored_top = {room: max((m["seq"] for m in msgs), default=0) for room, msgs in (await self.stored(rooms)).items()}
        await asyncio.gather(*(actor.catch_up(stored_top, deadline) for actor in actors))
        stored = await self.stored(rooms)
        histories = {actor.name: actor.log for actor in actors}
        (self.logs / "histories.json").write_text(json.dumps({"histories": histories, "stored": stored}))
        verdicts = check(histories, stored, {actor.name: actor.user_id for actor in actors})
        events = Counter(e["e"] for log in histories.values() for e in log)
        stats = {"seconds": round(time.monotonic() - started), "faults": dict(self.faults),
                 "stored": sum(len(m) for m in stored.values()), "acked": events["acked"],
                 "send attempts": events["sent"], "received": events["message"], "connection attempts": events["connect"],
                 "failed connections": events["failed"], "stalled sessions": events["stalled"],
                 "gaps paged": events["paged"]}
        return verdicts, stats

    async def stored(self, rooms: list[str]) -> dict[str, list[dict]]:
        """The rooms' messages straight from PostgreSQL, not through the server."""
        import asyncpg

        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{self.pg.port}/postgres")
        try:
            rows = await conn.fetch("SELECT room_id, seq, id, sender_id, cid FROM messages WHERE room_id = ANY($1) "
                                    "ORDER BY room_id, seq", rooms)
        finally:
            await conn.close()
        stored: dict[str, list[dict]] = {room: [] for room in rooms}
        for row in rows:
            stored[row["room_id"]].append({"seq": row["seq"], "id": row["id"], "from": row["sender_id"],
                                           "cid": row["cid"]})
        return stored


async def chaos(seconds: float, clients: int = 6, seed: int | None = None,
                calm: tuple[float, float] = (1.5, 3.0)) -> tuple[list[Verdict], dict, Path]:
    seed = random.randrange(10**6) if seed is None else seed
    logs = Path(tempfile.mkdtemp(prefix="chat-chaos-"))
    run = Chaos(seconds, clients, seed, logs, calm)
    for need in (PostgresProcess.available(), RedisCluster.available()):
        if need:
            raise SystemExit(f"chaos needs {need}")
    try:
        verdicts, stats = await run.run()
    finally:
        await run.teardown()
    stats["seed"] = seed
    return verdicts, stats, logs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="how long the faults go on (default 600)")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--seed", type=int, help="replay a run's random choices")
    args = parser.parse_args(argv)
    verdicts, stats, logs = asyncio.run(chaos(args.seconds, args.clients, args.seed))
    print("  ".join(f"{k}: {v}" for k, v in stats.items()))
    for verdict in verdicts:
        print(verdict.line())
    print(f"histories and server logs: {logs}")
    sys.exit(0 if all(v.ok for v in verdicts) else 1)


if __name__ == "__main__":
    main()
