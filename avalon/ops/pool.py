"""Pooling primitives for 1, 2 and 3 spatial dimensions (layout N, C, *spatial).

Max pooling is three primitives closed under differentiation: `max_pool`, `max_pool_scatter` (its
gradient: each window's cotangent goes to the window's maximum, as torch) and `max_pool_gather` (the
adjoint of the scatter: each window picks the value at its maximum); the last two take the pooled
maxima as an operand, so they find each window's maximum with comparisons alone. Average pooling is `avg_pool`
and its adjoint `avg_pool_transpose`. Windows are walked one kernel offset at a time with strided
slices, so each step is one vectorised operation over the whole output.

On float32 numpy arrays `max_pool_scatter` runs on oneDNN when it is enabled and has a JIT kernel for
the pooling (avalon/kernels/onednn/pool.py), decided at each call.

`padding` holds (before, after) pairs: `before` is torch's padding, `after` whatever covers the last
window (ceil_mode may need more than torch's padding on the right, floor mode less).
"""
import itertools

import numpy as np

from ..backend import is_numpy_like, namespace
from ..kernels.onednn import pool as onednn_pool
from .conv import col2im, crop_spatial, pad_spatial, window_slices
from .primitive import primitive

# Bytes of the input pooled at a time (numpy): max pooling walks its input once per kernel offset with
# strided slices, and a part of whole samples this size stays in a core's L2 across those walks instead
# of coming from memory at each. LeNet's first pool (128×32×26×26, 2×2), one thread, caches cold: the
# backward scatter 16.6 -> 9.7 ms, the forward 6.4 -> 3.8 ms. 0 pools the whole batch at once.
PART_BYTES = 1 << 19


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


def _parts(xp, x, d):
    """Slices of `x`'s first axis of about PART_BYTES each (pooling is independent along every axis
    but the trailing `d`), or None where the whole is pooled at once (other namespaces, one part)."""
    if not PART_BYTES or not is_numpy_like(xp) or x.ndim <= d or x.nbytes <= PART_BYTES:
        return None
    size = max(1, PART_BYTES * x.shape[0] // x.nbytes)
    return [slice(i, i + size) for i in range(0, x.shape[0], size)]


def _by_parts(xp, x, d, whole, part, shape, dtype, out):
    """`whole()` where `x` is pooled at once, else `part(piece, into)` for each part of its first axis,
    writing into the matching rows of `out` (or a new array of `shape` and `dtype`)."""
    parts = _parts(xp, x, d)
    if parts is None:
        return whole()
    res = xp.empty(shape, dtype=dtype) if out is None else out
    for piece in parts:
        part(piece, res[piece])
    return res


@primitive("max_pool")
def max_pool(x, kernel, stride, padding, dilation):
    """The maximum of each window of `x`'s trailing axes (padding never wins; NaN propagates)."""
    xp = namespace(x)
    return _by_parts(xp, x, len(kernel), lambda: _max_pool(xp, x, kernel, stride, padding, dilation),
                     lambda p, into: _max_pool(xp, x[p], kernel, stride, padding, dilation, into=into),
                     tuple(x.shape[:-len(kernel)]) + _out(x, kernel, stride, padding, dilation), x.dtype, None)


def _max_pool(xp, x, kernel, stride, padding, dilation, into=None):
    out = _out(x, kernel, stride, padding, dilation)
    xpad = pad_spatial(x, padding, _lowest(xp, x.dtype))
    res = into
    for k, offset in enumerate(_offsets(kernel)):
        v = xpad[(...,) + window_slices(offset, stride, dilation, out)]
        if k == 0:
            res = _copy(xp, v) if res is None else _assign(res, v)
        elif is_numpy_like(xp):
            xp.maximum(res, v, out=res)
        else:
            res = xp.maximum(res, v)
    return res


def _assign(target, v):
    target[...] = v
    return target


def _first_maxima(xp, x, y, kernel, stride, padding, dilation):
    """For each kernel offset in row-major order, the mask of the windows whose maximum torch's CPU
    kernels take from that offset: the first position equal to the window's maximum `y`, or the last
    NaN of a window holding one. Exactly one mask is true per window; only boolean work on the output."""
    out = tuple(y.shape[-len(kernel):])
    xpad = pad_spatial(x, padding, _lowest(xp, x.dtype))
    views = [xpad[(...,) + window_slices(offset, stride, dilation, out)] for offset in _offsets(kernel)]
    masks, taken = [], None
    for v in views:
        equal = v == y  # never true in a NaN window (NaN != NaN)
        masks.append(equal if taken is None else equal & ~taken)
        taken = equal if taken is None else taken | equal
    if _floating(xp, y.dtype):
        nan = xp.isnan(y)
        if xp.any(nan):
            later = None
            for k in range(len(views) - 1, -1, -1):
                here = xp.isnan(views[k])
                last = here if later is None else here & ~later
                later = here if later is None else later | here
                masks[k] = xp.where(nan, last, masks[k])
    return masks


def _floating(xp, dtype):
    return np.issubdtype(dtype, np.floating) if is_numpy_like(xp) else xp.isdtype(dtype, "real floating")


@primitive("max_pool_scatter", out=True)
def max_pool_scatter(g, x, y, kernel, stride, padding, dilation, out=None):
    """The gradient of `max_pool` at `x` (whose windows' maxima are `y`): each window's `g` added at
    the window's maximum. `y` is an operand for speed only (it takes no gradient)."""
    if onednn_pool.usable(x, kernel, g, out) and not onednn_pool.has_nan(y):
        done = onednn_pool.max_pool_scatter(g, x, kernel, stride, padding, dilation, out)
        if done is not None:
            return done
    xp = namespace(g, x)
    return _by_parts(xp, x, len(kernel), lambda: _max_pool_scatter(xp, g, x, y, kernel, stride, padding, dilation, out),
                     lambda p, into: _max_pool_scatter(xp, g[p], x[p], y[p], kernel, stride, padding, dilation, into),
                     x.shape, g.dtype, out)


def _max_pool_scatter(xp, g, x, y, kernel, stride, padding, dilation, out):
    d = len(kernel)
    masks = _first_maxima(xp, x, y, kernel, stride, padding, dilation)
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[-d:], padding))
    spans = [dl * (k - 1) + 1 for k, dl in zip(kernel, dilation)]
    separate = all(s >= span for s, span in zip(stride, spans))  # no position in two windows
    tiled = separate and all(s == span and o * s == n for s, span, o, n in zip(stride, spans, g.shape[-d:], padded))
    cropped = any(lo or hi for lo, hi in padding)
    numpy_like = is_numpy_like(xp)
    if out is not None and not cropped:
        res = out
        if not tiled:
            res[...] = 0
    else:  # windows that tile the input write every position: nothing to clear first
        res = (xp.empty if tiled and numpy_like else xp.zeros)(tuple(x.shape[:-d]) + padded, dtype=g.dtype)
    zero = xp.zeros((), dtype=g.dtype)
    # g·mask is 3x faster than where(mask, g, 0) (measured) and the same unless g holds inf or NaN
    multiply = numpy_like and bool(xp.all(xp.isfinite(g)))
    for mask, offset in zip(masks, _offsets(kernel)):
        key = (...,) + window_slices(offset, stride, dilation, g.shape[-d:])
        if not numpy_like:
            res[key] = res[key] + xp.where(mask, g, zero)
        elif separate and multiply:
            xp.multiply(g, mask, out=res[key])
        elif separate:
            res[key] = xp.where(mask, g, zero)
        else:
            target = res[key]
            target += g * mask if multiply else xp.where(mask, g, zero)
    if out is not None and cropped:
        out[...] = crop_spatial(res, padding)
        return out
    return crop_spatial(res, padding)


@primitive("max_pool_gather", out=True)
def max_pool_gather(v, x, y, kernel, stride, padding, dilation, out=None):
    """`v` (shaped like `x`) read at each window's maximum of `x` (the maxima being `y`): the adjoint
    of `max_pool_scatter`."""
    xp = namespace(v, x)
    return _by_parts(xp, x, len(kernel), lambda: _max_pool_gather(xp, v, x, y, kernel, stride, padding, dilation, out),
                     lambda p, into: _max_pool_gather(xp, v[p], x[p], y[p], kernel, stride, padding, dilation, into),
                     y.shape, v.dtype, out)


def _max_pool_gather(xp, v, x, y, kernel, stride, padding, dilation, out):
    masks = _first_maxima(xp, x, y, kernel, stride, padding, dilation)
    vpad = pad_spatial(v, padding)
    res = None
    for mask, offset in zip(masks, _offsets(kernel)):
        picked = xp.where(mask, vpad[(...,) + window_slices(offset, stride, dilation, y.shape[-len(kernel):])],
                          xp.zeros((), dtype=v.dtype))
        res = picked if res is None else _accumulate(xp, res, picked)
    if out is not None:
        out[...] = res
        return out
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

