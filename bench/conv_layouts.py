"""Which memory layout Avalon's oneDNN convolutions should use (avalon/kernels/onednn/conv.py): forward
+ input gradient + weight gradient of a few layer shapes, on the numpy path, on oneDNN with the layout
it chooses ("any", reorders per call), on plain NCHW (oneDNN's im2col + GEMM), on channels-last
activations ("nhwc"), and PyTorch. Median ms per triple, rounds interleaved.

Run: `python bench/conv_layouts.py [threads]`.
"""
from harness import THREADS, median_ms  # noqa: I001 - sets the thread count before numpy loads

import numpy as np  # noqa: E402

from avalon.kernels.onednn import conv as dnnl_conv  # noqa: E402
from avalon.kernels.onednn import library  # noqa: E402
from avalon.ops import conv as cv  # noqa: E402

# (name, N, C_in, H=W, C_out, kernel, stride, padding, groups)
CASES = [
    ("LeNet conv1", 128, 1, 28, 32, 3, 1, 0, 1),
    ("LeNet conv2", 128, 32, 13, 64, 3, 1, 0, 1),
    ("ResNet-ish", 64, 64, 32, 64, 3, 1, 1, 1),
    ("CIFAR stem", 32, 3, 32, 32, 3, 1, 1, 1),
    ("ResNet down", 32, 64, 16, 128, 3, 2, 1, 1),
    ("1x1 proj", 32, 128, 8, 256, 1, 1, 0, 1),
    ("depthwise", 32, 64, 16, 64, 3, 1, 1, 64),
    ("depthwise 56", 8, 32, 56, 32, 3, 1, 1, 32),
]


def main():
    import torch

    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    print(f"conv2d forward + input gradient + weight gradient, median ms ({THREADS} threads)")
    print(f"{'case':<14}{'numpy':>8}{'any':>8}{'plain':>8}{'nhwc':>8}{'torch':>8}")
    for name, n, c, hw, co, k, s, p, g in CASES:
        x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        w = rng.standard_normal((co, c // g, k, k)).astype(np.float32)
        o = (hw + 2 * p - k) // s + 1
        gy = rng.standard_normal((n, co, o, o)).astype(np.float32)
        geometry = ((s, s), ((p, p), (p, p)), (1, 1), g)

        def numpy_path():
            previous = library.set_enabled(False)
            cv.conv.impl(x, w, *geometry)
            cv.conv_transpose.impl(gy, w, (hw, hw), *geometry)
            cv.conv_weight_grad.impl(x, gy, (k, k), *geometry)
            library.set_enabled(previous)

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

        times = median_ms(numpy_path, on("any"), on("plain"), on("nhwc"), theirs)
        print(f"{name:<14}" + "".join(f"{t:>8.2f}" for t in times), flush=True)
    dnnl_conv.LAYOUT = "any"


if __name__ == "__main__":
    main()
