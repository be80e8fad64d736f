"""Network primitives: matmul, softmax, convolutions, pooling, resampling, normalisation, attention."""
import math

import numpy as np

from ...ops.pool import _inverse_divisor
from ...ops.vision import _nearest_index, axis_matrix
from . import emits
from .reduce import einsum_form


@emits("matmul")
def matmul(g, node):
    return g.op("MatMul", [g.arg(node, 0, node.dtype), g.arg(node, 1, node.dtype)])


@emits("softmax", "log_softmax")
def softmax(g, node):
    op_type = "Softmax" if node.prim.name == "softmax" else "LogSoftmax"
    return g.softmax(op_type, g.arg(node, 0), int(node.params["axis"]), len(node.shape))


def _pads(padding):
    return [int(a) for a, _ in padding] + [int(b) for _, b in padding]


def _batched(g, node, spatial, op):
    """`op` (a name -> name function) applied to x seen as (N, C, *spatial), as ONNX's convolutions
    and pools want it: leading axes added when x has fewer (an unbatched input), folded into N when
    it has more, and the result given the node's own shape back."""
    x = node.args[0]
    lead = len(x.shape) - spatial
    if lead == 2:
        return op(g.arg(node, 0))
    if lead < 2:
        return g.squeeze(op(g.unsqueeze(g.arg(node, 0), range(2 - lead))), range(2 - lead))
    g.static_sizes(node, x, range(lead - 1, len(x.shape)), "the channel and spatial sizes of the folded batch")
    folded = g.op("Reshape", [g.arg(node, 0), g.ints((-1,) + tuple(x.shape[lead - 1:]))])
    twin = g.twin(node)
    return g.op("Reshape", [op(folded), g.shape_tensor(node.shape, twin and twin.shape, fill=-1)])


@emits("conv")
def conv(g, node):
    w, p = node.args[1], node.params
    return _batched(g, node, len(w.shape) - 2, lambda x: g.op(
        "Conv", [x, g.arg(node, 1)], kernel_shape=list(w.shape[2:]), strides=list(p["stride"]),
        pads=_pads(p["padding"]), dilations=list(p["dilation"]), group=int(p["groups"])))


@emits("conv_transpose")
def conv_transpose(g, node):
    """ConvTranspose; the output's extra rows past the last window (torch's output_padding) from `shape`."""
    x, w, p = node.args[0], node.args[1], node.params
    kernel = w.shape[2:]
    extra = [n - ((i - 1) * s - lo - hi + d * (k - 1) + 1)
             for n, i, s, (lo, hi), d, k in zip(p["shape"], x.shape[-len(kernel):], p["stride"], p["padding"],
                                                 p["dilation"], kernel)]
    return _batched(g, node, len(kernel), lambda x: g.op(
        "ConvTranspose", [x, g.arg(node, 1)], kernel_shape=list(kernel), strides=list(p["stride"]),
        pads=_pads(p["padding"]), dilations=list(p["dilation"]), group=int(p["groups"]),
        output_padding=extra if any(extra) else None))


@emits("max_pool")
def max_pool(g, node):
    p = node.params
    dilations = list(p["dilation"]) if any(d != 1 for d in p["dilation"]) else None
    return _batched(g, node, len(p["kernel"]), lambda x: g.op(
        "MaxPool", [x], kernel_shape=list(p["kernel"]), strides=list(p["stride"]), pads=_pads(p["padding"]),
        dilations=dilations))


@emits("avg_pool")
def avg_pool(g, node):
    """AveragePool counting the padding (so each window's sum over the kernel size), then rescaled
    by the exact divisor of each output position where Avalon's (torch's) divisor differs from it."""
    p, x = node.params, node.args[0]
    kernel = list(p["kernel"])
    y = _batched(g, node, len(kernel), lambda x: g.op(
        "AveragePool", [x], kernel_shape=kernel, strides=list(p["stride"]), pads=_pads(p["padding"]),
        count_include_pad=1))
    d = len(kernel)
    inverse = np.asarray(_inverse_divisor(np, node.dtype, x.shape[-d:], node.shape[-d:], kernel, p["stride"],
                                          p["padding"], p["count_include_pad"], p["divisor_override"]))
    factor = inverse * math.prod(kernel)
    if np.allclose(factor, 1, rtol=0, atol=1e-7):
        return y
    g.static_sizes(node, x, range(len(x.shape) - d, len(x.shape)), "the divisor of each window")
    return g.op("Mul", [y, g.const(np.broadcast_to(factor, node.shape[-d:]).astype(node.dtype), node.dtype)])


@emits("unfold")
def unfold(g, node):
    """im2col as a grouped convolution with one-hot kernels: output channel c·K + k is input channel
    c at kernel offset k, as torch orders the columns; then (N, C·K, L)."""
    x, p = node.args[0], node.params
    kernel, channels = tuple(p["kernel"]), x.shape[1]
    size = math.prod(kernel)
    picks = np.zeros((channels * size, 1) + kernel, node.dtype)
    for c in range(channels):
        picks[c * size:(c + 1) * size, 0].reshape(size, -1)[np.arange(size), np.arange(size)] = 1
    windows = g.op("Conv", [g.arg(node, 0), g.const(picks, node.dtype)], kernel_shape=list(kernel),
                   strides=list(p["stride"]), pads=_pads(p["padding"]), dilations=list(p["dilation"]), group=channels)
    twin = g.twin(node)
    return g.op("Reshape", [windows, g.shape_tensor(node.shape, twin and twin.shape, fill=-1)])


@emits("fold")
def fold(g, node):
    """col2im: Col2Im from opset 18; before it the adjoint of unfold's convolution, a ConvTranspose
    with one-hot kernels (input channel c·K + k adds to channel c at kernel offset k), its last rows
    past the final window (output_padding) from `shape`."""
    cols, p = node.args[0], node.params
    shape, kernel, stride, dilation = (tuple(p[k]) for k in ("shape", "kernel", "stride", "dilation"))
    pads = _pads(p["padding"])
    if g.opset >= 18:
        return g.op("Col2Im", [g.arg(node, 0), g.ints(shape), g.ints(kernel)], dilations=list(dilation),
                    pads=pads, strides=list(stride))
    g.static_sizes(node, cols, [1, 2], "the blocks' grid")
    size = math.prod(kernel)
    channels = cols.shape[1] // size
    grid = [(n + lo + hi - d * (k - 1) - 1) // s + 1
            for n, (lo, hi), k, s, d in zip(shape, p["padding"], kernel, stride, dilation)]
    extra = [n - ((o - 1) * s - lo - hi + d * (k - 1) + 1)
             for n, o, s, (lo, hi), d, k in zip(shape, grid, stride, p["padding"], dilation, kernel)]
    picks = np.zeros((channels * size, 1) + kernel, node.dtype)
    for c in range(channels):
        picks[c * size:(c + 1) * size, 0].reshape(size, -1)[np.arange(size), np.arange(size)] = 1
    blocks = g.op("Reshape", [g.arg(node, 0), g.ints([0, cols.shape[1]] + grid)])
    return g.op("ConvTranspose", [blocks, g.const(picks, node.dtype)], kernel_shape=list(kernel),
                strides=list(stride), pads=pads, dilations=list(dilation), group=channels,
                output_padding=extra if any(extra) else None)


@emits("resample")
def resample(g, node):
    """Each trailing axis through its matrix: nearest as a Gather of the chosen rows (exact), a
    single adaptive window as a mean, other maps as an Einsum with the (out, in) matrix."""
    x, maps = g.arg(node, 0), node.params["maps"]
    ndim = len(node.shape)
    first = ndim - len(maps)
    letters = "abcdefghijklmnopqrstuvwxy"[:ndim]
    for axis in range(ndim - 1, first - 1, -1):
        desc = maps[axis - first]
        m = axis_matrix(desc, str(node.dtype))
        if m is None:
            continue
        if desc[0] == "nearest":
            x = g.op("Gather", [x, g.const(_nearest_index(*desc[1:]).astype(np.int64))], axis=axis)
        elif desc[0] == "area" and desc[2] == 1:
            x = g.reduce("ReduceMean", x, [axis], True)
        else:
            source = letters[:axis] + "z" + letters[axis + 1:]
            x = einsum_form(g, f"{letters[axis]}z,{source}->{letters}", [g.const(m, node.dtype), x], [2, ndim])
    return x if x != g.arg(node, 0) else g.op("Identity", [x])


@emits("center")
def center(g, node):
    return g.op("Sub", [g.arg(node, 0, node.dtype), g.arg(node, 1, node.dtype)])


@emits("normalize")
def normalize(g, node):
    """c / sqrt(var + eps) · weight + bias (weight and bias may be None)."""
    c, var, weight, bias = node.args[:4]
    eps = node.params.get("eps", node.args[4] if len(node.args) > 4 else None)
    dt = node.dtype
    std = g.op("Sqrt", [g.op("Add", [g.arg(node, 1, dt), g.const(eps, dt)])])
    y = g.op("Div", [g.arg(node, 0, dt), std])
    if weight is not None:
        y = g.op("Mul", [y, g.arg(node, 2, dt)])
    if bias is not None:
        y = g.op("Add", [y, g.arg(node, 3, dt)])
    return y


@emits("batch_norm_stats")
def batch_norm_stats(g, node):
    """(2, C): each channel's mean and biased variance (ops/batch_norm.py)."""
    ndim = len(node.args[0].shape)
    axes = [0] + list(range(2, ndim))
    x = g.arg(node, 0, node.dtype)
    mean = g.reduce("ReduceMean", x, axes, True)
    c = g.op("Sub", [x, mean])
    both = g.op("Concat", [mean, g.reduce("ReduceMean", g.op("Mul", [c, c]), axes, True)], axis=0)
    return g.squeeze(both, list(range(2, ndim))) if ndim > 2 else both


@emits("batch_norm_apply")
def batch_norm_apply(g, node):
    """(x - mean) / sqrt(var + eps) · weight + bias with (mean, var) the rows of the statistics."""
    ndim, dt = len(node.args[0].shape), node.dtype
    spread = [0] + list(range(2, ndim))  # (C,) -> (1, C, 1, …)

    def row(k):
        return g.unsqueeze(g.op("Gather", [g.arg(node, 1, dt), g.const(np.array(k, np.int64))], axis=0), spread)

    std = g.op("Sqrt", [g.op("Add", [row(1), g.const(node.params["eps"], dt)])])
    y = g.op("Div", [g.op("Sub", [g.arg(node, 0, dt), row(0)]), std])
    if node.args[2] is not None:
        y = g.op("Mul", [y, g.unsqueeze(g.arg(node, 2, dt), spread)])
    if node.args[3] is not None:
        y = g.op("Add", [y, g.unsqueeze(g.arg(node, 3, dt), spread)])
    return y


@emits("layer_norm_stats")
def layer_norm_stats(g, node):
    """(2, *lead): each row's mean and biased variance over the trailing k axes (ops/layer_norm.py)."""
    ndim, k = len(node.args[0].shape), node.params["k"]
    axes = list(range(ndim - k, ndim))
    x = g.arg(node, 0, node.dtype)
    mean = g.reduce("ReduceMean", x, axes, True)
    c = g.op("Sub", [x, mean])
    var = g.reduce("ReduceMean", g.op("Mul", [c, c]), axes, True)
    both = g.op("Concat", [g.unsqueeze(mean, [0]), g.unsqueeze(var, [0])], axis=0)
    return g.squeeze(both, [a + 1 for a in axes])


@emits("layer_norm_apply")
def layer_norm_apply(g, node):
    """(x - mean) / sqrt(var + eps) · weight + bias with (mean, var) the rows of the statistics, spread
    over the trailing k axes (weight and bias have their shape: broadcast from the right)."""
    ndim, k, dt = len(node.args[0].shape), node.params["k"], node.dtype

    def row(i):
        picked = g.op("Gather", [g.arg(node, 1, dt), g.const(np.array(i, np.int64))], axis=0)
        return g.unsqueeze(picked, list(range(ndim - k, ndim)))

    std = g.op("Sqrt", [g.op("Add", [row(1), g.const(node.params["eps"], dt)])])
    y = g.op("Div", [g.op("Sub", [g.arg(node, 0, dt), row(0)]), std])
    if node.args[2] is not None:
        y = g.op("Mul", [y, g.arg(node, 2, dt)])
    if node.args[3] is not None:
        y = g.op("Add", [y, g.arg(node, 3, dt)])
    return y


def _scores(g, node):
    """q·kᵀ·scale, masked: the boolean mask's False and (causal) every later key at -inf, a float
    mask added."""
    q, k = node.args[0], node.args[1]
    dt = node.dtype
    rank = len(k.shape)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    scaled = g.op("Mul", [g.arg(node, 0, dt), g.const(node.params["scale"], dt)])
    scores = g.op("MatMul", [scaled, g.op("Transpose", [g.arg(node, 1, dt)], perm=perm)])
    if node.params.get("causal"):
        g.static_sizes(node, q, [len(q.shape) - 2], "the causal mask")
        g.static_sizes(node, k, [rank - 2], "the causal mask")
        length, source = q.shape[-2], k.shape[-2]
        above = np.arange(source)[None, :] > np.arange(length)[:, None]
        scores = g.op("Where", [g.const(above), g.const(-np.inf, dt), scores])
    masks = node.args[3:] if node.prim.name == "attention" else node.args[2:]
    if masks:
        i = len(node.args) - 1
        if masks[0].dtype == np.bool_:
            scores = g.op("Where", [g.arg(node, i), scores, g.const(-np.inf, dt)])
        else:
            scores = g.op("Add", [scores, g.arg(node, i, dt)])
    return g.softmax("Softmax", scores, -1, len(node.shape))  # the scores have the result's rank


@emits("attention_weights")
def attention_weights(g, node):
    return _scores(g, node)


@emits("attention")
def attention(g, node):
    return g.op("MatMul", [_scores(g, node), g.arg(node, 2, node.dtype)])
