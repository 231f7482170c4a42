"""Upload and download throughput of files (docs/protocol.md §12.10), per blob engine, beside the
ceiling of a plain aiohttp `FileResponse` of the same bytes; and the server's peak RSS growth
during ten concurrent 25 MiB uploads. Figures only; nothing is asserted.

Each engine runs in a real server process: the filesystem engine beside SQLite, the database
engine on a scratch PostgreSQL database (dropped afterwards). The ceiling is a separate process
that serves files of the same sizes with `web.FileResponse` and nothing else (no token, no
access check), measured round by round right after the engine's downloads, so both see the
same load on a busy machine. Downloads are repeated until each round has moved at least
64 MiB, so that a 1 MiB file's figure is not one request's luck; beside the throughput, each
process's CPU time per download (user + system, all threads), which a busy machine disturbs
far less than wall time.

    .venv/bin/python scripts/bench_files.py                       # both engines
    .venv/bin/python scripts/bench_files.py --only filesystem --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
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
from scripts.loadtest import proc_cpu_seconds  # noqa: E402

MIB = 1024 * 1024
SIZES = [1 * MIB, 25 * MIB]
CONCURRENCY = [1, 20]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
ROUND_BYTES = 64 * MIB  # each round's downloads move at least this much


def repeats(size: int, n: int) -> int:
    """How many times a round downloads its `n` files of `size` bytes."""
    return max(1, -(-ROUND_BYTES // (size * n)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_healthy(url: str, proc: subprocess.Popen, path: str = "/healthz") -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
            try:
                async with session.get(url + path) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(35)
    except subprocess.TimeoutExpired:
        proc.kill()


def body(size: int):
    """`size` bytes, different from every other upload (no two share a blob), in 256 KiB pieces."""
    block = os.urandom(256 * 1024)

    async def chunks():
        yield uuid.uuid4().bytes
        left = size - 16
        while left > 0:
            piece = block[: min(len(block), left)]
            left -= len(piece)
            yield piece

    return chunks()


async def timed(coros) -> float:
    started = time.perf_counter()
    await asyncio.gather(*coros)
    return time.perf_counter() - started


class Downloads:
    """Wall seconds, server CPU seconds and bytes of the downloads of one size and concurrency."""

    def __init__(self, pid: int):
        self.pid = pid
        self.seconds = self.cpu = 0.0
        self.count = self.bytes = 0

    async def run(self, session: aiohttp.ClientSession, urls: list[str], headers: dict, size: int) -> None:
        """Fetch the urls at once, `repeats` times over."""
        cpu = proc_cpu_seconds([self.pid])
        for _ in range(repeats(size, len(urls))):
            self.seconds += await timed(fetch(session, url, headers) for url in urls)
            self.count += len(urls)
            self.bytes += size * len(urls)
        self.cpu += proc_cpu_seconds([self.pid]) - cpu

    @property
    def mib_per_second(self) -> float:
        return self.bytes / MIB / self.seconds

    @property
    def cpu_ms(self) -> float:
        """Server CPU milliseconds per download."""
        return self.cpu / self.count * 1000


async def fetch(session: aiohttp.ClientSession, url: str, headers: dict) -> int:
    got = 0
    async with session.get(url, headers=headers) as response:
        assert response.status == 200, response.status
        async for chunk in response.content.iter_chunked(256 * 1024):
            got += len(chunk)
    return got


def vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


async def bench_engine(engine: str, env: dict[str, str], rounds: int, plain: Plain,
                       rss_uploads: int = 10) -> tuple[dict, float]:
    """{(size, concurrency): (upload MiB/s, `Downloads`, the plain server's `Downloads`)} and the
    RSS growth in MiB."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start([sys.executable, "-m", "chatserver"], {
        **env, "CHAT_PORT": str(port), "CHAT_FILE_STORE": engine, "CHAT_FILE_QUOTA": str(100 * 1024 * MIB),
        "CHAT_LOG_LEVEL": "WARNING"})
    try:
        await wait_healthy(url, proc)
        async with ApiClient(url) as api:
            name = f"bench{uuid.uuid4().hex[:8]}"
            await api.register(name, "bench password")
            user = api.as_user(await api.login(name, "bench password"))
            await user.upload(b"warm up")
            pid = proc.pid
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            before = vm(pid, "VmRSS")
            await asyncio.gather(*(user.upload(body(25 * MIB)) for _ in range(rss_uploads)))
            rss = (vm(pid, "VmHWM") - before) / MIB
            figures = {}
            headers = {"Authorization": f"Bearer {user.token}"}
            async with aiohttp.ClientSession() as session:
                for size in SIZES:
                    for n in CONCURRENCY:
                        up = 0.0
                        down, ceiling = Downloads(pid), Downloads(plain.pid)
                        for _ in range(rounds):
                            ids = []

                            async def one():
                                ids.append((await user.upload(body(size)))["id"])

                            up += await timed(one() for _ in range(n))
                            await down.run(session, [f"{url}/api/files/{i}" for i in ids], headers, size)
                            await ceiling.run(session, [plain.url(size)] * n, {}, size)
                        figures[(size, n)] = (size * n * rounds / MIB / up, down, ceiling)
        return figures, rss
    finally:
        stop(proc)


PLAIN_SERVER = """
import sys
from aiohttp import web
paths = dict(arg.split("=", 1) for arg in sys.argv[2:])
async def handle(request):
    return web.FileResponse(paths[request.match_info["size"]])
app = web.Application()
app.router.add_get("/file/{size}", handle)
app.router.add_get("/healthz", lambda r: web.Response(text="ok"))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


class Plain:
    """The ceiling: a process serving a file of each size with a bare `FileResponse`."""

    def __init__(self, directory: str):
        self.directory = Path(directory)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, size: int) -> str:
        return f"http://127.0.0.1:{self.port}/file/{size}"

    async def __aenter__(self) -> Plain:
        paths = []
        for size in SIZES:
            path = self.directory / f"plain-{size}"
            path.write_bytes(os.urandom(size))
            paths.append(f"{size}={path}")
        self.proc = start([sys.executable, "-c", PLAIN_SERVER, str(self.port), *paths], {})
        await wait_healthy(f"http://127.0.0.1:{self.port}", self.proc)
        return self

    async def __aexit__(self, *exc_info) -> None:
        stop(self.proc)


async def scratch_pg() -> str:
    import asyncpg

    name = f"bench_files_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return name


async def drop_pg(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["filesystem", "database"])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each size and concurrency")
    parser.add_argument("--sizes", type=int, nargs="+", default=[s // MIB for s in SIZES], help="file sizes, MiB")
    parser.add_argument("--at-once", type=int, nargs="+", default=list(CONCURRENCY), help="concurrent transfers")
    parser.add_argument("--rss-uploads", type=int, default=10, help="concurrent 25 MiB uploads for the RSS figure")
    args = parser.parse_args()
    SIZES[:] = [size * MIB for size in args.sizes]
    CONCURRENCY[:] = args.at_once
    results = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        async with Plain(tmp) as plain:
            if args.only in (None, "filesystem"):
                results["filesystem (SQLite)"] = await bench_engine(
                    "filesystem", {"CHAT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/chat.db"}, args.rounds, plain,
                    args.rss_uploads)
            if args.only in (None, "database"):
                name = await scratch_pg()
                try:
                    results["database (PostgreSQL)"] = await bench_engine(
                        "database", {"CHAT_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"},
                        args.rounds, plain, args.rss_uploads)
                finally:
                    await drop_pg(name)
    print("| engine | file | at once | upload MiB/s | download MiB/s | plain FileResponse MiB/s | download ÷ plain "
          "| server CPU ms per download | plain CPU ms per download |")
    print("|---|---|---|---|---|---|---|---|---|")
    for engine, (figures, _) in results.items():
        for (size, n), (up, down, plain) in figures.items():
            print(f"| {engine} | {size // MIB} MiB | {n} | {up:,.0f} | {down.mib_per_second:,.0f} "
                  f"| {plain.mib_per_second:,.0f} | {down.mib_per_second / plain.mib_per_second:.2f} "
                  f"| {down.cpu_ms:.2f} | {plain.cpu_ms:.2f} |")
    print("load average (1, 5, 15 min): before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}".format(
        *load_before, *os.getloadavg()))
    for engine, (_, rss) in results.items():
        print(f"peak RSS growth, {args.rss_uploads} concurrent 25 MiB uploads, {engine}: {rss:.1f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
