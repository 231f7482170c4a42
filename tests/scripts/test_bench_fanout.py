"""scripts/bench_fanout.py's `--rounds`: which round's figures a step reports."""

from __future__ import annotations

from scripts import bench_fanout


def _run(cpus: list[float], lost: list[int], p99: list[float]) -> dict:
    steps = [{"offered_msgs_per_s": 20.0 * (i + 1), "server_cpu_us_per_delivery": cpu, "lost": n,
              "duplicates": 0, "order_violations": 0, "latency_ms": {"p99": p}}
             for i, (cpu, n, p) in enumerate(zip(cpus, lost, p99))]
    return {"members": 1000, "steps": steps, "server": {"rss_per_connection": None}}


def test_each_step_is_the_round_with_the_median_cpu_and_losses_add_up():
    runs = [_run([7.0, 5.0], [0, 1], [10.0, 11.0]),
            _run([9.0, 4.0], [0, 0], [20.0, 21.0]),
            _run([8.0, 6.0], [2, 0], [30.0, 31.0])]
    merged = bench_fanout.merge_rounds(runs)
    first, second = merged["steps"]
    assert (first["server_cpu_us_per_delivery"], first["latency_ms"]["p99"]) == (8.0, 30.0)
    assert (second["server_cpu_us_per_delivery"], second["latency_ms"]["p99"]) == (5.0, 11.0)
    assert (first["lost"], second["lost"]) == (2, 1)
    assert first["rounds_cpu_us_per_delivery"] == [7.0, 9.0, 8.0]
    assert merged["rounds"] == 3


def test_an_even_count_reports_the_upper_middle_round_and_one_round_is_itself():
    runs = [_run([5.0], [0], [1.0]), _run([6.0], [0], [2.0])]
    assert bench_fanout.merge_rounds(runs)["steps"][0]["server_cpu_us_per_delivery"] == 6.0
    assert bench_fanout.merge_rounds(runs[:1]) is runs[0]


def test_idle_rounds_report_the_median_memory_per_connection():
    runs = [{"steps": [], "server": {"rss_per_connection": kib * 1024}} for kib in (6, 5, 9)]
    merged = bench_fanout.merge_rounds(runs)
    assert merged["server"]["rss_per_connection"] == 6 * 1024
    assert merged["rounds_rss_per_connection"] == [6 * 1024, 5 * 1024, 9 * 1024]
