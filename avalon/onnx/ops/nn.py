"""Layers: MatMul, Gemm, Conv, pooling, BatchNormalization, LayerNormalization."""
import math

import numpy as np

from ...nn import functional as F
from ...nn.functional import normalization as Fn
from . import operator
from .math import cast


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


def _pads(n, x, kernel, strides, dilations):
    """(begin, end) padding per spatial axis, from `pads` or `auto_pad` (SAME_* depends on the input's
    size, so it is computed from the traced shape, never stored)."""
    d = len(kernel)
    auto = n.attr("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, dil in zip(x.shape[2:], kernel, strides, dilations):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * dil + 1 - size)
            small = total // 2
            pads.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
        return pads
    if auto == "VALID":
        return [(0, 0)] * d
    if auto != "NOTSET":
        raise n.error(f"auto_pad {auto!r} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    pads = n.attr("pads", [0] * (2 * d))
    return list(zip(pads[:d], pads[d:]))


def _padded(x, pads, value):
    """`x` padded explicitly (for asymmetric pads, which torch-style functions cannot take)."""
    flat = [p for begin_end in reversed(pads) for p in begin_end]
    return F.pad(x, flat, value=value)


def _geometry(n, x, kernel):
    d = len(kernel)
    strides = n.attr("strides", [1] * d)
    dilations = n.attr("dilations", [1] * d)
    pads = _pads(n, x, kernel, strides, dilations)
    return strides, dilations, pads


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


@operator("Conv")
def conv(n, x, w, b=None):
    d = w.ndim - 2
    if d not in _CONV:
        raise n.error(f"{d}-D convolution is not supported (1-D, 2-D and 3-D are)")
    kernel = n.attr("kernel_shape", list(w.shape[2:]))
    strides, dilations, pads = _geometry(n, x, kernel)
    if any(begin != end for begin, end in pads):
        x, padding = _padded(x, pads, 0.0), 0
    else:
        padding = [begin for begin, _ in pads]
    return _CONV[d](x, w, b, stride=strides, padding=padding, dilation=dilations, groups=n.attr("group", 1))


_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


@operator("MaxPool")
def max_pool(n, x):
    if len(n.outputs) > 1 and n.outputs[1]:
        raise n.error("the Indices output of MaxPool is not supported")
    kernel = n.attr("kernel_shape")
    strides, dilations, pads = _geometry(n, x, kernel)
    if any(begin != end for begin, end in pads) or any(2 * b > k for (b, _), k in zip(pads, kernel)):
        x, padding = _padded(x, pads, -math.inf), 0
    else:
        padding = [begin for begin, _ in pads]
    return _MAX[len(kernel)](x, kernel, stride=strides, padding=padding, dilation=dilations,
                             ceil_mode=bool(n.attr("ceil_mode", 0)))


@operator("AveragePool")
def average_pool(n, x):
    kernel = n.attr("kernel_shape")
    strides, dilations, pads = _geometry(n, x, kernel)
    if any(dil != 1 for dil in dilations):
        raise n.error("dilated average pooling is not supported")
    include = bool(n.attr("count_include_pad", 0))
    if any(begin != end for begin, end in pads):
        if not include:
            raise n.error("asymmetric pads with count_include_pad=0 are not supported")
        x, padding = _padded(x, pads, 0.0), 0
    else:
        padding = [begin for begin, _ in pads]
    return _AVG[len(kernel)](x, kernel, stride=strides, padding=padding, ceil_mode=bool(n.attr("ceil_mode", 0)),
                             count_include_pad=include)


@operator("GlobalAveragePool")
def global_average_pool(n, x):
    return np.mean(x, axis=tuple(range(2, x.ndim)), keepdims=True)


@operator("GlobalMaxPool")
def global_max_pool(n, x):
    return np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True)


@operator("BatchNormalization")
def batch_normalization(n, x, scale, bias, mean, var):
    """Inference uses the running statistics. In training mode (module.train()) it uses the batch's and,
    when mean and var are the module's buffers, updates them as running·momentum + batch·(1 - momentum)
    with the unbiased batch variance (PyTorch's update, which a PyTorch export encodes as momentum)."""
    eps = n.attr("epsilon", 1e-5)
    if not n.module.training:
        y = Fn.normalize_with(x, mean, var, scale, bias, eps)
        return (y, mean, var) if len([o for o in n.outputs if o]) > 1 else y
    axes, count = Fn.batch_statistics(f"ONNX node {n.name!r}", x)
    batch_mean, centred, batch_var = Fn.moments(x, axes)
    y = Fn.normalize_per_channel(centred, batch_var, scale, bias, eps, axes)
    momentum = n.attr("momentum", 0.9)
    channels = (x.shape[1],)
    new_mean = mean * momentum + np.reshape(batch_mean, channels) * (1.0 - momentum)
    new_var = var * momentum + np.reshape(batch_var, channels) * (count / (count - 1) * (1.0 - momentum))
    new_mean, new_var = cast(new_mean, mean.dtype), cast(new_var, var.dtype)
    for name, value in ((n.inputs[3], new_mean), (n.inputs[4], new_var)):
        n.module.update_buffer(name, value)
    return (y, new_mean, new_var) if len([o for o in n.outputs if o]) > 1 else y


@operator("LayerNormalization")
def layer_normalization(n, x, scale, bias=None):
    axis = n.attr("axis", -1) % x.ndim
    axes = tuple(range(axis, x.ndim))
    mean = np.mean(x, axis=axes, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=axes, keepdims=True)
    y = centred / np.sqrt(var + n.attr("epsilon", 1e-5)) * scale
    return y if bias is None else y + bias


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
    unequal); `output_shape` or auto_pad SAME_* set the pads from the wanted size."""
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
        totals = [f - o for f, o in zip(full, wanted)]
        if any(t < 0 for t in totals):
            raise n.error(f"output_shape {wanted} is larger than the full transposed convolution {full}")
        upper = auto == "SAME_UPPER"
        pads = [(t // 2, t - t // 2) if upper else (t - t // 2, t // 2) for t in totals]
    else:
        flat = n.attr("pads", [0] * (2 * d))
        pads = list(zip(flat[:d], flat[d:]))
    y = _CONV_T[d](x, w, b, stride=strides, padding=0, output_padding=output_padding,
                   groups=n.attr("group", 1), dilation=dilations)
    index = (slice(None), slice(None)) + tuple(slice(begin, size - end) for (begin, end), size in zip(pads, full))
    return y[index]


def _normalize_groups(x, groups, eps):
    """x normalised over each of `groups` channel groups and all positions, per sample."""
    grouped = np.reshape(x, (x.shape[0], groups, -1))
    mean = np.mean(grouped, axis=2, keepdims=True)
    centred = grouped - mean
    var = np.mean(centred * centred, axis=2, keepdims=True)
    return np.reshape(centred / np.sqrt(var + eps), x.shape)


def _per_channel(v, ndim):
    return np.reshape(v, (1, -1) + (1,) * (ndim - 2))


@operator("InstanceNormalization")
def instance_normalization(n, x, scale, bias):
    y = _normalize_groups(x, x.shape[1], n.attr("epsilon", 1e-5))
    return y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)


@operator("GroupNormalization")
def group_normalization(n, x, scale, bias):
    """Opset 18 has one scale and bias per group, opset 21 per channel."""
    groups = n.attr("num_groups")
    y = _normalize_groups(x, groups, n.attr("epsilon", 1e-5))
    if n.opset < 21:
        per_group = (x.shape[1] // groups,)
        scale, bias = np.repeat(scale, per_group[0]), np.repeat(bias, per_group[0])
    return y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)


@operator("RMSNormalization")
def rms_normalization(n, x, scale):
    axes = tuple(range(n.attr("axis", -1) % x.ndim, x.ndim))
    return x / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + n.attr("epsilon", 1e-5)) * scale
