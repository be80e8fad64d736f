"""conv2d forward + backward (input, weight and bias gradients): `avalon.grad` (cached replay) against
PyTorch eager on the CPU, for a few layer shapes typical of small CNNs, in one process.

Run: `python bench/conv.py [threads]` (prints median milliseconds per step and the ratio avalon / torch;
both libraries get the same number of BLAS threads, 1 by default). Rounds alternate, so a busy machine
slows all alike. "avalon" runs Avalon as installed: its float32 convolutions on oneDNN when the `fast`
extra is there (avalon.kernels.onednn.enabled(), printed), else numpy; "numpy" is Avalon with oneDNN
switched off (`avalon.kernels.onednn.set_enabled(False)`: the numpy paths), so the last column is what
oneDNN gains.
"""
from harness import THREADS, median_ms  # noqa: I001 - sets the thread count before numpy loads

import numpy as np  # noqa: E402

import avalon  # noqa: E402
import avalon.nn.functional as F  # noqa: E402
from avalon.kernels import onednn  # noqa: E402

# (name, N, C_in, H=W, C_out, kernel, stride, padding, groups)
CASES = [
    ("LeNet conv1", 64, 1, 28, 6, 5, 1, 0, 1),
    ("LeNet conv2", 128, 32, 13, 64, 3, 1, 0, 1),  # bench/steps.py's LeNet
    ("ResNet-ish", 64, 64, 32, 64, 3, 1, 1, 1),    # bench/steps.py's ResNet-ish blocks
    ("CIFAR stem", 32, 3, 32, 32, 3, 1, 1, 1),
    ("ResNet 3x3", 32, 64, 16, 64, 3, 1, 1, 1),
    ("ResNet down", 32, 64, 16, 128, 3, 2, 1, 1),
    ("1x1 proj", 32, 128, 8, 256, 1, 1, 0, 1),
    ("depthwise", 32, 64, 16, 64, 3, 1, 1, 64),
    ("depthwise s2", 32, 64, 16, 64, 3, 2, 1, 64),
    ("depthwise 56", 8, 32, 56, 32, 3, 1, 1, 32),
]


def main():
    import torch

    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    print(f"conv2d forward+backward, median ms per step ({THREADS} threads; Avalon's oneDNN kernels "
          f"{'on' if onednn.enabled() else 'off: not installed or switched off'})")
    print(f"{'case':<14}{'shape':<34}{'numpy':>9}{'avalon':>9}{'torch':>9}{'ratio':>8}{'vs numpy':>10}")
    ratios = []
    for name, n, cin, hw, cout, k, s, p, g in CASES:
        x = rng.standard_normal((n, cin, hw, hw)).astype(np.float32)
        w = (rng.standard_normal((cout, cin // g, k, k)) * 0.1).astype(np.float32)
        b = np.zeros(cout, np.float32)
        seed = rng.standard_normal(F.conv2d(x, w, b, s, p, 1, g).shape).astype(np.float32)

        def loss(x, w, b):
            return (F.conv2d(x, w, b, s, p, 1, g) * seed).sum()

        def ours():  # one function object, so every call after the first replays the compiled tape
            return avalon.grad(loss, x, w, b)

        def numpy_path():  # the same compiled tape: the switch is read at every call
            previous = onednn.set_enabled(False)
            try:
                return avalon.grad(loss, x, w, b)
            finally:
                onednn.set_enabled(previous)

        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        tseed = torch.tensor(seed)

        def theirs():
            for t in (tx, tw, tb):
                t.grad = None
            (torch.nn.functional.conv2d(tx, tw, tb, s, p, 1, g) * tseed).sum().backward()

        p, a, t = median_ms(numpy_path, ours, theirs)
        ratios.append(a / t)
        shape = f"{n}x{cin}x{hw}x{hw} -> {cout}, k{k} s{s} g{g}"
        print(f"{name:<14}{shape:<34}{p:>9.2f}{a:>9.2f}{t:>9.2f}{a / t:>8.2f}{a / p:>10.2f}")
    print(f"geometric mean ratio avalon / torch: {np.exp(np.mean(np.log(ratios))):.2f}")


if __name__ == "__main__":
    main()
