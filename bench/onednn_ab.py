"""A/B of oneDNN on and off on training steps of bench/steps.py, with PyTorch's step beside them, in one
process, interleaved: each round runs one Avalon step with oneDNN off (`set_enabled(False)`: the numpy
kernels), one with it on, and one PyTorch step. The switch is read at every call, so one compiled step
serves both settings.

Run: `python bench/onednn_ab.py [threads] [steps] [workloads, comma-separated]` (BENCH_CLOCK=cpu for
process CPU seconds at one thread on a busy machine); prints median ms per step and the ratios.
"""
from harness import CLOCK, THREADS  # noqa: I001 - sets the thread count before numpy loads

import statistics  # noqa: E402
import sys  # noqa: E402

import steps  # noqa: E402
from avalon.kernels import onednn  # noqa: E402


def main():
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    names = (sys.argv[3] if len(sys.argv) > 3 else "MLP,Transformer").split(",")
    ours, theirs = steps.load_models("avalon"), steps.load_models("torch")
    for name in names:
        x, y = steps.batch_of(name, None, theirs)
        torch_model, torch_fn = steps.torch_step(theirs, name, x, y)
        avalon_fn = steps.avalon_step(ours, name, x, y, torch_model.state_dict())[1]

        def switched(flag):
            def step():
                previous = onednn.set_enabled(flag)
                try:
                    return avalon_fn()
                finally:
                    onednn.set_enabled(previous)
            return step

        settings = {"off": switched(False), "on": switched(True), "torch": torch_fn}
        for fn in settings.values():
            fn(), fn()
        times = {s: [] for s in settings}
        for _ in range(count):
            for s, fn in settings.items():
                start = CLOCK()
                fn()
                times[s].append(CLOCK() - start)
        ms = {s: 1e3 * statistics.median(t) for s, t in times.items()}
        print(f"{name}, {THREADS} thread(s), {count} steps: oneDNN off {ms['off']:.1f} ms, on {ms['on']:.1f} ms "
              f"(on/off {ms['on'] / ms['off']:.3f}); PyTorch {ms['torch']:.1f} ms; Avalon/PyTorch off "
              f"{ms['off'] / ms['torch']:.3f}, on {ms['on'] / ms['torch']:.3f}", flush=True)


if __name__ == "__main__":
    main()
