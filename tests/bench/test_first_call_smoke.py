"""bench/first_call.py runs (a one- and a two-layer GPT, the smallest of its models, in fresh
processes) and prints its tables with every phase measured; it asserts nothing about time."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_it_prints_the_phases_and_the_scaling_with_depth():
    env = {k: v for k, v in os.environ.items() if k != "BENCH_THREADS"}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(BENCH / "first_call.py"), "--only", "", "--depths", "1,2",
                           "--cached", "1"], capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    rows = [line.strip("|").split("|") for line in done.stdout.splitlines() if line.startswith("| GPT-")]
    assert [row[0].strip() for row in rows] == ["GPT-1", "GPT-2"], done.stdout
    for row in rows:
        nodes, phases = int(row[1]), [float(cell) for cell in row[3:10]]
        assert nodes > 100 and all(p >= 0 for p in phases) and phases[0] > 0 and phases[1] > 0, row
    depths = [line for line in done.stdout.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert len(depths) == 2, done.stdout
