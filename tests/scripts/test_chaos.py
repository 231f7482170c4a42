"""A short chaos run (one round of every fault) on private PostgreSQL and Redis Cluster: every property holds."""

from __future__ import annotations

import shutil

import pytest

from scripts.chaos import chaos
from tests.conftest import require
from tests.postgres_server import PostgresProcess
from tests.redis_cluster import RedisCluster


@pytest.mark.timeout(240)
async def test_a_short_chaos_run_keeps_every_guarantee():
    require(PostgresProcess.available() or RedisCluster.available(), "CHAT_REQUIRE_PG")
    verdicts, stats, logs = await chaos(seconds=20, clients=5)
    assert all(v.ok for v in verdicts), ([v.line() for v in verdicts], stats, f"histories and logs in {logs}")
    assert all(v.checked > 0 for v in verdicts), stats
    assert set(stats["faults"]) == {"kill_node", "freeze_node", "kill_redis_master", "stop_postgres"}, stats
    assert stats["acked"] > 0, stats
    shutil.rmtree(logs)
