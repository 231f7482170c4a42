"""scripts/bench_hub.py at a tiny size: it runs the real hub and two bare loops over real sockets.

No figure is asserted (a benchmark's output, not a test's): only that both were measured.
"""

from __future__ import annotations

from scripts import bench_hub


def test_bench_hub_measures_the_hub_and_the_bare_loops_at_each_burst():
    rows = bench_hub.main(["--members", "20", "--messages", "20", "--bursts", "1,3", "--repeat", "1"])
    assert {(r["target"], r["burst"]) for r in rows} == {
        (target, burst) for target in ("hub", "bare", "send") for burst in (1, 3)
    }
    assert all(r["deliveries"] > 0 and r["cpu_us_per_delivery"] > 0 for r in rows)
