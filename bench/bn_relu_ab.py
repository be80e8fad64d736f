"""A/B of the batch-norm switches of issue #9 on the ResNet-ish step of bench/steps.py: time interleaved
in one process (each setting's step traced and compiled under it), and peak memory, each setting in a
process of its own.

Settings: `plain` (every switch off), `shipped` (the defaults), then each switch on in turn, then
`all`. The switches are attributes read when a step is compiled (module, attribute, value) in SWITCHES.

Run: `BENCH_CLOCK=cpu python bench/bn_relu_ab.py [threads] [steps] [--memory]`; prints the median ms per
step of each setting and the ratio to `plain`, and with --memory the peak-memory growth of 3 steps.
"""
from harness import CLOCK, THREADS  # noqa: I001 - sets the thread count before numpy loads

import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import steps  # noqa: E402
from avalon.compile import fuse_norm, passes  # noqa: E402

NAME = "ResNet-ish"
SWITCHES = {"plan-trusts-fresh": (passes, "PLAN_TRUSTS_FRESH", True),
            "bn-relu": (fuse_norm, "FUSE_BATCH_NORM_RELU", True),
            "trust-fresh": (passes, "TRUST_FRESH", True)}


SHIPPED = {k: getattr(module, attr) for k, (module, attr, _) in SWITCHES.items()}


def settings():
    """{setting: {switch: value}}: plain, each switch alone, all, and as shipped (the defaults)."""
    off = {k: not v for k, (_, _, v) in SWITCHES.items()}
    result = {"plain": off, "shipped": dict(SHIPPED)}
    for k, (_, _, v) in SWITCHES.items():
        result[k] = {**off, k: v}
    result["all"] = {k: v for k, (_, _, v) in SWITCHES.items()}
    return result


def apply(values):
    for k, value in values.items():
        module, attr, _ = SWITCHES[k]
        setattr(module, attr, value)


def memory(setting):
    """Peak-memory growth (MB) of 3 steps under `setting`, in this process (run in a fresh one)."""
    apply(settings()[setting])
    print(steps.measure_memory("avalon", NAME, steps=3)["peak_mb"])


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "memory-of" in args:
        return memory(args[args.index("memory-of") + 1])
    count = int(args[1]) if len(args) > 1 else 10
    models = steps.load_models("avalon")
    x, y = steps.batch_of(NAME, None, models)
    runs = {}
    for setting, values in settings().items():
        apply(values)
        runs[setting] = steps.avalon_step(models, NAME, x, y)[1]
        runs[setting]()  # traced and compiled now, under this setting
    apply(settings()["all"])
    times = {s: [] for s in runs}
    for _ in range(count):
        for s, step in runs.items():
            start = CLOCK()
            step()
            times[s].append(CLOCK() - start)
    medians = {s: statistics.median(ts) for s, ts in times.items()}
    print(f"{NAME}, {THREADS} thread(s), {count} steps: " + "  ".join(
        f"{s} {m * 1e3:.1f} ms ({m / medians['plain']:.3f}x)" for s, m in medians.items()))
    if "--memory" in sys.argv:
        for s in runs:
            out = subprocess.run([sys.executable, __file__, str(THREADS), "memory-of", s], capture_output=True,
                                 text=True).stdout.split()[-1:] or ["nan"]
            print(f"{s}: peak memory growth {float(out[0]):.0f} MB")


if __name__ == "__main__":
    main()
