"""The capacity model answers from its inputs, and answers sensibly when they change."""

from __future__ import annotations

import json

from scripts.capacity import INPUTS, from_bench, main, model


def answer(**changes) -> dict[str, str]:
    values = {name: value for name, (value, _) in INPUTS.items()} | changes
    return {quantity: value for quantity, value, _ in model(values)}


def test_more_traffic_needs_more_nodes_and_shards():
    base, busy = answer(), answer(msgs_per_s=300_000)
    assert int(busy["chat nodes (one core each)"]) > int(base["chat nodes (one core each)"])
    assert int(busy["Redis shards (masters; +1 replica each)"]) >= int(base["Redis shards (masters; +1 replica each)"])
    assert base["deliveries/s"] == "1,200,000"  # 30,000 msgs/s x 40 online members


def test_a_primary_too_small_says_so():
    assert answer(pg_cores=2)["PostgreSQL layout"] == "past one primary"
    assert answer()["PostgreSQL layout"] == "one primary"


def test_bench_results_become_inputs(tmp_path):
    step = {"sent": 1000, "server_cpu_seconds": 1.0}
    bench = {"one node": {"steps": [step]},
             "3 nodes + Redis Cluster": {"steps": [{**step, "server_cpu_seconds": 1.05, "pg_cpu_us_per_msg": 100.0}]}}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(bench))
    found = from_bench(str(path))
    assert found.keys() == {"node_remote_us", "pg_us_per_msg"}
    assert round(found["node_remote_us"], 6) == 25.0 and round(found["pg_us_per_msg"], 6) == 100.0


def test_the_script_prints_inputs_and_table(capsys):
    main(["--set", "fanout=20"])
    out = capsys.readouterr().out
    assert "| fanout | 20 | set on the command line |" in out
    assert "| chat nodes (one core each) |" in out
