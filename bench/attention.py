"""Scaled dot-product attention, forward + backward: `avalon.grad` (cached replay of the fused
`attention` primitive and its rule) against PyTorch eager's F.scaled_dot_product_attention with
autograd, on transformer-sized float32 inputs (batch 8, 8 heads, 128 tokens, head size 64; and a
longer sequence), without and with a causal mask. Both libraries run on the same number of threads
(1 unless given): with more, torch's waiting OpenMP threads and OpenBLAS's compete for the cores
and the figures measure that contention rather than attention.

Run: `python bench/attention.py [threads]` (one process; prints medians and the ratio avalon / torch).
"""
import statistics

from harness import THREADS, time_calls  # noqa: I001 - sets the thread count before numpy loads

import numpy as np  # noqa: E402

import avalon  # noqa: E402
import avalon.nn.functional as F  # noqa: E402

SHAPES = [(8, 8, 128, 64), (2, 4, 512, 64)]  # (batch, heads, tokens, head size)
REPEATS, ROUNDS = 10, 5


def runners(torch, shape, causal):
    rng = np.random.default_rng(0)
    q, k, v, w = (rng.standard_normal(shape).astype(np.float32) for _ in range(4))

    def loss(q, k, v):
        return (F.scaled_dot_product_attention(q, k, v, is_causal=causal) * w).sum()

    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tw = torch.tensor(w)

    def torch_step():
        out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
        return torch.autograd.grad((out * tw).sum(), (tq, tk, tv))

    # same numbers, same gradients: the comparison is of equal work
    _, grads = avalon.grad(loss, q, k, v)
    for ours, theirs in zip(grads, torch_step()):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-3, atol=1e-4)
    return {"avalon": lambda: avalon.grad(loss, q, k, v), "torch": torch_step}


def measure(fns):
    for fn in fns.values():  # warm up: tracing and compiling happen here, not in the timings
        time_calls(fn, 3)
    samples = {name: [] for name in fns}
    for _ in range(ROUNDS):  # interleaved rounds, so drifts in machine load hit both alike
        for name, fn in fns.items():
            samples[name] += time_calls(fn, REPEATS)
    return {name: statistics.median(s) for name, s in samples.items()}


def main():
    import torch

    torch.set_num_threads(THREADS)  # harness set the BLAS threads to the same number
    print(f"scaled_dot_product_attention forward+backward, float32, {THREADS} thread(s), "
          f"median of {REPEATS * ROUNDS} runs")
    print(f"{'shape (N, H, L, E)':>20} {'mask':>7} {'avalon ms':>10} {'torch ms':>9} {'avalon/torch':>13}")
    for shape in SHAPES:
        for causal in (False, True):
            medians = measure(runners(torch, shape, causal))
            print(f"{str(shape):>20} {'causal' if causal else 'none':>7} {medians['avalon'] * 1e3:>10.2f} "
                  f"{medians['torch'] * 1e3:>9.2f} {medians['avalon'] / medians['torch']:>13.2f}")


if __name__ == "__main__":
    main()
