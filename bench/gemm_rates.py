"""The fp32 GEMM rates numpy (OpenBLAS) and PyTorch (MKL) reach on the products issue #9's workloads
actually run, one library after the other per round, medians of the rounds; and, for numpy, the same
product with its operands laid out differently (a transposed view, a contiguous copy), to see which
layout OpenBLAS prefers.

Run: `python bench/gemm_rates.py [threads]` (default 1). Prints one Markdown table: GFLOP/s per shape.
A layout is written after the shape: `A·B` both row-major, `A·Bᵀ` B a transposed view of a row-major
array (a Linear's weight), `Aᵀ·B` A a transposed view (a weight gradient), `batch×` a batched product.
"""
from harness import THREADS  # noqa: I001 - sets the thread count before numpy loads

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROUNDS = 21
MIN_SECONDS = 0.01  # each sample repeats its product for at least this long
# At one thread the process's CPU time: on a shared machine wall time counts the time others ran (the
# rates then swing two-fold between runs); CPU time still counts a busy sibling core's slowdown.
CLOCK = time.process_time if THREADS == 1 else time.perf_counter

# (workload, what, m, k, n, layout, batch): the product (m, k)·(k, n), `batch` of them
SHAPES = [
    ("MLP", "fc1 forward", 256, 784, 1024, "A·Bᵀ", 1),
    ("MLP", "fc2 forward", 256, 1024, 1024, "A·Bᵀ", 1),
    ("MLP", "fc2 input gradient", 256, 1024, 1024, "A·B", 1),
    ("MLP", "fc2 weight gradient", 1024, 256, 1024, "Aᵀ·B", 1),
    ("MLP", "fc1 weight gradient", 1024, 256, 784, "Aᵀ·B", 1),
    ("LSTM", "input projection, all steps", 1600, 128, 1024, "A·Bᵀ", 1),
    ("LSTM", "one step's h·W_hhᵀ", 32, 256, 1024, "A·B", 1),
    ("LSTM", "one step's h·W_hhᵀ", 32, 256, 1024, "A·Bᵀ", 1),
    ("LSTM", "one step's backward d·W_hh", 32, 1024, 256, "A·B", 1),
    ("LSTM", "W_hh gradient, all steps", 1024, 1600, 256, "Aᵀ·B", 1),
    ("LSTM", "W_ih gradient, all steps", 1024, 1600, 128, "Aᵀ·B", 1),
    ("LSTM", "x gradient, all steps", 1600, 1024, 128, "A·B", 1),
    ("ResNet-ish", "3×3 conv, 64 ch, a 1-sample chunk of columns", 1024, 576, 64, "A·B", 1),
    ("ResNet-ish", "3×3 conv, 64 ch, whole batch", 65536, 576, 64, "A·B", 1),
    ("ResNet-ish", "3×3 conv weight gradient, 1-sample chunk", 576, 1024, 64, "Aᵀ·B", 1),
    ("ResNet-ish", "3×3 conv input gradient (columns), 1-sample chunk", 1024, 64, 576, "A·Bᵀ", 1),
    ("LeNet", "conv2 32→64, whole batch", 15488, 288, 64, "A·B", 1),
    ("LeNet", "fc1 forward", 128, 1600, 128, "A·Bᵀ", 1),
    ("Transformer", "q, k, v projection", 2048, 256, 768, "A·Bᵀ", 1),
    ("Transformer", "feed-forward up", 2048, 256, 1024, "A·Bᵀ", 1),
    ("Transformer", "feed-forward down", 2048, 1024, 256, "A·Bᵀ", 1),
    ("Transformer", "feed-forward up, weight gradient", 1024, 2048, 256, "Aᵀ·B", 1),
    ("Transformer", "attention scores, 64 heads×batch", 128, 64, 128, "A·Bᵀ", 64),
    ("Transformer", "attention × values, 64 heads×batch", 128, 128, 64, "A·B", 64),
    ("square", "2048³ (the benchmarks' yardstick)", 2048, 2048, 2048, "A·B", 1),
]


def operands(m, k, n, layout, batch):
    """(a, b) with a·b of shape (m, n), laid out as `layout` says (the other operand row-major)."""
    rng = np.random.default_rng(0)
    lead = (batch,) if batch > 1 else ()
    if layout.startswith("Aᵀ"):
        a = np.swapaxes(rng.standard_normal(lead + (k, m), dtype=np.float32), -1, -2)
    else:
        a = rng.standard_normal(lead + (m, k), dtype=np.float32)
    if layout.endswith("Bᵀ"):
        b = np.swapaxes(rng.standard_normal(lead + (n, k), dtype=np.float32), -1, -2)
    else:
        b = rng.standard_normal(lead + (k, n), dtype=np.float32)
    return a, b


def calls_for(fn):
    """How many calls of `fn` fill MIN_SECONDS."""
    fn()
    start = CLOCK()
    fn()
    return max(1, int(MIN_SECONDS / max(CLOCK() - start, 1e-6)))


def rates(m, k, n, layout, batch):
    """GFLOP/s of numpy as laid out, numpy on contiguous copies of both operands, and torch as laid
    out; each the median over ROUNDS rounds, the three interleaved within each round."""
    a, b = operands(m, k, n, layout, batch)
    ac, bc = np.ascontiguousarray(a), np.ascontiguousarray(b)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)  # torch sees the same strides
    out = np.empty(a.shape[:-2] + (m, n), dtype=np.float32)
    tout = torch.from_numpy(np.empty_like(out))
    fns = [lambda: np.matmul(a, b, out=out), lambda: np.matmul(ac, bc, out=out),
           lambda: torch.matmul(ta, tb, out=tout)]
    counts = [calls_for(fn) for fn in fns]
    samples = [[] for _ in fns]
    for _ in range(ROUNDS):
        for fn, count, s in zip(fns, counts, samples):
            start = CLOCK()
            for _ in range(count):
                fn()
            s.append((CLOCK() - start) / count)
    flops = 2 * m * k * n * batch
    return [flops / statistics.median(s) / 1e9 for s in samples]


def main():
    torch.set_num_threads(THREADS)
    clock = "CPU" if THREADS == 1 else "wall"
    print(f"fp32 GEMM rates, {THREADS} thread(s), GFLOP/s of {clock} time, medians of {ROUNDS} interleaved rounds "
          f"(numpy {np.__version__} on OpenBLAS, torch {torch.__version__} on MKL)\n")
    print("| workload | product | m×k×n | layout | numpy | numpy, contiguous operands | torch | torch ÷ numpy |")
    print("|---|---|---|---|---|---|---|---|")
    for workload, what, m, k, n, layout, batch in SHAPES:
        ours, contiguous, theirs = rates(m, k, n, layout, batch)
        shape = f"{batch}×({m}×{k}×{n})" if batch > 1 else f"{m}×{k}×{n}"
        print(f"| {workload} | {what} | {shape} | {layout} | {ours:.0f} | {contiguous:.0f} | {theirs:.0f} "
              f"| {theirs / ours:.2f} |", flush=True)


if __name__ == "__main__":
    main()
