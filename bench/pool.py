"""Pooling forward + backward (input gradient): `avalon.grad` (cached replay of the pooling primitives
and their rules) against PyTorch eager on the CPU, for the max and average pools of small CNNs
(LeNet/VGG's 2x2, ResNet's overlapping 3x3 stride 2), in one process.

Run: `python bench/pool.py [threads]` (prints median milliseconds per step and the ratio avalon / torch;
both libraries get the same number of BLAS/intra-op threads, 1 by default). Rounds of the two alternate,
so a busy machine slows both alike.
"""
from harness import THREADS, median_ms  # noqa: I001 - sets the thread count before numpy loads

import numpy as np  # noqa: E402

import avalon  # noqa: E402
import avalon.nn.functional as F  # noqa: E402

# (name, function name, arguments, input shape)
CASES = [
    ("max 2x2", "max_pool2d", (2,), (32, 64, 32, 32)),
    ("max 3x3 s2 p1", "max_pool2d", (3, 2, 1), (32, 64, 32, 32)),
    ("max 2x2 relu", "max_pool2d", (2,), (32, 64, 32, 32)),  # after a ReLU: many tied windows of zeros
    ("avg 2x2", "avg_pool2d", (2,), (32, 64, 32, 32)),
    ("avg 3x3 s2 p1", "avg_pool2d", (3, 2, 1), (32, 64, 32, 32)),
]


def main():
    import torch

    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    print(f"pooling forward+backward, median ms per step ({THREADS} threads)")
    print(f"{'case':<15}{'input':<18}{'avalon':>9}{'torch':>9}{'ratio':>8}")
    ratios = []
    for name, fn, args, shape in CASES:
        x = rng.standard_normal(shape).astype(np.float32)
        if "relu" in name:
            x = np.maximum(x, 0)
        seed = rng.standard_normal(getattr(F, fn)(x, *args).shape).astype(np.float32)

        def loss(x):
            return (getattr(F, fn)(x, *args) * seed).sum()

        def ours():  # one function object, so every call after the first replays the compiled tape
            return avalon.grad(loss, x)

        tx, tseed = torch.tensor(x, requires_grad=True), torch.tensor(seed)

        def theirs():
            tx.grad = None
            (getattr(torch.nn.functional, fn)(tx, *args) * tseed).sum().backward()

        # same numbers, same gradients: the comparison is of equal work
        theirs()
        np.testing.assert_allclose(ours()[1][0], tx.grad.numpy(), rtol=1e-5, atol=1e-6)
        a, t = median_ms(ours, theirs)
        ratios.append(a / t)
        print(f"{name:<15}{'x'.join(map(str, shape)):<18}{a:>9.2f}{t:>9.2f}{a / t:>8.2f}")
    print(f"geometric mean ratio avalon / torch: {np.exp(np.mean(np.log(ratios))):.2f}")


if __name__ == "__main__":
    main()
