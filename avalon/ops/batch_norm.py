"""Batch normalisation in training mode as three fused primitives (rules: avalon/rules/batch_norm.py).

    stats = batch_norm_stats(x)                             (2, C): each channel's mean and biased variance
    y     = batch_norm_apply(x, stats, weight, bias, eps)   (x - mean)·σ⁻¹·weight + bias, σ = sqrt(var + eps)
    flat  = batch_norm_backward(g, x, stats, weight, eps)   apply's gradient: x's (flattened), then
                                                            weight's and bias's, (x.size + 2C,)

Compiled replays also hold `batch_norm_relu` (relu(apply + skip) in the ReLU's buffer), made by the pass
avalon/compile/fuse_norm.py (switch: FUSE_BATCH_NORM_RELU there). On numpy it runs part by part, each
part normalised, summed and rectified in cache (RELU_IN_PARTS), oneDNN or not.

x is (N, C, *spatial); weight and bias are (C,) or None. `stats` must be x's own statistics: the rule of
`batch_norm_apply` returns the whole gradient in x, through the statistics too, and none to `stats`
(an operand for speed only, as `center`'s mean in ops/norm.py). The backward returns one flat array
because the three gradients come out of one pass; its rule (second derivatives) is written with the
decomposed primitives of ops/norm.py.

Why fused: the decomposed path (mean, center, mean square, normalize; normalize_grad, center, two
einsums) walks the activations five times each way. Here the statistics are two passes over x (a sum,
then the centred squares part by part, each part in cache: as exact as a two-pass variance), the
forward one more and the backward two. On float32 numpy arrays `apply` and `backward` run on oneDNN
when it is enabled (avalon/kernels/onednn/norm.py), decided at each call; elsewhere numpy runs them a
part of the batch at a time (PART_BYTES), the large ones in row blocks on both cores (threads_split).
"""
import math

import numpy as np

from ..backend import namespace
from ..kernels.onednn import norm as onednn_norm
from . import threads_split
from .primitive import Primitive, primitive

# Bytes of the batch a numpy pass works on at a time: the centred part (or the products of the
# backward) stays in L2 between the operations on it instead of going to memory and back.
PART_BYTES = 1 << 19
# batch_norm_relu on numpy part by part (below) rather than oneDNN's apply and then numpy's add and
# maximum over the whole: in the ResNet-ish step (avalon.profile, 9 calls of 64×64×32×32) 97 -> 56 ms at
# two threads and 147 -> 103 at one. False: the whole-array path, which the tests compare.
RELU_IN_PARTS = True


def axes_of(ndim):
    """The axes batch norm reduces over: all but the channel axis 1."""
    return (0,) + tuple(range(2, ndim))


def count(shape):
    """How many values each channel's statistics summarise."""
    return math.prod(shape) // shape[1]


def per_channel(v, ndim):
    """A (C,) array shaped (1, C, 1, …) to broadcast over (N, C, *spatial)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _channel_spec(ndim, operands):
    letters = "abcdefghijklmnopqrstuvwxyz"[:ndim]
    return ",".join([letters] * operands) + "->b"


def _parts(x):
    """Slices of x's first axis of about PART_BYTES each."""
    size = max(1, PART_BYTES * x.shape[0] // max(x.nbytes, 1))
    return [slice(i, i + size) for i in range(0, x.shape[0], size)]


def _summed(x, each, width):
    """Σ over x's parts of each(part slice) (`width` float32 sums), added up in float64."""
    total = np.zeros(width, np.float64)
    for part in _parts(x):
        total += each(part)
    return total


def _over_batch(part, x, *operands):
    """part(x rows, operand rows…) — per-channel sums over the batch — in row blocks on both cores when
    large (threads_split), else whole."""
    return threads_split.sum_over_rows(part, x.shape[0], x.nbytes, x, *operands)


@primitive("batch_norm_stats")
def batch_norm_stats(x):
    """(2, C): x's mean and biased variance per channel over the batch and the positions."""
    xp = namespace(x)
    n = count(x.shape)
    if xp is not np:
        axes = axes_of(x.ndim)
        mean = xp.mean(x, axis=axes)
        centred = x - xp.reshape(mean, (1, -1) + (1,) * (x.ndim - 2))
        return xp.stack([mean, xp.mean(centred * centred, axis=axes)])
    one = _channel_spec(x.ndim, 1)
    mean = _over_batch(lambda x: _summed(x, lambda p: np.einsum(one, x[p]), x.shape[1]), x) / n
    m = per_channel(mean.astype(x.dtype), x.ndim)
    two = _channel_spec(x.ndim, 2)

    def squares(x):
        buffer = np.empty_like(x[_parts(x)[0]])

        def each(p):
            centred = np.subtract(x[p], m, out=buffer[:len(x[p])])
            return np.einsum(two, centred, centred)
        return _summed(x, each, x.shape[1])

    var = _over_batch(squares, x) / n
    return np.stack([mean, var]).astype(x.dtype)


def _scale(stats, weight, eps, ndim):
    """σ⁻¹·weight, shaped per channel."""
    xp = namespace(stats)
    scale = 1.0 / xp.sqrt(stats[1] + eps)
    return per_channel(scale if weight is None else scale * weight, ndim)


def _per_channel_affine(x, stats, weight, bias, eps):
    """(mean, σ⁻¹·weight in x's dtype, bias or None), each shaped per channel for x."""
    return (per_channel(stats[0], x.ndim), _scale(stats, weight, eps, x.ndim).astype(x.dtype),
            None if bias is None else per_channel(bias, x.ndim))


def _normalize(x, mean, scale, shift, out):
    """out = (x - mean)·scale + shift, numpy; centred first: x·scale + (shift - mean·scale) would
    cancel digits where the mean is large."""
    y = np.subtract(x, mean, out=out)
    y *= scale
    if shift is not None:
        y += shift
    return y


@primitive("batch_norm_apply", out=True)
def batch_norm_apply(x, stats, weight, bias, eps, out=None):
    """(x - mean)·σ⁻¹·weight + bias per channel, with (mean, var) = stats (x's own: see the module
    docstring); weight and bias (C,) or None."""
    if onednn_norm.usable(x, stats, weight, bias, out):
        return onednn_norm.forward(x, stats[0], stats[1], weight, bias, eps, np.empty_like(x) if out is None else out)
    xp = namespace(x)
    mean, scale, shift = _per_channel_affine(x, stats, weight, bias, eps)
    if xp is not np:
        y = (x - mean) * scale
        return y if shift is None else y + shift

    def rows(x, out):
        for p in _parts(x):
            _normalize(x[p], mean, scale, shift, out[p])
    return threads_split.elementwise(np.empty_like(x) if out is None else out, rows, x)


@primitive("batch_norm_backward", out=True)
def batch_norm_backward(g, x, stats, weight, eps, out=None):
    """The gradient of `batch_norm_apply` for the output gradient `g`, with x's own statistics: one
    flat array holding x's gradient (x.size values, C order), then weight's (C) and bias's (C)."""
    xp = namespace(g, x)
    size, channels = x.size, x.shape[1]
    result = xp.empty((size + 2 * channels,), dtype=x.dtype) if out is None else out
    gx = xp.reshape(result[:size], x.shape)
    gw, gb = result[size:size + channels], result[size + channels:]
    if onednn_norm.usable(g, x, stats, weight, result):
        onednn_norm.backward(g, x, stats[0], stats[1], weight, eps, gx, gw, gb)
        return result
    n = count(x.shape)
    inv_std = 1.0 / xp.sqrt(stats[1] + eps)
    m = per_channel(stats[0], x.ndim)
    if xp is not np:
        axes = axes_of(x.ndim)
        sum_g, sum_gc = xp.sum(g, axis=axes), xp.sum(g * (x - m), axis=axes)
    else:
        one, two = _channel_spec(x.ndim, 1), _channel_spec(x.ndim, 2)

        def sums(g, x):
            buffer = np.empty_like(x[_parts(x)[0]])

            def each(p):
                centred = np.subtract(x[p], m, out=buffer[:len(x[p])])
                return np.concatenate([np.einsum(one, g[p]), np.einsum(two, g[p], centred)])
            return _summed(x, each, 2 * x.shape[1])
        both = _over_batch(sums, g, x)
        sum_g, sum_gc = both[:channels].astype(x.dtype), both[channels:].astype(x.dtype)
    w = inv_std if weight is None else inv_std * weight
    # gx = w·(g - Σg/n - x̂·Σ(g·x̂)/n) with x̂ = (x - mean)·σ⁻¹: a·g + b·(x - mean) + c per channel
    a = w
    b = -w * inv_std * inv_std * sum_gc / n
    c = -w * sum_g / n
    a, b, c = (per_channel(v, x.ndim).astype(x.dtype) for v in (a, b, c))
    gw[...] = sum_gc * inv_std
    gb[...] = sum_g
    if xp is not np:
        gx[...] = a * g + b * (x - m) + c
        return result

    def rows(g, x, out):
        buffer = np.empty_like(x[_parts(x)[0]])
        for p in _parts(x):
            centred = np.subtract(x[p], m, out=buffer[:len(x[p])])
            centred *= b
            np.multiply(g[p], a, out=out[p])
            out[p] += centred
            out[p] += c
    threads_split.elementwise(gx, rows, g, x)
    return result


def _batch_norm_relu(x, stats, weight, bias, skip, eps, out=None):
    """max(batch_norm_apply(x, stats, weight, bias, eps) + skip, 0), skip (like x) or None, in one buffer."""
    if RELU_IN_PARTS and namespace(x) is np:
        return _batch_norm_relu_in_parts(x, stats, weight, bias, skip, eps, np.empty_like(x) if out is None else out)
    y = batch_norm_apply.impl(x, stats, weight, bias, eps, out=out)
    xp = namespace(y)
    if skip is not None:
        y = xp.add(y, skip, out=y) if xp is np else y + skip
    return xp.maximum(y, 0, out=y) if xp is np else xp.maximum(y, 0)


def _batch_norm_relu_in_parts(x, stats, weight, bias, skip, eps, out):
    """`_batch_norm_relu` on numpy a part of the batch at a time (in row blocks on both cores when
    large): each part is normalised, summed and rectified in a scratch buffer that stays in cache, and
    written once. The same ufuncs as the numpy path of apply, add and maximum: the same bits."""
    mean, scale, shift = _per_channel_affine(x, stats, weight, bias, eps)

    def rows(x, *skip, out):
        buffer = np.empty_like(x[_parts(x)[0]])
        for p in _parts(x):
            y = _normalize(x[p], mean, scale, shift, buffer[:len(x[p])])  # out may be x's or skip's
            if skip:
                y += skip[0][p]
            np.maximum(y, 0, out=out[p])
    return threads_split.elementwise(out, rows, x, *([] if skip is None else [skip]))


# Made by the compiler's pass avalon/compile/fuse_norm.py from relu(batch_norm_apply(…)) and
# relu(batch_norm_apply(…) + skip) in compiled replays only (never differentiated): the normalised values
# go straight into the ReLU's buffer instead of one of their own, read again by a separate pass.
batch_norm_relu = Primitive("batch_norm_relu", _batch_norm_relu, out=True, differentiable=False)
