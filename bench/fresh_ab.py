"""A/B of `passes.TRUST_FRESH` on training steps of bench/steps.py, in one process, interleaved: with it
on, the results that convolutions and attention read (a ReLU's, a batch norm's) are planned into
reused buffers; off, they are fresh memory at every step, whose first touch costs page faults.

Run: `python bench/fresh_ab.py [threads] [steps] [workloads, comma-separated]`; prints the median ms per
step of each setting and the ratio on/off.
"""
from harness import THREADS  # noqa: I001 - sets the thread count before numpy loads

import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import steps  # noqa: E402
import avalon  # noqa: E402
import avalon.nn.functional as F  # noqa: E402
from avalon.compile import passes  # noqa: E402


def _step(models, name, x, y):
    """A training step with a loss function of its own, so that it is traced and compiled (under the
    current `TRUST_FRESH`) apart from the other setting's."""
    model = models.WORKLOADS[name][0]()
    opt = avalon.optim.SGD(model.parameters(), lr=steps.LR, momentum=steps.MOMENTUM)

    def loss_fn(model, x, y):
        return F.cross_entropy(model(x), y)

    def step():
        loss, grads = avalon.grad(loss_fn, model, x, y, argnums=0)
        opt.step(grads[0])
        return float(loss)

    step()  # traces and compiles now
    return step


def main():
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    names = (sys.argv[3] if len(sys.argv) > 3 else "ResNet-ish").split(",")
    models = steps.load_models("avalon")
    for name in names:
        x, y = steps.batch_of(name, None, models)
        settings = {}
        for on in (False, True):
            passes.TRUST_FRESH = on
            settings["on" if on else "off"] = _step(models, name, x, y)
        times = {s: [] for s in settings}
        for _ in range(count):
            for s, step in settings.items():
                start = time.perf_counter()
                step()
                times[s].append(time.perf_counter() - start)
        off, on = statistics.median(times["off"]), statistics.median(times["on"])
        print(f"{name}, {THREADS} threads: off {off * 1e3:8.1f} ms  on {on * 1e3:8.1f} ms  ({on / off:.2f}x)")


if __name__ == "__main__":
    main()
