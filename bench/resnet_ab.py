"""A/B of one switch on a training step of bench/steps.py (ResNet-ish by default), in one process,
interleaved.

Run: `python bench/resnet_ab.py [threads] [steps] [workload]`; prints the median ms per step with each setting of
the switches in SETTINGS (module, attribute, value) and the ratios to the first.
"""
from harness import THREADS  # noqa: I001 - sets the thread count before numpy loads

import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import steps  # noqa: E402
from avalon.ops import conv_split, threads_split  # noqa: E402

# conv_split: convolutions' batch on both cores; threads_split: large elementwise passes and batch sums
SETTINGS = {"split": [(conv_split, "SPLIT", True), (threads_split, "SPLIT", True)],
            "no-rows": [(conv_split, "SPLIT", True), (threads_split, "SPLIT", False)],
            "plain": [(conv_split, "SPLIT", False), (threads_split, "SPLIT", False)]}


def main():
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    name = sys.argv[3] if len(sys.argv) > 3 else "ResNet-ish"
    models = steps.load_models("avalon")
    x, y = steps.batch_of(name, None, models)
    _, step = steps.avalon_step(models, name, x, y)
    step()
    times = {setting: [] for setting in SETTINGS}
    for _ in range(count):
        for setting, switches in SETTINGS.items():
            for module, attr, value in switches:
                setattr(module, attr, value)
            start = time.perf_counter()
            step()
            times[setting].append(time.perf_counter() - start)
    base = statistics.median(next(iter(times.values())))
    for setting, ts in times.items():
        print(f"{name}, {THREADS} threads {setting:>8}: {statistics.median(ts) * 1e3:8.1f} ms  ({statistics.median(ts) / base:.2f}x)")


if __name__ == "__main__":
    main()
