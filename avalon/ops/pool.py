"""Pooling primitives for 1, 2 and 3 spatial dimensions (layout N, C, *spatial).

Max pooling is three primitives closed under differentiation: `max_pool`, `max_pool_scatter` (its
gradient: each window's cotangent goes to the window's maximum, as torch) and `max_pool_gather` (the
adjoint of the scatter: each window picks the value at its maximum). Average pooling is `avg_pool`
and its adjoint `avg_pool_transpose`. Windows are walked one kernel offset at a time with strided
slices, so each step is one vectorised operation over the whole output.

`padding` holds (before, after) pairs: `before` is torch's padding, `after` whatever covers the last
window (ceil_mode may need more than torch's padding on the right, floor mode less).
"""
import itertools

import numpy as np

from ..backend import is_numpy_like, namespace
from .conv import col2im, crop_spatial, pad_spatial, window_slices
from .primitive import primitive


def pool_geometry(size, kernel, stride, padding, dilation, ceil_mode):
    """torch's output length of a pooling window over `size`, and the (before, after) padding that
    covers every window exactly."""
    span = dilation * (kernel - 1) + 1
    out = (size + 2 * padding - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window would start in the right padding: torch drops it
    after = max((out - 1) * stride + span - size - padding, 0)
    return out, (padding, after)


def _out(x, kernel, stride, padding, dilation):
    d = len(kernel)
    return tuple((n + lo + hi - dl * (k - 1) - 1) // s + 1
                 for n, k, s, (lo, hi), dl in zip(x.shape[-d:], kernel, stride, padding, dilation))


def _offsets(kernel):
    return itertools.product(*map(range, kernel))


def _lowest(xp, dtype):
    """What padding holds for max pooling: -inf, or the smallest integer."""
    floating = np.issubdtype(dtype, np.floating) if is_numpy_like(xp) else xp.isdtype(dtype, "real floating")
    return -np.inf if floating else xp.iinfo(dtype).min


@primitive("max_pool")
def max_pool(x, kernel, stride, padding, dilation):
    """The maximum of each window of `x`'s trailing axes (padding never wins; NaN propagates)."""
    xp = namespace(x)
    out = _out(x, kernel, stride, padding, dilation)
    xpad = pad_spatial(x, padding, _lowest(xp, x.dtype))
    res = None
    for offset in _offsets(kernel):
        v = xpad[(...,) + window_slices(offset, stride, dilation, out)]
        if res is None:
            res = _copy(xp, v)
        elif is_numpy_like(xp):
            xp.maximum(res, v, out=res)
        else:
            res = xp.maximum(res, v)
    return res


def argmax_offsets(x, kernel, stride, padding, dilation):
    """Per window, the number (row-major) of the kernel offset holding its maximum: the first maximum,
    or the last NaN, exactly as torch's CPU kernels choose."""
    xp = namespace(x)
    best = max_pool.impl(x, kernel, stride, padding, dilation)
    out = tuple(best.shape[-len(kernel):])
    xpad = pad_spatial(x, padding, _lowest(xp, x.dtype))
    views = [xpad[(...,) + window_slices(offset, stride, dilation, out)] for offset in _offsets(kernel)]
    index = xp.zeros(best.shape, dtype=xp.int32)
    # backwards, so that the first offset equal to the maximum is the one left standing
    for k in range(len(views) - 1, -1, -1):
        index = _set_where(xp, index, views[k] == best, k)
    nan = xp.isnan(best)
    if xp.any(nan):  # a NaN maximum: torch keeps the last NaN of the window
        for k in range(1, len(views)):
            index = _set_where(xp, index, xp.isnan(views[k]), k)
    return index


def _set_where(xp, index, mask, k):
    if is_numpy_like(xp):
        xp.copyto(index, k, where=mask, casting="unsafe")
        return index
    return xp.where(mask, xp.asarray(k, dtype=index.dtype), index)


@primitive("max_pool_scatter")
def max_pool_scatter(g, x, kernel, stride, padding, dilation):
    """The gradient of `max_pool` at `x`: each window's `g` added at the window's maximum."""
    xp = namespace(g, x)
    index = argmax_offsets(x, kernel, stride, padding, dilation)
    d = len(kernel)
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[-d:], padding))
    res = xp.zeros(tuple(x.shape[:-d]) + padded, dtype=g.dtype)
    zero = xp.zeros((), dtype=g.dtype)
    for k, offset in enumerate(_offsets(kernel)):
        key = (...,) + window_slices(offset, stride, dilation, g.shape[-d:])
        contribution = xp.where(index == k, g, zero)
        if is_numpy_like(xp):
            target = res[key]
            target += contribution
        else:
            res[key] = res[key] + contribution
    return crop_spatial(res, padding)


@primitive("max_pool_gather")
def max_pool_gather(v, x, kernel, stride, padding, dilation):
    """`v` (shaped like `x`) read at each window's maximum of `x`: the adjoint of `max_pool_scatter`."""
    xp = namespace(v, x)
    index = argmax_offsets(x, kernel, stride, padding, dilation)
    vpad = pad_spatial(v, padding)
    res = xp.zeros(index.shape, dtype=v.dtype)
    out = index.shape[-len(kernel):]
    for k, offset in enumerate(_offsets(kernel)):
        res = xp.where(index == k, vpad[(...,) + window_slices(offset, stride, dilation, out)], res)
    return res


def _inverse_divisor(xp, dtype, shape, out, kernel, stride, padding, count_include_pad, divisor_override):
    """1 / (torch's divisor) per output position: the product of one count per axis."""
    if divisor_override:
        return xp.asarray(1.0 / divisor_override, dtype=dtype)
    inverse = np.ones((), dtype=np.float64)
    for axis, (n, o, k, s, (before, _)) in enumerate(zip(shape, out, kernel, stride, padding)):
        start = np.arange(o) * s - before
        end = np.minimum(start + k, n + before)  # windows never count the ceil-mode overhang
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        count = (end - start).reshape((o,) + (1,) * (len(out) - axis - 1))
        inverse = inverse / count
    return xp.asarray(inverse, dtype=dtype)


@primitive("avg_pool")
def avg_pool(x, kernel, stride, padding, count_include_pad, divisor_override):
    """The mean of each window of `x`'s trailing axes (torch's avg_pool: zero padding, and a divisor
    that counts padding or not, or is `divisor_override`)."""
    xp = namespace(x)
    d = len(kernel)
    ones = (1,) * d
    out = _out(x, kernel, stride, padding, ones)
    xpad = pad_spatial(x, padding)
    res = None
    for offset in _offsets(kernel):
        v = xpad[(...,) + window_slices(offset, stride, ones, out)]
        res = _copy(xp, v) if res is None else _accumulate(xp, res, v)
    scale = _inverse_divisor(xp, x.dtype, x.shape[-d:], out, kernel, stride, padding, count_include_pad,
                             divisor_override)
    return _multiply(xp, res, scale)


def _copy(xp, v):
    return v.copy() if is_numpy_like(xp) else xp.asarray(v, copy=True)


def _accumulate(xp, acc, v):
    if is_numpy_like(xp):
        acc += v
        return acc
    return acc + v


def _multiply(xp, acc, v):
    if is_numpy_like(xp):
        acc *= v
        return acc
    return acc * v


@primitive("avg_pool_transpose")
def avg_pool_transpose(g, shape, kernel, stride, padding, count_include_pad, divisor_override):
    """The adjoint of `avg_pool`: each window's `g` / divisor spread over the window (input `shape`)."""
    xp = namespace(g)
    d = len(kernel)
    out = tuple(g.shape[-d:])
    scale = _inverse_divisor(xp, g.dtype, shape, out, kernel, stride, padding, count_include_pad, divisor_override)
    spread = g * scale
    lead = spread.ndim - d
    # col2im wants kernel axes: broadcast (no copy) the same values to every kernel offset
    cols = xp.broadcast_to(xp.reshape(spread, tuple(spread.shape[:lead]) + (1,) * d + out),
                           tuple(spread.shape[:lead]) + tuple(kernel) + out)
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(shape, padding))
    return crop_spatial(col2im(cols, padded, kernel, stride, (1,) * d, lead=lead), padding)


def adaptive_windows(size, out):
    """torch's adaptive-pooling windows along one axis: (start, end) of output i, possibly overlapping."""
    return [((i * size) // out, ((i + 1) * size + out - 1) // out) for i in range(out)]


def adaptive_gather_index(size, out):
    """Indices (out * width,) listing every window's positions, each short window padded with its own
    last position (a repeat never changes a maximum nor which element holds it)."""
    spans = adaptive_windows(size, out)
    width = max(end - start for start, end in spans)
    return np.array([min(start + j, end - 1) for start, end in spans for j in range(width)], dtype=np.int64), width

