"""Pooling: MaxPool (with its Indices) and AveragePool (any pads, dilations, ceil_mode, count_include_pad),
GlobalAveragePool, GlobalMaxPool.

Pooling that torch's functions take (equal pads of at most half the kernel, a float input, no dilated
average) goes to them; the rest is computed here as a reduction over the strided windows of the padded
input, which differentiates like any numpy code."""
import itertools

import numpy as np

from ...nn import functional as F
from . import operator
from .windows import geometry, padded

_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _out_size(size, k, s, dil, begin, end, ceil):
    span = size + begin + end - ((k - 1) * dil + 1)
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + begin:  # no window may start inside the end padding alone
        out -= 1
    return out


def _windows(x, kernel, strides, dilations, pads, ceil, fill):
    """The kernel offsets' strided views of `x` padded with `fill` (and at the end as far as ceil_mode
    needs), and the output size per axis."""
    outs = [_out_size(size, k, s, dil, b, e, ceil)
            for size, k, s, dil, (b, e) in zip(x.shape[2:], kernel, strides, dilations, pads)]
    extra = [max(0, (o - 1) * s + (k - 1) * dil + 1 - (size + b + e))
             for o, size, k, s, dil, (b, e) in zip(outs, x.shape[2:], kernel, strides, dilations, pads)]
    x = padded(x, [(b, e + more) for (b, e), more in zip(pads, extra)], fill)
    views = []
    for offsets in itertools.product(*[range(k) for k in kernel]):
        index = tuple(slice(o * dil, o * dil + (out - 1) * s + 1, s)
                      for o, dil, out, s in zip(offsets, dilations, outs, strides))
        views.append(x[(slice(None), slice(None)) + index])
    return views, outs


def _counts(sizes, kernel, strides, dilations, pads, outs, include_pad):
    """How many positions each window averages: the input's, plus the explicit pads' when included."""
    total = np.ones((), np.float64)
    for size, k, s, dil, (b, e), out in zip(sizes, kernel, strides, dilations, pads, outs):
        mask = np.concatenate([np.full(b, include_pad), np.ones(size), np.full(e, include_pad),
                               np.zeros(k * dil + out * s)]).astype(np.float64)
        per_axis = sum(mask[o * dil: o * dil + (out - 1) * s + 1: s] for o in range(k))
        total = np.multiply.outer(total, per_axis)
    return total


def _torch_takes(pads, kernel):
    return all(b == e and 2 * b <= k for (b, e), k in zip(pads, kernel))


def _max_with_indices(n, x, kernel, strides, dilations, pads, ceil):
    """MaxPool's values and Indices: each maximum's position (the first of equal ones) flattened over
    the whole input, spatial axes row-major (storage_order 0) or column-major (1)."""
    lowest = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    views, outs = _windows(x, kernel, strides, dilations, pads, ceil, lowest)
    stacked = np.stack(views)
    best = np.argmax(stacked, axis=0)
    values = np.take_along_axis(stacked, best[None], axis=0)[0]
    dims = x.shape[2:]
    order = range(len(dims)) if n.attr("storage_order", 0) == 0 else reversed(range(len(dims)))
    step, steps = 1, [0] * len(dims)
    for axis in reversed(list(order)):  # the fastest-varying axis gets step 1
        steps[axis], step = step, step * dims[axis]
    flat = np.reshape(np.arange(x.shape[0] * x.shape[1]), (x.shape[0], x.shape[1]) + (1,) * len(dims)) * step
    for axis in range(len(dims)):
        start = np.reshape(np.arange(outs[axis]) * strides[axis] - pads[axis][0],
                           [-1 if a == axis else 1 for a in range(len(dims))])
        within = best // int(np.prod(kernel[axis + 1:], dtype=np.int64)) % kernel[axis]  # the window's offset
        position = start + within * dilations[axis]
        flat = flat + position * steps[axis]
    return values, flat.astype(np.int64)


@operator("MaxPool")
def max_pool(n, x):
    kernel, ceil = n.attr("kernel_shape"), bool(n.attr("ceil_mode", 0))
    strides, dilations, pads = geometry(n, x, kernel)
    if len(n.outputs) > 1 and n.outputs[1]:
        return _max_with_indices(n, x, kernel, strides, dilations, pads, ceil)
    if _torch_takes(pads, kernel) and np.issubdtype(x.dtype, np.floating):
        return _MAX[len(kernel)](x, kernel, stride=strides, padding=[b for b, _ in pads], dilation=dilations,
                                 ceil_mode=ceil)
    lowest = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    views, _ = _windows(x, kernel, strides, dilations, pads, ceil, lowest)
    y = views[0]
    for view in views[1:]:
        y = np.maximum(y, view)
    return y


@operator("AveragePool")
def average_pool(n, x):
    kernel, ceil = n.attr("kernel_shape"), bool(n.attr("ceil_mode", 0))
    strides, dilations, pads = geometry(n, x, kernel)
    include = bool(n.attr("count_include_pad", 0))
    if _torch_takes(pads, kernel) and all(dil == 1 for dil in dilations):
        return _AVG[len(kernel)](x, kernel, stride=strides, padding=[b for b, _ in pads], ceil_mode=ceil,
                                 count_include_pad=include)
    views, outs = _windows(x, kernel, strides, dilations, pads, ceil, 0.0)
    total = views[0]
    for view in views[1:]:
        total = total + view
    return total / _counts(x.shape[2:], kernel, strides, dilations, pads, outs, include).astype(x.dtype)


@operator("GlobalAveragePool")
def global_average_pool(n, x):
    return np.mean(x, axis=tuple(range(2, x.ndim)), keepdims=True)


@operator("GlobalMaxPool")
def global_max_pool(n, x):
    return np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True)


@operator("LpPool")
def lp_pool(n, x):
    """(Σ |x|^p over each window)^(1/p), padding counting as zeros."""
    kernel, ceil, p = n.attr("kernel_shape"), bool(n.attr("ceil_mode", 0)), n.attr("p", 2)
    strides, dilations, pads = geometry(n, x, kernel)
    views, _ = _windows(np.abs(x) ** p if p != 2 else x * x, kernel, strides, dilations, pads, ceil, 0.0)
    total = views[0]
    for view in views[1:]:
        total = total + view
    return total ** np.asarray(1.0 / p, x.dtype)


@operator("MaxUnpool")
def max_unpool(n, x, indices, output_shape=None):
    """MaxPool undone: each value put back at its Indices position in zeros of the pooled input's shape
    (from kernel, strides and pads), zero-padded at the end to `output_shape` when given."""
    from ... import scatter
    kernel = n.attr("kernel_shape")
    d = len(kernel)
    strides, pads = n.attr("strides", [1] * d), n.attr("pads", [0] * (2 * d))
    shape = tuple(x.shape[:2]) + tuple((x.shape[2 + i] - 1) * strides[i] - pads[i] - pads[d + i] + kernel[i]
                                       for i in range(d))
    flat = scatter(np.zeros(int(np.prod(shape)), x.dtype), 0, np.reshape(indices, (-1,)), src=np.reshape(x, (-1,)))
    y = np.reshape(flat, shape)
    if output_shape is not None:
        target = n.ints(output_shape, "output_shape")
        y = np.pad(y, [(0, t - s) for t, s in zip(target, shape)])
    return y
