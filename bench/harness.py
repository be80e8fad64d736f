"""What the benchmarks share: the thread count (set before numpy loads, for both libraries) and
interleaved timing with medians.

Imported first by a benchmark script (`python bench/conv.py [threads]`), before numpy and torch.
"""
import os
import statistics
import sys
import time
from pathlib import Path

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 1
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's avalon

ROUNDS, REPEATS = 7, 5


def median_ms(*fns):
    """Median milliseconds per call of each function, their rounds interleaved (a busy machine slows
    them alike)."""
    for fn in fns:
        fn()  # warm-up: traces and compiles on the avalon side
    rounds = [[] for _ in fns]
    for _ in range(ROUNDS):
        for fn, samples in zip(fns, rounds):
            start = time.perf_counter()
            for _ in range(REPEATS):
                fn()
            samples.append((time.perf_counter() - start) / REPEATS)
    return [1e3 * statistics.median(samples) for samples in rounds]


def time_calls(fn, repeats):
    """Seconds taken by each of `repeats` calls of `fn`."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples
