"""bench/onednn_ab.py runs: a workload's step with oneDNN off, on, and PyTorch's, interleaved, as one line."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.bench

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_onednn_ab_prints_off_on_and_torch_for_a_workload():
    env = {k: v for k, v in os.environ.items() if k != "BENCH_THREADS"}
    done = subprocess.run([sys.executable, str(BENCH / "onednn_ab.py"), "1", "2", "MLP"], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    assert re.search(r"MLP, 1 thread\(s\), 2 steps: oneDNN off [\d.]+ ms, on [\d.]+ ms \(on/off [\d.]+\); "
                     r"PyTorch [\d.]+ ms", done.stdout), done.stdout
