"""A private Redis Cluster for tests and scripts: 3 masters + 3 replicas from the installed `redis-server`,
made with `redis-cli --cluster create`, on free private ports. Nodes can be killed (a replica takes over)
and restarted with their cluster config (they rejoin as they were)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from scripts.ports import bindable, ephemeral_low, free_port

NODE_TIMEOUT_MS = 1000  # how long a silent master takes to be declared failed: failover within ~2-3 s


def _free_ports(count: int) -> list[int]:
    """Ports whose cluster bus port (port + 10000) is free too, both below the ephemeral range."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(below=ephemeral_low() - 10000)
        if port not in ports and bindable(port + 10000):
            ports.append(port)
    return ports


def _command(port: int, *args: str, timeout: float = 2.0) -> str:
    """One command with redis-cli; its reply as text ('' when the node does not answer)."""
    try:
        done = subprocess.run(["redis-cli", "-p", str(port), "--no-raw", *args], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout if done.returncode == 0 else ""


class RedisCluster:
    """`RedisCluster().start()`; `.url`; `.kill(port)`, `.restart(port)`, `.masters()`, `.wait_ok()`, `.stop()`."""

    def __init__(self, masters: int = 3, replicas: int = 1):
        self.ports = _free_ports(masters * (1 + replicas))
        self.replicas = replicas
        self.dir = Path(tempfile.mkdtemp(prefix="chat-redis-cluster-"))
        self.procs: dict[int, subprocess.Popen] = {}

    @staticmethod
    def available() -> str | None:
        for tool in ("redis-server", "redis-cli"):
            if not shutil.which(tool):
                return f"{tool} is not installed"
        return None

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports[:3])

    def start(self) -> "RedisCluster":
        try:
            for port in self.ports:
                self._spawn(port)
            for port in self.ports:
                self._wait_answering(port)
            subprocess.run(
                ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                 "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                check=True, capture_output=True, timeout=30,
            )
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, port: int) -> None:
        self.procs[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-require-full-coverage", "no",
             "--cluster-replica-validity-factor", "0", "--save", "", "--appendonly", "no",
             # A replica's full sync writes an RDB file: one per node (a shared dump.rdb made a restarted
             # node load another shard's keys and hold their slot as importing, so failovers stalled).
             "--dbfilename", self._rdb(port).name,
             "--logfile", str(self.dir / f"redis-{port}.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def _rdb(self, port: int) -> Path:
        return self.dir / f"dump-{port}.rdb"

    def _wait_answering(self, port: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while "PONG" not in _command(port, "PING"):
            if not self.running(port):  # e.g. one of its ports was taken meanwhile: say why at once
                log = self.dir / f"redis-{port}.log"
                tail = log.read_text()[-300:] if log.exists() else ""
                raise RuntimeError(f"redis-server on port {port} exited: {tail}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {port} did not start; see {self.dir}")
            time.sleep(0.05)

    def running(self, port: int) -> bool:
        proc = self.procs.get(port)
        return proc is not None and proc.poll() is None

    def nodes(self) -> list[dict]:
        """`CLUSTER NODES` as seen by a running node: port, id, role, master id, failed, slots."""
        for port in self.ports:
            if not self.running(port):
                continue
            text = _command(port, "CLUSTER", "NODES")
            if text:
                break
        else:
            return []
        nodes = []
        for line in text.strip().splitlines():
            fields = line.split()
            nodes.append({
                "id": fields[0], "port": int(fields[1].split(":")[1].split("@")[0]),
                "role": "master" if "master" in fields[2] else "replica",
                "failed": "fail" in fields[2] and "fail?" not in fields[2], "master": fields[3],
                "slots": fields[8:],
            })
        return nodes

    def masters(self) -> list[int]:
        """Ports of the masters that serve slots."""
        return sorted(n["port"] for n in self.nodes() if n["role"] == "master" and n["slots"] and not n["failed"])

    def master_of(self, key: str) -> int:
        """Port of the live master serving `key`'s (or shard channel's) hash slot."""
        return self.masters_of([key])[key]

    def masters_of(self, keys: list[str]) -> dict[str, int]:
        """`master_of` for many keys, asking the cluster once."""
        from redis.crc import key_slot

        spans = []
        for node in self.nodes():
            if node["role"] != "master" or node["failed"]:
                continue
            for span in node["slots"]:
                low, _, high = span.partition("-")
                if span[0] != "[":
                    spans.append((int(low), int(high or low), node["port"]))
        found = {}
        for key in keys:
            slot = key_slot(key.encode())
            port = next((port for low, high, port in spans if low <= slot <= high), None)
            if port is None:
                raise LookupError(f"no live master serves slot {slot}")
            found[key] = port
        return found

    def replica_of(self, master_port: int) -> list[int]:
        nodes = self.nodes()
        master_id = next(n["id"] for n in nodes if n["port"] == master_port)
        return [n["port"] for n in nodes if n["master"] == master_id]

    def kill(self, port: int) -> None:
        proc = self.procs.get(port)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)

    def restart(self, port: int) -> None:
        """Start a killed node again; it rejoins with its config file (its data is gone, as after a crash)."""
        self.kill(port)
        self._rdb(port).unlink(missing_ok=True)
        self._spawn(port)
        self._wait_answering(port)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every running node says cluster_state:ok, every slot has a live master, and no node is marked failed."""
        deadline = time.monotonic() + timeout
        while True:
            states = [_command(port, "CLUSTER", "INFO") for port in self.ports if self.running(port)]
            nodes = self.nodes()
            live = {n["port"] for n in nodes if not n["failed"]} & {p for p in self.ports if self.running(p)}
            masters = [n for n in nodes if n["role"] == "master" and n["slots"]]
            if (states and all("cluster_state:ok" in s for s in states)
                    and masters and all(n["port"] in live for n in masters)
                    and not any(n["failed"] and self.running(n["port"]) for n in nodes)):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Redis Cluster is not ok after {timeout} s; logs in {self.dir}")
            time.sleep(0.1)

    def heal(self) -> None:
        """Restart every node that is down and wait for the cluster to be whole again."""
        for port in self.ports:
            if not self.running(port):
                self.restart(port)
        self.wait_ok()

    def stop(self) -> None:
        for port in list(self.procs):
            self.kill(port)
        shutil.rmtree(self.dir, ignore_errors=True)
