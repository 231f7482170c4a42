"""A private PostgreSQL server for tests and scripts that stop and start the database under running chat nodes.

It runs as the `postgres` system user (PostgreSQL refuses root) in a temporary data directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile

from scripts.ports import free_port


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PostgresProcess:
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="chat-pg-")
        self.running = False
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @staticmethod
    def available() -> str | None:
        if not _bin("initdb") or not _bin("pg_ctl"):
            return "PostgreSQL server binaries (initdb, postgres) are not installed"
        if os.geteuid() == 0 and not shutil.which("runuser"):
            return "running as root without runuser: cannot start a private PostgreSQL"
        return None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> "PostgresProcess":
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            [*self._as_postgres, _bin("initdb"), "-D", self.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return self

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self._as_postgres, _bin("pg_ctl"), "-D", self.dir, "-w", "-t", "30", *args],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def start(self) -> "PostgresProcess":
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "-l", os.path.join(self.dir, "server.log"), "start")
        self.running = True
        return self

    def stop(self) -> None:
        """Fast shutdown: connections are cut, as when a database server goes away."""
        if self.running:
            self._pg_ctl("-m", "fast", "stop")
            self.running = False

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
