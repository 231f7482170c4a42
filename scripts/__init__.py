"""Tools and benchmarks: `chat-loadtest` (scripts.loadtest) and `scripts/bench_fanout.py`."""
