"""scripts/bench_files.py runs end to end (a real server process, uploads, downloads, the plain
FileResponse ceiling) and prints its table. No figure is asserted: they are benchmark output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_small_run_prints_the_table():
    run = subprocess.run(
        [sys.executable, "scripts/bench_files.py", "--only", "filesystem", "--rounds", "1", "--sizes", "1",
         "--at-once", "1", "2", "--rss-uploads", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| filesystem")]
    assert [row.split("|")[2:4] for row in rows] == [[" 1 MiB ", " 1 "], [" 1 MiB ", " 2 "]]
    assert all(float(cell.replace(",", "")) > 0 for row in rows for cell in row.split("|")[4:7])
    assert "peak RSS growth, 1 concurrent 25 MiB uploads, filesystem (SQLite):" in run.stdout
