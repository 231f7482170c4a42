"""A short chaos run on private PostgreSQL and Redis Cluster: one round of every fault (a node killed, a
node frozen past two heartbeats, a Redis master killed, PostgreSQL stopped for 10 s) with clients
sending, resuming and reconnecting throughout; the independent checker finds every property holds.
About 40 s. The checker's own self-test (test_history_check.py) shows it can fail."""

from __future__ import annotations

import shutil

import pytest

from scripts.chaos import chaos
from scripts.postgres_server import PostgresProcess
from scripts.redis_cluster import RedisCluster
from tests.conftest import require


@pytest.mark.timeout(240)
async def test_a_short_chaos_run_keeps_every_guarantee():
    require(PostgresProcess.available(), "CHAT_REQUIRE_PG")
    require(RedisCluster.available(), "CHAT_REQUIRE_REDIS")
    verdicts, stats, logs = await chaos(seconds=0, clients=5, calm=(0.5, 1.0))  # one round, whatever `seconds`
    assert all(v.ok for v in verdicts), ([v.line() for v in verdicts], stats, f"histories and logs in {logs}")
    assert all(v.checked > 0 for v in verdicts), stats
    assert set(stats["faults"]) == {"kill_node", "freeze_node", "kill_redis_master", "stop_postgres"}, stats
    assert stats["acked"] > 0, stats
    shutil.rmtree(logs)
