"""What the benchmarks share: the thread count (set before numpy loads, for both libraries), timing
(interleaved rounds, alternating steps, medians), the machine's GEMM rate, peak memory, and running a
measurement in a subprocess of its own.

Imported first by a benchmark script (`python bench/conv.py [threads]`), before numpy and torch. The
thread count comes from BENCH_THREADS when a parent benchmark set it for its subprocess, else from the
first argument when it is a number, else 1.

GNU OpenMP's spin count, GOMP_SPINCOUNT, is set here too (SPINCOUNT, unless the environment sets it):
libgomp reads it once, when it loads, and torch loads it before Avalon can set it (Avalon sets the
same value when it loads oneDNN first). PyTorch and Avalon share one libgomp in a process, so both
then run under the same setting, in this process and in the subprocesses it starts, except those that
run PyTorch alone (subprocess_env's `library`): they get what PyTorch's users get.

A script timing both libraries in one process (all but steps.py) lets each slow the other down (see
steps.py). Read their PyTorch columns as upper bounds.
"""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# OpenBLAS tuning the measurements ran without: unset in benchmark subprocesses only.
_UNSET_IN_SUBPROCESSES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

_ARG = sys.argv[1] if len(sys.argv) > 1 else ""
THREADS = int(os.environ.get("BENCH_THREADS") or (_ARG if _ARG.isdigit() else 1))
for _var in _THREAD_VARS:
    os.environ[_var] = str(THREADS)
USER_SPINCOUNT = os.environ.get("GOMP_SPINCOUNT")  # None: PyTorch alone runs on libgomp's default
SPINCOUNT = os.environ.setdefault("GOMP_SPINCOUNT", "25000")  # avalon.kernels.onednn.library.SPINCOUNT

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # the checkout's avalon

ROUNDS, REPEATS = 7, 5
# BENCH_CLOCK=cpu times steps in the process's CPU seconds instead of wall seconds: at one thread on a
# shared machine, wall time also counts the time other processes ran (ratios then swing widely); CPU
# time does not, though a busy sibling core still slows both libraries alike. Meaningless above one thread.
CLOCK = time.process_time if os.environ.get("BENCH_CLOCK") == "cpu" else time.perf_counter


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
        start = CLOCK()
        fn()
        samples.append(CLOCK() - start)
    return samples


def alternating_seconds(fns, steps, each_round=None):
    """Seconds of each of `steps` calls of every function, one call of each in turn, the order reversed
    every round (so neither always runs on the caches or the turbo state the other left). `each_round`,
    when given, is called (and timed: its samples come last) after every round, outside the order."""
    samples = [[] for _ in fns]
    extra = []
    order = list(range(len(fns)))
    for _ in range(steps):
        for i in order:
            start = CLOCK()
            fns[i]()
            samples[i].append(CLOCK() - start)
        order.reverse()
        if each_round is not None:
            extra += time_calls(each_round, 1)
    return samples + [extra] if each_round is not None else samples


def gemm(n=2048):
    """(a function computing an n×n fp32 matrix product with numpy, its FLOPs): the yardstick for a
    step's floor, to be timed where the step runs. Its first call spins up the BLAS threads."""
    import numpy as np

    a, b = (np.random.default_rng(i).standard_normal((n, n), dtype=np.float32) for i in range(2))
    a @ b
    return (lambda: a @ b), 2 * n**3


def gemm_gflops(n=2048, repeats=5):
    """The fp32 GEMM rate numpy reaches in this process: GFLOP/s of the best of `repeats` products."""
    product, flops = gemm(n)
    return flops / min(time_calls(product, repeats)) / 1e9


def _status_kb(key):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def reset_peak_rss():
    """Start the resident-set high-water mark afresh (Linux: "5" into clear_refs); returns the resident
    set now, in MB, which the mark is then measured from."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return _status_kb("VmRSS") / 1024
    except OSError:  # no reset here: the mark so far is the baseline
        return peak_rss_mb()


def peak_rss_mb():
    """The resident-set high-water mark of this process, in MB (VmHWM, or ru_maxrss without /proc)."""
    try:
        return _status_kb("VmHWM") / 1024
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def subprocess_env(threads, library=None):
    """The environment of a benchmark subprocess: `threads` threads for every library, OpenBLAS's tuning
    variables unset, as in the issue's measurements, and this process's GOMP_SPINCOUNT; for a process
    running PyTorch alone (`library="torch"`), the spin count its users get: the environment's, if it
    set one, else none (libgomp's default)."""
    env = {k: v for k, v in os.environ.items() if k not in _UNSET_IN_SUBPROCESSES}
    env.update({var: str(threads) for var in _THREAD_VARS}, BENCH_THREADS=str(threads), GOMP_SPINCOUNT=SPINCOUNT)
    if library == "torch" and USER_SPINCOUNT is None:
        del env["GOMP_SPINCOUNT"]
    return env


def run_json(script, args, threads, timeout=1800, library=None):
    """Run `python script *args` with `threads` threads (set before numpy loads, which only a fresh
    process allows; `library` as subprocess_env's) and return the JSON its last line of output prints."""
    done = subprocess.run([sys.executable, str(script), *map(str, args)], env=subprocess_env(threads, library),
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(map(str, args))} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
