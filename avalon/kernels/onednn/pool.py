"""Max pooling on oneDNN (float32 numpy arrays, C-contiguous, layout N, C, *spatial with 1 to 3 spatial
axes), for avalon/ops/pool.py.

`max_pool_scatter` is the gradient of max pooling. oneDNN's backward needs the workspace of a training
forward (which position of each window won), which the tape does not keep: the forward runs again into
scratch memory, then the backward. Both JIT kernels together cost less than the numpy scatter's walk
over every kernel offset with its comparisons (LeNet's pools: 8.5 -> 5.9 ms and 3.4 -> 2.2 ms, one
thread).

oneDNN takes the first maximum of a window, as torch's CPU kernels (and the numpy path) do. A window
holding NaN is where they differ, so the caller passes such inputs to numpy (`has_nan`). The forward
stays numpy's: it propagates NaN, and oneDNN's would gain little on it (LeNet's first pool 3.1 -> 2.8 ms).
"""
import ctypes

import numpy as np

from . import library
from . import primitive as P

POOLING_MAX = 0x1FF  # dnnl_alg_kind_t dnnl_pooling_max

_cache = P.Cache(64)


def _typed():
    lib = P.lib()
    if not getattr(lib, "_avalon_pool_typed", False):
        p, i = ctypes.c_void_p, ctypes.c_int
        lib.dnnl_pooling_forward_primitive_desc_create.argtypes = [p, p, i, i, p, p, p, p, p, p, p, p]
        lib.dnnl_pooling_forward_primitive_desc_create.restype = i
        lib.dnnl_pooling_backward_primitive_desc_create.argtypes = [p, p, i, p, p, p, p, p, p, p, p, p]
        lib.dnnl_pooling_backward_primitive_desc_create.restype = i
        lib._avalon_pool_typed = True
    return lib


def usable(x, kernel, *arrays):
    """Whether oneDNN pools `x` over its trailing len(kernel) axes: oneDNN switched on, x (N, C, *spatial)
    with 1 to 3 spatial axes, and x and every other array given C-contiguous float32 numpy arrays."""
    return library.enabled() and x.ndim == len(kernel) + 2 and 1 <= len(kernel) <= 3 and all(
        a is None or (type(a) is np.ndarray and a.dtype == np.float32 and a.flags.c_contiguous)
        for a in (x, *arrays))


def has_nan(y):
    """Whether a pooled result holds NaN (its windows' maxima are then numpy's to find)."""
    return bool(np.isnan(np.sum(y)))


def _geometry(kernel, stride, padding, dilation):
    """The dnnl_dims_t of strides, kernel, dilation (oneDNN counts it from 0), left and right padding."""
    return (P.dims(stride), P.dims(kernel), P.dims([d - 1 for d in dilation]),
            P.dims([lo for lo, _ in padding]), P.dims([hi for _, hi in padding]))


def _forward_pd(src, dst, geometry):
    lib = _typed()
    return P.make_pd(lambda pd, attr: lib.dnnl_pooling_forward_primitive_desc_create(
        pd, library.engine(), P.FORWARD_TRAINING, POOLING_MAX, src.handle, dst.handle, *geometry, attr),
        "dnnl_pooling_forward_primitive_desc_create")


def _primitives(x_shape, y_shape, kernel, stride, padding, dilation):
    """(the training forward, the backward, the workspace's size in bytes)."""
    src, dst = P.Desc.plain(x_shape, np.float32), P.Desc.plain(y_shape, np.float32)
    geometry = _geometry(kernel, stride, padding, dilation)
    forward = P.Primitive(_forward_pd(src, dst, geometry), "pooling_forward")
    lib = _typed()
    backward = P.Primitive(P.make_pd(lambda pd, attr: lib.dnnl_pooling_backward_primitive_desc_create(
        pd, library.engine(), POOLING_MAX, src.handle, dst.handle, *geometry, forward.pd, attr),
        "dnnl_pooling_backward_primitive_desc_create"), "pooling_backward")
    return forward, backward, forward.md(P.QUERY_WORKSPACE_MD).size()


def max_pool_scatter(g, x, kernel, stride, padding, dilation, out=None):
    """Each window's `g` at the window's (first) maximum of x, into `out` (a new array like x when None)."""
    geometry = (kernel, stride, padding, dilation)
    key = (tuple(x.shape), tuple(g.shape), tuple(kernel), tuple(stride), tuple(padding), tuple(dilation))
    forward, backward, size = _cache.get(key, lambda: _primitives(x.shape, g.shape, *geometry))
    workspace = np.empty(max(size, 1), np.uint8)
    forward.execute({P.ARG_SRC: x, P.ARG_DST: np.empty(g.shape, np.float32), P.ARG_WORKSPACE: workspace})
    out = np.empty(x.shape, np.float32) if out is None else out
    backward.execute({P.ARG_DIFF_DST: g, P.ARG_DIFF_SRC: out, P.ARG_WORKSPACE: workspace})
    return out
