"""scripts/soak.py: its fit and verdict, its refusal of remote targets, and a few seconds of a real run."""

from __future__ import annotations

import os

import pytest

from scripts import soak

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


def test_fit_finds_a_steady_rise_and_ignores_noise():
    slope, r2 = soak.fit([(t, 100 + 2 * t) for t in range(0, 60, 10)])
    assert slope == pytest.approx(2) and r2 == pytest.approx(1)
    slope, r2 = soak.fit([(0, 5), (10, 9), (20, 4), (30, 8), (40, 5)])
    assert r2 < soak.MIN_R2
    assert soak.fit([(0, 1)]) == (0.0, 0.0)


def test_only_local_targets():
    assert soak.local_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    with pytest.raises(SystemExit):
        soak.local_url("http://example.com:8080")


async def test_a_short_run_samples_and_judges(server):
    args = soak.parse_args([server.url, "--minutes", str(4 / 60), "--interval", "1", "--users", "6",
                            "--rooms", "2", "--rate", "30"])
    # The in-process server is this very process: its pid is found from the port it listens on.
    assert soak.pid_listening_on(int(server.url.rsplit(":", 1)[1])) == os.getpid()
    result = await soak.Soak(args, [server.url], [os.getpid()]).run()
    assert len(result["samples"]) == 4
    assert max(row["connections"] for row in result["samples"]) == 6  # (one may be reconnecting)
    assert sum(result["ops"].values()) > 0 and result["deliveries"] > 0
    assert result["disconnects"] == 0 and result["order_violations"] == 0
    assert set(result["trends"]) == set(soak.GROWTH)
