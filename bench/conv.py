"""conv2d forward + backward against PyTorch on the CPU, for a few layer shapes typical of small CNNs, in
one process; rounds alternate, so a busy machine slows all alike. Both libraries get the same number of
BLAS threads, 1 by default.

`python bench/conv.py [threads]`: `avalon.grad` (cached replay) of a conv2d with bias against PyTorch
eager; median ms per step and the ratio avalon / torch. "avalon" runs Avalon as installed: its float32
convolutions on oneDNN when the `fast` extra is there (avalon.kernels.onednn.enabled(), printed), else
numpy; "numpy" is Avalon with oneDNN switched off (`avalon.kernels.onednn.set_enabled(False)`: the numpy
paths), so the last column is what oneDNN gains.

`python bench/conv.py [threads] --layouts`: which memory layout Avalon's oneDNN convolutions should use
(avalon/kernels/onednn/conv.py): forward + input gradient + weight gradient, on the numpy path, on oneDNN
with the layout it chooses ("any", reorders per call), on plain NCHW (oneDNN's im2col + GEMM), on
channels-last activations ("nhwc"), and PyTorch; median ms per triple.
"""
from harness import THREADS, median_ms  # noqa: I001 - sets the thread count before numpy loads

import sys  # noqa: E402

import numpy as np  # noqa: E402

import avalon  # noqa: E402
import avalon.nn.functional as F  # noqa: E402
from avalon.kernels import onednn  # noqa: E402
from avalon.kernels.onednn import conv as dnnl_conv  # noqa: E402
from avalon.ops import conv as cv  # noqa: E402

# (name, N, C_in, H=W, C_out, kernel, stride, padding, groups)
CASES = [
    ("LeNet conv1", 64, 1, 28, 6, 5, 1, 0, 1),
    ("LeNet 1->32", 128, 1, 28, 32, 3, 1, 0, 1),  # bench/steps.py's LeNet
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


def _off(fn):
    """`fn` run with Avalon's oneDNN kernels switched off (the numpy paths)."""
    def run():
        previous = onednn.set_enabled(False)
        try:
            return fn()
        finally:
            onednn.set_enabled(previous)
    return run


def step_runners(torch, x, w, gy, s, p, g):
    """{column: function}: a conv2d with bias, forward and backward, through avalon.grad and PyTorch."""
    b = np.zeros(w.shape[0], np.float32)

    def loss(x, w, b):
        return (F.conv2d(x, w, b, s, p, 1, g) * gy).sum()

    def ours():  # one function object, so every call after the first replays the compiled tape
        return avalon.grad(loss, x, w, b)

    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tg = torch.tensor(gy)

    def theirs():
        for t in (tx, tw, tb):
            t.grad = None
        (torch.nn.functional.conv2d(tx, tw, tb, s, p, 1, g) * tg).sum().backward()

    return {"numpy": _off(ours), "avalon": ours, "torch": theirs}  # numpy: the same compiled tape


def layout_runners(torch, x, w, gy, s, p, g):
    """{column: function}: forward, input gradient and weight gradient, by oneDNN layout."""
    hw, k, o = x.shape[2], w.shape[2], gy.shape[2]
    geometry = ((s, s), ((p, p), (p, p)), (1, 1), g)

    def numpy_path():
        cv.conv.impl(x, w, *geometry)
        cv.conv_transpose.impl(gy, w, (hw, hw), *geometry)
        cv.conv_weight_grad.impl(x, gy, (k, k), *geometry)

    def on(layout):
        def run():
            dnnl_conv.LAYOUT = layout
            dnnl_conv.conv(x, w, (o, o), *geometry)
            dnnl_conv.conv_transpose(gy, w, (hw, hw), *geometry)
            dnnl_conv.conv_weight_grad(x, gy, (k, k), *geometry)
        return run

    tx, tw, tg = torch.tensor(x), torch.tensor(w), torch.tensor(gy)

    def theirs():
        torch.nn.functional.conv2d(tx, tw, None, s, p, 1, g)
        torch.ops.aten.convolution_backward(tg, tx, tw, None, [s, s], [p, p], [1, 1], False, [0, 0], g,
                                            [True, True, False])

    return {"numpy": _off(numpy_path), "any": on("any"), "plain": on("plain"), "nhwc": on("nhwc"), "torch": theirs}


def main(layouts=False):
    import torch

    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    what = "forward + input gradient + weight gradient" if layouts else "forward+backward"
    print(f"conv2d {what}, median ms ({THREADS} threads; Avalon's oneDNN kernels "
          f"{'on' if onednn.enabled() else 'off: not installed or switched off'})")
    columns = None
    ratios = []
    for name, n, cin, hw, cout, k, s, p, g in CASES:
        x = rng.standard_normal((n, cin, hw, hw)).astype(np.float32)
        w = (rng.standard_normal((cout, cin // g, k, k)) * 0.1).astype(np.float32)
        o = (hw + 2 * p - k) // s + 1
        gy = rng.standard_normal((n, cout, o, o)).astype(np.float32)
        runners = (layout_runners if layouts else step_runners)(torch, x, w, gy, s, p, g)
        if columns is None:
            columns = list(runners)
            extra = [] if layouts else ["ratio", "vs numpy"]
            print(f"{'case':<14}{'shape':<34}" + "".join(f"{c:>9}" for c in columns + extra))
        times = dict(zip(columns, median_ms(*runners.values())))
        shape = f"{n}x{cin}x{hw}x{hw} -> {cout}, k{k} s{s} g{g}"
        line = f"{name:<14}{shape:<34}" + "".join(f"{times[c]:>9.2f}" for c in columns)
        if not layouts:
            ratios.append(times["avalon"] / times["torch"])
            line += f"{ratios[-1]:>9.2f}{times['avalon'] / times['numpy']:>9.2f}"
        print(line, flush=True)
    dnnl_conv.LAYOUT = "any"
    if ratios:
        print(f"geometric mean ratio avalon / torch: {np.exp(np.mean(np.log(ratios))):.2f}")


if __name__ == "__main__":
    main(layouts="--layouts" in sys.argv[1:])
