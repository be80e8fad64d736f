"""bench/pages_ab.py runs: a workload's step with and without huge pages, interleaved, as one line."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_pages_ab_prints_both_settings_for_a_workload():
    done = subprocess.run([sys.executable, str(BENCH / "pages_ab.py"), "MLP", "2"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert re.search(r"MLP, \d+ thread\(s\), 2 steps: huge [\d.]+ ms  4k [\d.]+ ms  4k/huge [\d.]+", done.stdout), \
        done.stdout
