"""Normalisation layers forward + backward (input and affine-parameter gradients): `avalon.grad` (cached
replay of the fused `normalize` primitive and its rule) against PyTorch eager on the CPU, for
LayerNorm, GroupNorm and BatchNorm2d (training mode) on shapes typical of small transformers and CNNs,
in one process.

Run: `python bench/norm.py [threads]` (prints median milliseconds per step and the ratio avalon / torch;
both libraries get the same number of BLAS/intra-op threads, 1 by default). Rounds of the two alternate,
so a busy machine slows both alike.
"""
from harness import THREADS, median_ms  # noqa: I001 - sets the thread count before numpy loads

import numpy as np  # noqa: E402

import avalon  # noqa: E402
import avalon.nn as nn  # noqa: E402

# (name, layer class, constructor arguments, input shape)
CASES = [
    ("LayerNorm", "LayerNorm", (256,), (32, 128, 256)),
    ("LayerNorm", "LayerNorm", (768,), (8, 128, 768)),
    ("GroupNorm", "GroupNorm", (8, 64), (32, 64, 16, 16)),
    ("GroupNorm", "GroupNorm", (32, 256), (16, 256, 8, 8)),
    ("BatchNorm2d", "BatchNorm2d", (64,), (32, 64, 16, 16)),
    ("BatchNorm2d", "BatchNorm2d", (256,), (32, 256, 8, 8)),
]


def main():
    import torch

    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    print(f"normalisation forward+backward (training mode), median ms per step ({THREADS} threads)")
    print(f"{'layer':<13}{'input':<20}{'avalon':>9}{'torch':>9}{'ratio':>8}")
    ratios = []
    for name, cls, args, shape in CASES:
        torch_layer = getattr(torch.nn, cls)(*args)
        with torch.no_grad():  # affine parameters away from 1 and 0, so their gradients matter
            for p in torch_layer.parameters():
                p.copy_(torch.randn(p.shape))
        layer = getattr(nn, cls)(*args)
        layer.load_state_dict(torch_layer.state_dict())
        x = rng.standard_normal(shape).astype(np.float32)
        seed = rng.standard_normal(shape).astype(np.float32)

        def loss(layer, x):
            return (layer(x) * seed).sum()

        def ours():  # one function object, so every call after the first replays the compiled tape
            return avalon.grad(loss, layer, x)

        tx, tseed = torch.tensor(x, requires_grad=True), torch.tensor(seed)

        def theirs():
            tx.grad = None
            torch_layer.zero_grad()
            (torch_layer(tx) * tseed).sum().backward()

        # same numbers, same gradients: the comparison is of equal work
        _, (grads, gx) = ours()
        theirs()
        np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-3, atol=1e-3)
        for pname, p in torch_layer.named_parameters():
            np.testing.assert_allclose(grads[pname], p.grad.numpy(), rtol=1e-3, atol=1e-2 * np.sqrt(x.size))
        a, t = median_ms(ours, theirs)
        ratios.append(a / t)
        print(f"{name:<13}{str(shape):<20}{a:>9.2f}{t:>9.2f}{a / t:>8.2f}")
    print(f"geometric mean ratio avalon / torch: {np.exp(np.mean(np.log(ratios))):.2f}")


if __name__ == "__main__":
    main()
