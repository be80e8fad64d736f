"""Per-op overhead of a cached replay: `avalon.grad` (second call onward) against PyTorch eager's
forward + backward, on a 200-op elementwise chain of tiny arrays, where the cost is all overhead.

Run: `python bench/overhead.py` (one process; prints a table and the ratio; target ≤ 0.5).
"""
import statistics

from harness import time_calls  # noqa: I001 - sets the thread count before numpy loads

import numpy as np  # noqa: E402

import avalon  # noqa: E402

N_OPS = 200
SHAPE = (4,)
REPEATS, ROUNDS = 200, 5

# One step of the cycle per op: a realistic mix of binary ops with a parameter and unary functions,
# ordered so values stay bounded (exp only follows sin).
CYCLE = ["add", "tanh", "mul", "sin", "exp", "sub", "cos"]


def chain(h, w, tanh, sin, exp, cos):
    """The benchmark program, written once for both libraries (they pass their own functions)."""
    for i in range(N_OPS):
        op = CYCLE[i % len(CYCLE)]
        if op == "add":
            h = h + w
        elif op == "mul":
            h = h * w
        elif op == "sub":
            h = h - w
        else:
            h = {"tanh": tanh, "sin": sin, "exp": exp, "cos": cos}[op](h)
    return h.sum()


def avalon_loss(x, w):
    return chain(x, w, np.tanh, np.sin, np.exp, np.cos)


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SHAPE).astype(np.float32)
    w = (0.5 * rng.standard_normal(SHAPE)).astype(np.float32)
    runners = {"avalon.grad (cached replay)": lambda: avalon.grad(avalon_loss, x, w)}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(1)
        tx = torch.tensor(x, requires_grad=True)
        tw = torch.tensor(w, requires_grad=True)

        def torch_step():
            loss = chain(tx, tw, torch.tanh, torch.sin, torch.exp, torch.cos)
            return torch.autograd.grad(loss, (tx, tw))

        runners["torch eager forward+backward"] = torch_step
        # Same numbers, same gradients: the comparison is of equal work.
        value, (gx, gw) = avalon.grad(avalon_loss, x, w)
        tgx, tgw = torch_step()
        assert np.allclose(gx, tgx.numpy(), rtol=1e-4, atol=1e-5), "gradients disagree with torch"
    for fn in runners.values():  # warm up: tracing and compiling happen here, not in the timings
        time_calls(fn, 20)
    samples = {name: [] for name in runners}
    for _ in range(ROUNDS):  # interleaved rounds, so drifts in machine load hit both alike
        for name, fn in runners.items():
            samples[name] += time_calls(fn, REPEATS)
    print(f"{N_OPS}-op elementwise chain on {SHAPE} float32 arrays, {ROUNDS}x{REPEATS} calls each, medians")
    print(f"{'':32} {'per call':>12} {'per op':>10}")
    per_op = {}
    for name, times in samples.items():
        median = statistics.median(times)
        per_op[name] = median / N_OPS
        print(f"{name:32} {median * 1e6:10.1f} µs {per_op[name] * 1e6:8.2f} µs")
    if torch is not None:
        ours, theirs = per_op.values()
        ratio = ours / theirs
        verdict = "meets" if ratio <= 0.5 else "MISSES"
        print(f"ratio avalon / torch per op: {ratio:.3f}  ({verdict} the target of ≤ 0.5)")
    else:
        print("torch is not installed: no ratio")


if __name__ == "__main__":
    main()
