"""Linear algebra and convolutions: MatMul, Gemm, Einsum, Det, Conv, ConvTranspose, Pad, CausalConvWithState, Col2Im."""
import itertools

import numpy as np

from ...nn import functional as F
from . import operator
from .windows import geometry, padded


@operator("MatMul")
def matmul(n, a, b):
    return a @ b


@operator("Gemm")
def gemm(n, a, b, c=None):
    a = a.T if n.attr("transA", 0) else a
    b = b.T if n.attr("transB", 0) else b
    y = a @ b
    alpha, beta = n.attr("alpha", 1.0), n.attr("beta", 1.0)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c if beta == 1.0 else c * beta)
    return y


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


@operator("Conv")
def conv(n, x, w, b=None):
    d = w.ndim - 2
    if d not in _CONV:
        raise n.error(f"{d}-D convolution is not supported (1-D, 2-D and 3-D are)")
    kernel = n.attr("kernel_shape", list(w.shape[2:]))
    strides, dilations, pads = geometry(n, x, kernel)
    if any(begin != end for begin, end in pads):
        x, padding = padded(x, pads, 0.0), 0
    else:
        padding = [begin for begin, _ in pads]
    return _CONV[d](x, w, b, stride=strides, padding=padding, dilation=dilations, groups=n.attr("group", 1))


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


@operator("Pad")
def pad(n, x, pads=None, value=None, axes=None):
    """Before opset 11 `pads` and `value` are attributes, then inputs; `axes` (opset 18) picks the axes
    the pads are for."""
    if n.opset < 11:
        pads, value = n.attr("pads"), n.attr("value", 0.0)
    else:
        pads = n.ints(pads, "pads")
        value = 0.0 if value is None else float(n.constant(value, "the pad value").reshape(-1)[0])
    axes = list(range(x.ndim)) if axes is None else [a % x.ndim for a in n.ints(axes, "axes")]
    k = len(axes)
    if any(p < 0 for p in pads):
        raise n.error("negative pads (cropping) are not supported")
    per_axis = {a: (pads[i], pads[i + k]) for i, a in enumerate(axes)}
    mode = n.attr("mode", "constant")
    if mode not in _PAD_MODES:
        raise n.error(f"pad mode {mode!r} is not one of {sorted(_PAD_MODES)}")
    first = min((a for a, p in per_axis.items() if p != (0, 0)), default=x.ndim)
    flat = [p for a in range(x.ndim - 1, first - 1, -1) for p in per_axis.get(a, (0, 0))]
    if not flat:
        return x
    return F.pad(x, flat, mode=_PAD_MODES[mode], value=value if mode == "constant" else None)


@operator("Einsum")
def einsum(n, *xs):
    return np.einsum(n.attr("equation").replace(" ", ""), *xs)


_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@operator("ConvTranspose")
def conv_transpose(n, x, w, b=None):
    """The full transposed convolution, then the pads cropped from its two ends (ONNX allows them
    unequal); `output_shape` or auto_pad SAME_* set the pads from the wanted size (zeros are added
    where it is larger than the full result)."""
    d = w.ndim - 2
    kernel = n.attr("kernel_shape", list(w.shape[2:]))
    strides, dilations = n.attr("strides", [1] * d), n.attr("dilations", [1] * d)
    output_padding = n.attr("output_padding", [0] * d)
    full = [s * (size - 1) + op + (k - 1) * dil + 1 for size, s, op, k, dil in
            zip(x.shape[2:], strides, output_padding, kernel, dilations)]
    auto = n.attr("auto_pad", "NOTSET")
    wanted = n.attr("output_shape")
    if wanted is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        wanted = [size * s for size, s in zip(x.shape[2:], strides)]
    if wanted is not None:
        wanted = list(wanted)[-d:]
        totals = [f - o for f, o in zip(full, wanted)]  # negative: zeros are added instead
        upper = auto == "SAME_UPPER"
        pads = [(t // 2, t - t // 2) if upper else (t - t // 2, t // 2) for t in totals]
    else:
        flat = n.attr("pads", [0] * (2 * d))
        pads = list(zip(flat[:d], flat[d:]))
    y = _CONV_T[d](x, w, b, stride=strides, padding=0, output_padding=output_padding,
                   groups=n.attr("group", 1), dilation=dilations)
    if any(p < 0 for pair in pads for p in pair):
        y = padded(y, [(max(0, -b), max(0, -e)) for b, e in pads], 0.0)
        full = [f + max(0, -b) + max(0, -e) for f, (b, e) in zip(full, pads)]
        pads = [(max(0, b), max(0, e)) for b, e in pads]
    index = (slice(None), slice(None)) + tuple(slice(begin, size - end) for (begin, end), size in zip(pads, full))
    return y[index]


@operator("CausalConvWithState")
def causal_conv_with_state(n, x, weight, bias=None, past=None):
    """A depthwise 1-D convolution over (batch, channels, length) that sees only the current and past
    positions: the last k-1 positions of `past` (zeros by default) go in front; the new state is the last
    k-1 positions of that padded input. activation 'silu' (or 'swish') applies x·sigmoid(x)."""
    k = weight.shape[2]
    if past is None:
        past = np.zeros((x.shape[0], x.shape[1], k - 1), x.dtype)
    full = np.concatenate([past, x], axis=2)
    # half precision accumulates in float32 and rounds once, as the spec's reference
    wide, w = (full.astype(np.float32), weight.astype(np.float32)) if x.dtype == np.float16 else (full, weight)
    length = x.shape[2]
    y = wide[:, :, 0:length] * w[:, :, 0]
    for j in range(1, k):
        y = y + wide[:, :, j:j + length] * w[:, :, j]
    if bias is not None:
        y = y + bias.astype(y.dtype)[:, None]
    y = y.astype(x.dtype)
    if n.attr("activation", "none") in ("silu", "swish"):
        y = y.astype(wide.dtype)
        y = (y * F.sigmoid(y)).astype(x.dtype)
    return y, full[:, :, full.shape[2] - (k - 1):]


def _spread(x, axis, stride, start, length):
    """`x`'s positions along `axis` placed `stride` apart from `start` in zeros of `length`."""
    count = x.shape[axis]
    if stride > 1:  # interleave stride-1 zeros after each position
        y = np.expand_dims(x, axis + 1)
        pads = [(0, 0)] * y.ndim
        pads[axis + 1] = (0, stride - 1)
        y = np.pad(y, pads)
        shape = list(x.shape)
        shape[axis] = count * stride
        x = np.reshape(y, shape)
        index = [slice(None)] * x.ndim
        index[axis] = slice(0, (count - 1) * stride + 1)
        x = x[tuple(index)]
    pads = [(0, 0)] * x.ndim
    pads[axis] = (start, length - start - x.shape[axis])
    return np.pad(x, pads)


@operator("Col2Im")
def col2im(n, x, image_shape, block_shape):
    """The inverse of im2col (torch's fold): each block's column added back into the (padded) image
    at its place, then the padding cut off."""
    image, block = n.ints(image_shape, "image_shape"), n.ints(block_shape, "block_shape")
    d = len(image)
    dilations, strides = n.attr("dilations", [1] * d), n.attr("strides", [1] * d)
    pads = n.attr("pads", [0] * (2 * d))
    padded_size = [image[i] + pads[i] + pads[i + d] for i in range(d)]
    counts = [(padded_size[i] - (dilations[i] * (block[i] - 1) + 1)) // strides[i] + 1 for i in range(d)]
    batch, rows, positions = x.shape
    if positions != int(np.prod(counts)) or rows % int(np.prod(block)):
        raise n.error(f"the input {tuple(x.shape)} does not hold {int(np.prod(counts))} block positions of "
                      f"C·{int(np.prod(block))} values (from image_shape, block_shape, strides, dilations and pads)")
    columns = np.reshape(x, (batch, -1) + tuple(block) + tuple(counts))  # (N, C, *block, *counts)
    total = None
    for offsets in itertools.product(*[range(b) for b in block]):
        part = columns[(slice(None), slice(None)) + offsets]  # (N, C, *counts)
        for i in range(d):
            part = _spread(part, 2 + i, strides[i], offsets[i] * dilations[i], padded_size[i])
        total = part if total is None else total + part
    crop = tuple(slice(pads[i], pads[i] + image[i]) for i in range(d))
    return total[(slice(None), slice(None)) + crop]


@operator("Det")
def det(n, a):
    """Determinants of the (..., m, m) matrices by Gaussian elimination with partial pivoting, written
    with ordinary ops (row swaps as permutation products) so that it differentiates."""
    m = a.shape[-1]
    rows = np.arange(m)
    eye = np.eye(m, dtype=a.dtype)
    sign = np.ones(a.shape[:-2], a.dtype)
    for k in range(m):
        magnitude = np.where(rows >= k, np.abs(a[..., :, k]), -np.ones((), a.dtype))
        p = np.argmax(magnitude, axis=-1)
        hot_p = (rows == p[..., None]).astype(a.dtype)
        hot_k = (rows == k).astype(a.dtype)
        swap = eye - hot_k[:, None] * hot_k[None, :] - hot_p[..., :, None] * hot_p[..., None, :] + \
            hot_k[:, None] * hot_p[..., None, :] + hot_p[..., :, None] * hot_k[None, :]
        a = swap @ a
        sign = np.where(p == k, sign, -sign)
        pivot = a[..., k, k]
        safe = np.where(pivot == 0, np.ones((), a.dtype), pivot)  # a zero pivot: the column is zero, det 0
        factors = np.where(rows > k, a[..., :, k] / safe[..., None], np.zeros((), a.dtype))
        a = a - factors[..., :, None] * a[..., k:k + 1, :]
    return sign * np.prod(np.sum(a * eye, axis=-1), axis=-1)
