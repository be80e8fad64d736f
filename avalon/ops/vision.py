"""Separable resampling: interpolation (nearest, linear) and adaptive average pooling.

Each of these is a linear map applied along every spatial axis in turn (a bilinear image is a linear
interpolation of rows, then of columns), so one pair of primitives serves them all: `resample`
applies a small (out, in) matrix per trailing axis and `resample_transpose` applies the transposed
matrices (its adjoint, hence the gradient of each other). A matrix is described by a static tuple:

    ("nearest", in, out, scale, exact)         torch's 'nearest' / 'nearest-exact' index rule
    ("linear", in, out, align_corners, scale)  torch's 'linear' / 'bilinear' / 'trilinear' weights
    ("area", in, out)                          torch's adaptive average pooling windows

`scale` is the user's scale factor or None. Indices and weights are computed exactly as torch's CPU
kernels do, in the input's float precision, so results match to rounding of the sums.
"""
import functools

import numpy as np

from ..backend import namespace
from .primitive import primitive


def _float(dtype_name):
    # array-API dtypes print as 'module.float32': the numpy dtype of the same name
    dtype = np.dtype(dtype_name.rsplit(".", 1)[-1])
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float32)


def _scale_value(scale, n, o, dtype):
    # torch: 1 / scale_factor when one was given, else in / out, in the compute precision
    return dtype.type(1.0 / scale) if scale is not None and scale > 0 else dtype.type(n) / dtype.type(o)


def _nearest_index(n, o, scale, exact):
    if o == n and not exact:
        return np.arange(o)
    if o == 2 * n and not exact:
        return np.arange(o) >> 1
    f = np.float32  # torch computes the nearest index in float whatever the input type
    s = _scale_value(scale, n, o, np.dtype(f))
    pos = (np.arange(o, dtype=f) + f(0.5)) * s if exact else np.arange(o, dtype=f) * s
    return np.minimum(np.floor(pos).astype(np.int64), n - 1)


def _linear_weights(n, o, align_corners, scale, dtype):
    t = dtype.type
    if align_corners:
        s = t(n - 1) / t(o - 1) if o > 1 else t(0)
        src = s * np.arange(o, dtype=dtype)
    else:
        s = _scale_value(scale, n, o, dtype)
        src = s * (np.arange(o, dtype=dtype) + t(0.5)) - t(0.5)
        src = np.where(src < 0, t(0), src).astype(dtype)
    i0 = np.minimum(src.astype(np.int64), n - 1)
    lam1 = np.clip(src - i0.astype(dtype), t(0), t(1)).astype(dtype)
    i1 = i0 + (i0 < n - 1)
    return i0, i1, (t(1) - lam1).astype(dtype), lam1


@functools.lru_cache(maxsize=256)
def axis_matrix(desc, dtype_name):
    """The (out, in) numpy matrix of one axis described by `desc`, in dtype `dtype_name`; None when
    it is the identity (that axis is skipped)."""
    dtype = _float(dtype_name)
    kind, n, o = desc[:3]
    m = np.zeros((o, n), dtype=dtype)
    rows = np.arange(o)
    if kind == "nearest":
        m[rows, _nearest_index(n, o, desc[3], desc[4])] = 1
    elif kind == "linear":
        i0, i1, lam0, lam1 = _linear_weights(n, o, desc[3], desc[4], dtype)
        np.add.at(m, (rows, i0), lam0)
        np.add.at(m, (rows, i1), lam1)
    elif kind == "area":
        for i in range(o):
            start, end = (i * n) // o, ((i + 1) * n + o - 1) // o
            m[i, start:end] = dtype.type(1) / dtype.type(end - start)
    else:
        raise ValueError(f"unknown resampling kind {kind!r}")
    if o == n and np.array_equal(m, np.eye(n, dtype=dtype)):
        return None
    m.setflags(write=False)
    return m


def _along(xp, x, axis, m):
    """Apply matrix `m` (out, in) along `axis` of x."""
    if m.shape[1] == 1:
        # one input along the axis (the gradient of pooling to size 1): a broadcast product, the same
        # numbers as the batch of one-term matrix products below, which took 21 ms for a (64, 64, 32, 32)
        # gradient where this takes a pass over it
        column = xp.reshape(m, (m.shape[0],) + (1,) * (x.ndim - 1 - axis))
        return x * column
    if axis == x.ndim - 1:
        return xp.matmul(x, m.T if hasattr(m, "T") else xp.matrix_transpose(m))
    before = int(np.prod(x.shape[:axis]))
    after = int(np.prod(x.shape[axis + 1:]))
    y = xp.matmul(m, xp.reshape(x, (before, x.shape[axis], after)))
    return xp.reshape(y, tuple(x.shape[:axis]) + (m.shape[0],) + tuple(x.shape[axis + 1:]))


def _on(xp, a):
    return a if xp is np else xp.asarray(a)


def _apply(x, maps, transpose):
    xp = namespace(x)
    source = x
    first = x.ndim - len(maps)
    for axis in range(x.ndim - 1, first - 1, -1):
        m = axis_matrix(maps[axis - first], str(x.dtype))
        if m is None:
            continue
        if transpose:
            m = m.T
        elif maps[axis - first][0] == "nearest":
            # a copy of the chosen elements: exact even for inf and NaN, which a product would smear
            index = _nearest_index(*maps[axis - first][1:])
            x = xp.take(x, _on(xp, index), axis=axis)
            continue
        x = _along(xp, x, axis, _on(xp, m))
    # a primitive's result must not alias its operand (the compiler may recycle the result's buffer)
    return _copy(xp, x) if x is source else x


def _copy(xp, x):
    return x.copy() if hasattr(x, "copy") else xp.asarray(x, copy=True)


@primitive("resample")
def resample(x, maps):
    """`x` with each trailing axis mapped through the matrix its description in `maps` names."""
    return _apply(x, maps, transpose=False)


@primitive("resample_transpose")
def resample_transpose(g, maps):
    """The adjoint of `resample`: each trailing axis mapped through the transposed matrix."""
    return _apply(g, maps, transpose=True)
