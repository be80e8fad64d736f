"""A/B/C of planned buffers around convolutions on training steps of bench/steps.py, in one process,
interleaved. `before`: the planner assumes a convolution's or attention's result may share its operands'
memory (`passes.TRUST_FRESH` off) and convolutions allocate their results, so the results they read (a
ReLU's, a batch norm's) and their own are fresh memory at every step, whose first touch costs page
faults. `fresh`: they are trusted to allocate (the ReLUs' results planned). `out`: convolutions,
attention weights (and their gradient) and scatter_add (getitem's adjoint) also write into planned
buffers (`out=`; the primitives' `out` flag).

Run: `python bench/fresh_ab.py [threads] [steps] [workloads, comma-separated]`; prints the median ms per
step of each setting and the ratios to `before`.
"""
from harness import THREADS  # noqa: I001 - sets the thread count before numpy loads

import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import steps  # noqa: E402
from avalon.compile import passes  # noqa: E402
from avalon.ops import attention, conv, index  # noqa: E402


def main():
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    names = (sys.argv[3] if len(sys.argv) > 3 else "ResNet-ish").split(",")
    models = steps.load_models("avalon")
    for name in names:
        x, y = steps.batch_of(name, None, models)
        settings = {}
        for setting, (trust, out) in {"before": (False, False), "fresh": (True, False), "out": (True, True)}.items():
            passes.TRUST_FRESH = trust
            for prim in (conv.conv, conv.conv_transpose, attention.attention_weights, attention.attention_scores_grad,
                         index.scatter_add):
                prim.out, prim.fresh = out, not out
            # a loss function of its own, traced and compiled now, under this setting
            settings[setting] = steps.avalon_step(models, name, x, y)[1]
            settings[setting]()
        times = {s: [] for s in settings}
        for _ in range(count):
            for s, step in settings.items():
                start = time.perf_counter()
                step()
                times[s].append(time.perf_counter() - start)
        medians = {s: statistics.median(ts) for s, ts in times.items()}
        print(f"{name}, {THREADS} threads: " + "  ".join(
            f"{s} {m * 1e3:7.1f} ms ({m / medians['before']:.2f}x)" for s, m in medians.items()))


if __name__ == "__main__":
    main()
