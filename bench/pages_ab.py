"""A/B of `avalon.pages.HUGE_PAGES` (issue #9) on bench/steps.py's workloads: step time interleaved in one
process, and peak memory, each setting in a process of its own.

`4k` (the default, HUGE_PAGES False) maps the workspace arenas, the LSTM workspace and the oneDNN
scratchpad without huge pages; `huge` gives them numpy's huge-page advice as before. Each setting has
its own model, step (its arena carved at its first replay, under the setting) and scratchpad buffer,
swapped in around each of its steps.

Run: `BENCH_CLOCK=cpu BENCH_THREADS=1 python bench/pages_ab.py [workloads] [steps] [--memory]`, e.g.
`python bench/pages_ab.py LSTM,ResNet-ish 20 --memory`; prints the median ms per step of each
setting, the ratio 4k / huge, and with --memory the peak-memory growth of 3 steps.
"""
from harness import CLOCK, THREADS  # noqa: I001 - sets the thread count before numpy loads

import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import steps  # noqa: E402
from avalon import pages  # noqa: E402
from avalon.kernels.onednn import primitive  # noqa: E402

SETTINGS = {"huge": True, "4k": False}


def memory(name, setting):
    """Peak-memory growth (MB) of 3 steps under `setting`, in this process (run in a fresh one)."""
    pages.HUGE_PAGES = SETTINGS[setting]
    print(steps.measure_memory("avalon", name, steps=3)["peak_mb"])


def compare(name, count):
    models = steps.load_models("avalon")
    x, y = steps.batch_of(name, None, models)
    runs, scratch = {}, {}

    def run(setting):
        pages.HUGE_PAGES = SETTINGS[setting]
        primitive._scratch.buffer = scratch.get(setting)
        start = CLOCK()
        runs[setting]()
        seconds = CLOCK() - start
        scratch[setting] = primitive._scratch.buffer
        return seconds

    for setting in SETTINGS:
        runs[setting] = steps.avalon_step(models, name, x, y)[1]
        run(setting), run(setting)  # traced, then its arena carved, under this setting
    times = {s: [] for s in SETTINGS}
    for k in range(count):
        for s in list(SETTINGS)[::1 if k % 2 else -1]:  # each first in half the rounds
            times[s].append(run(s))
    medians = {s: statistics.median(ts) for s, ts in times.items()}
    print(f"{name}, {THREADS} thread(s), {count} steps: " + "  ".join(
        f"{s} {m * 1e3:.1f} ms" for s, m in medians.items()) + f"  4k/huge {medians['4k'] / medians['huge']:.3f}")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "memory-of" in args:
        return memory(args[0], args[args.index("memory-of") + 1])
    names = (args[0] if args else "LSTM").split(",")
    count = int(args[1]) if len(args) > 1 else 10
    for name in names:
        compare(name, count)
        if "--memory" in sys.argv:
            for s in SETTINGS:
                out = subprocess.run([sys.executable, __file__, name, "memory-of", s], capture_output=True,
                                     text=True).stdout.split()[-1:] or ["nan"]
                print(f"{name} {s}: peak memory growth {float(out[0]):.1f} MB")


if __name__ == "__main__":
    main()
