"""Layer normalisation as three fused primitives (rules: avalon/rules/layer_norm.py), over the trailing
k axes of x: each row of D values (D the product of those axes) is normalised on its own.

    stats = layer_norm_stats(x, k)                             (2, *x.shape[:-k]): each row's mean and
                                                               biased variance
    y     = layer_norm_apply(x, stats, weight, bias, eps, k)   (x - mean)·σ⁻¹·weight + bias, σ = sqrt(var + eps)
    flat  = layer_norm_backward(g, x, stats, weight, eps, k)   apply's gradient: x's (flattened), then
                                                               weight's and bias's, (x.size + 2D,)

weight and bias have the shape x.shape[-k:] or are None. As for batch norm (ops/batch_norm.py, whose
layout this follows), `stats` must be x's own statistics: the rule of `layer_norm_apply` returns the
whole gradient in x, through the statistics too, and none to `stats`; the backward returns one flat
array because the three gradients come out of one pass.

Why fused: the decomposed path (ops/norm.py: mean, center, an einsum for the variance, normalize;
normalize_grad, center's rule with another mean, a three-operand einsum for the weight's gradient, a
sum for the bias's) walks the activations about five times each way and allocates an array per step.
Here the statistics are two passes over x (a row sum, then the centred squares part by part, each part
in cache: as exact as a two-pass variance), the forward one more and the backward one. On float32
C-contiguous numpy arrays `apply` and `backward` run on oneDNN when it is enabled
(avalon/kernels/onednn/layer_norm.py), decided at each call; elsewhere numpy runs them a few rows at a
time (PART_BYTES), the large ones in row blocks on both cores (threads_split).
"""
import math

import numpy as np

from ..backend import is_numpy_like, namespace
from ..kernels.onednn import layer_norm as onednn_layer_norm
from ..kernels.onednn import norm as onednn_norm
from . import threads_split
from .batch_norm import PART_BYTES
from .primitive import primitive


def size_of(shape, k):
    """D: how many values each row (each statistic) summarises."""
    return math.prod(shape[len(shape) - k:])


def _rows(xp, a, k):
    """`a` seen as (rows, D): its leading axes flattened into one, its trailing k into the other."""
    return xp.reshape(a, (math.prod(a.shape[:a.ndim - k]), size_of(a.shape, k)))


def _in_blocks(each, x):
    """[each(rows)] for x's rows (x seen as (rows, D)) whole, or one block of rows per thread when the
    pass is large (threads_split); `each` works through its rows a part at a time (`_parts`). No
    call without rows."""
    if not x.shape[0]:
        return []
    count = threads_split.workers(np, x.shape[0], x.nbytes)
    if count == 1:
        return [each(slice(0, x.shape[0]))]
    return threads_split.over_rows(x.shape[0], count, each)


def _parts(rows, x):
    """Slices of the row range `rows` of about PART_BYTES of x each."""
    size = max(1, PART_BYTES // max(x[0].nbytes, 1))
    return [slice(i, min(i + size, rows.stop)) for i in range(rows.start, rows.stop, size)]


@primitive("layer_norm_stats")
def layer_norm_stats(x, k):
    """(2, *x.shape[:-k]): x's mean and biased variance over its trailing k axes."""
    xp = namespace(x)
    rows, d = _rows(xp, x, k), size_of(x.shape, k)
    if xp is not np:
        mean = xp.mean(rows, axis=1)
        centred = rows - mean[:, None]
        return xp.reshape(xp.stack([mean, xp.mean(centred * centred, axis=1)]), (2,) + tuple(x.shape[:x.ndim - k]))
    stats = np.empty((2, rows.shape[0]), x.dtype)

    def each(block):
        buffer = np.empty_like(rows[_parts(block, rows)[0]])
        for p in _parts(block, rows):
            mean = np.einsum("ij->i", rows[p], out=stats[0, p])
            mean *= 1.0 / d
            centred = np.subtract(rows[p], mean[:, None], out=buffer[:len(mean)])
            var = np.einsum("ij,ij->i", centred, centred, out=stats[1, p])
            var *= 1.0 / d
    _in_blocks(each, rows)
    return stats.reshape((2,) + x.shape[:x.ndim - k])


def _per_row(xp, stats):
    """(mean, var) of a statistics array, each flat: one value per row."""
    return xp.reshape(stats[0, ...], (-1,)), xp.reshape(stats[1, ...], (-1,))


@primitive("layer_norm_apply", out=True)
def layer_norm_apply(x, stats, weight, bias, eps, k, out=None):
    """(x - mean)·σ⁻¹·weight + bias over x's trailing k axes, with (mean, var) = stats (x's own: see
    the module docstring); weight and bias of shape x.shape[-k:] or None."""
    xp = namespace(x)
    rows, d = _rows(xp, x, k), size_of(x.shape, k)
    mean, var = _per_row(xp, stats)
    w = None if weight is None else xp.reshape(weight, (d,))
    b = None if bias is None else xp.reshape(bias, (d,))
    if xp is not np:
        y = (rows - mean[:, None]) / xp.sqrt(var[:, None] + eps)
        y = y if w is None else y * w
        y = xp.reshape(y if b is None else y + b, tuple(x.shape))
        if out is None:
            return y
        out[...] = y
        return out
    # C order whatever x's layout (a transposed x too): y is written through its (rows, D) view
    y = np.empty(x.shape, x.dtype) if out is None else out
    y_rows = _rows(np, y, k)
    if onednn_norm.usable(x, stats, weight, bias, y) and x.size:
        onednn_layer_norm.forward(rows, mean, var, w, b, eps, y_rows)
        return y
    inv_std = 1.0 / np.sqrt(var + eps)

    def each(block):
        for p in _parts(block, rows):
            part = np.subtract(rows[p], mean[p, None], out=y_rows[p])
            part *= inv_std[p, None]
            if w is not None:
                part *= w
            if b is not None:
                part += b
    _in_blocks(each, rows)
    return y


@primitive("layer_norm_backward", out=True)
def layer_norm_backward(g, x, stats, weight, eps, k, out=None):
    """The gradient of `layer_norm_apply` for the output gradient `g`, with x's own statistics: one
    flat array holding x's gradient (x.size values, C order), then weight's (D) and bias's (D)."""
    xp = namespace(g, x)
    size, d = x.size, size_of(x.shape, k)
    g_rows, rows = _rows(xp, g, k), _rows(xp, x, k)
    mean, var = _per_row(xp, stats)
    w = None if weight is None else xp.reshape(weight, (d,))
    if onednn_norm.usable(g, x, stats, weight, out) and size:
        result = np.empty(size + 2 * d, x.dtype) if out is None else out
        onednn_layer_norm.backward(g_rows, rows, mean, var, w, eps,
                                   result[:size].reshape(rows.shape), result[size:size + d], result[size + d:])
        return result
    inv_std = 1.0 / xp.sqrt(var + eps)
    # x's gradient σ⁻¹·(gy - mean(gy) - x̂·mean(gy·x̂)) per row, gy = g·weight, x̂ = (x - mean)·σ⁻¹;
    # weight's Σ g·x̂ and bias's Σ g over the rows
    if xp is not np:
        x_hat = (rows - mean[:, None]) * inv_std[:, None]
        gy = g_rows if w is None else g_rows * w
        gx = (gy - xp.mean(gy, axis=1, keepdims=True) - x_hat * xp.mean(gy * x_hat, axis=1, keepdims=True)) \
            * inv_std[:, None]
        parts = [xp.reshape(gx, (-1,)), xp.sum(g_rows * x_hat, axis=0), xp.sum(g_rows, axis=0)]
        flat = xp.concatenate(parts) if is_numpy_like(xp) else xp.concat(parts)  # as ops/shape.py spells it
        if out is None:
            return flat
        out[...] = flat
        return out
    result = np.empty(size + 2 * d, x.dtype) if out is None else out
    gx_rows = result[:size].reshape(rows.shape)

    def each(block):
        sums = np.zeros(2 * d, np.float64)  # this block's Σ g·x̂ and Σ g, added up in float64
        first = _parts(block, rows)[0]
        x_hat_buffer = np.empty_like(rows[first])
        gy_buffer = None if w is None else np.empty_like(rows[first])
        for p in _parts(block, rows):
            n = p.stop - p.start
            x_hat = np.subtract(rows[p], mean[p, None], out=x_hat_buffer[:n])
            x_hat *= inv_std[p, None]
            sums[:d] += np.einsum("ij,ij->j", g_rows[p], x_hat)
            sums[d:] += np.einsum("ij->j", g_rows[p])
            gy = g_rows[p] if w is None else np.multiply(g_rows[p], w, out=gy_buffer[:n])
            mean_gy = np.einsum("ij->i", gy) * (1.0 / d)
            mean_gy_x_hat = np.einsum("ij,ij->i", gy, x_hat) * (1.0 / d)
            gx = np.multiply(x_hat, mean_gy_x_hat[:, None], out=gx_rows[p])
            np.subtract(gy, gx, out=gx)
            gx -= mean_gy[:, None]
            gx *= inv_std[p, None]
        return sums
    result[size:] = sum(_in_blocks(each, rows), np.zeros(2 * d))
    return result
