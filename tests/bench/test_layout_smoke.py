"""bench/layout.py runs (a ResNet-18 on 2×3×32×32 and a one-layer GPT of width 32) and prints its table
with every view's construction and .to_html() measured; it asserts nothing about time."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench

BENCH = Path(__file__).resolve().parents[2] / "bench"
VIEWS = ("TapeView", "BackwardStepper", "CheckView", "Workbench", "Profiler")


def test_it_times_every_view_of_each_model():
    pytest.importorskip("ipywidgets")
    env = {k: v for k, v in os.environ.items() if k != "BENCH_THREADS"}
    done = subprocess.run([sys.executable, str(BENCH / "layout.py"), "--resnet", "2x32", "--layers", "1",
                           "--gpt-width", "32"], capture_output=True, text=True, timeout=300, env=env)
    if "GraphvizNotFound" in done.stderr:
        pytest.skip("Graphviz's dot is not installed")
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [line.strip("|").split("|") for line in done.stdout.splitlines() if line.startswith("| ")]
    head, rows = lines[0], {row[0].strip(): row[1:] for row in lines[1:]}
    assert re.fullmatch(r" ResNet-18 \(2×3×32×32\) \(\d+ nodes\) ", head[2]) and "GPT-1 (" in head[3], head
    expected = ["trace (grad_tape)"] + [f"{view}{suffix}" for view in VIEWS for suffix in (", tracing included",
                                                                                          ".to_html()")]
    expected[expected.index("Profiler, tracing included")] = "Profiler (repeat=5), tracing included"
    expected.insert(expected.index("TapeView.to_html()") + 1, "TapeView: open a module (slowest of 6)")
    assert list(rows) == expected, list(rows)
    assert rows["Profiler (repeat=5), tracing included"][0].strip() == "≤ 6 s"
    for name, (target, *cells) in rows.items():
        assert len(cells) == 2, name
        for cell in cells:
            wall, cpu = map(float, re.fullmatch(r" (\d+\.\d\d) s \(cpu (\d+\.\d\d)\) ", cell).groups())
            assert wall >= 0 and cpu >= 0, (name, cell)
    assert "1 BLAS thread" in done.stdout
