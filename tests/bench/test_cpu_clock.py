"""bench/harness.py's BENCH_CLOCK=cpu (bench/steps.py --cpu-clock): steps timed in process CPU seconds,
so time the process spends waiting (as it does while other processes run on a shared machine) is not
counted; and bench/op_shares.py, which reads per-op shares of a step in both libraries, runs."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.bench

BENCH = Path(__file__).resolve().parents[2] / "bench"
SLEEPING = ("import sys, time; sys.path.insert(0, {bench!r}); import harness; "
            "print(min(harness.time_calls(lambda: time.sleep(0.05), 3)))")


def _seconds_of_a_sleep(clock):
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_CLOCK", "BENCH_THREADS")}
    if clock:
        env["BENCH_CLOCK"] = clock
    done = subprocess.run([sys.executable, "-c", SLEEPING.format(bench=str(BENCH))], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return float(done.stdout.split()[-1])


def test_cpu_clock_does_not_count_waiting():
    assert _seconds_of_a_sleep(None) >= 0.05
    assert _seconds_of_a_sleep("cpu") < 0.02


def test_op_shares_prints_both_libraries_tables():
    env = {k: v for k, v in os.environ.items() if k != "BENCH_THREADS"}
    done = subprocess.run([sys.executable, str(BENCH / "op_shares.py"), "1", "--only", "MLP", "--top", "30"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "## MLP, Avalon, 1 thread(s)" in done.stdout and "## MLP, PyTorch, 1 thread(s)" in done.stdout
    assert "| matmul |" in done.stdout and "optimiser step" in done.stdout and "aten::" in done.stdout
