"""Max pooling on oneDNN (float32 numpy arrays, C-contiguous, layout N, C, *spatial with 1 to 3 spatial
axes), for avalon/ops/pool.py.

`max_pool_scatter` is the gradient of max pooling. oneDNN's backward needs the workspace of a training
forward (which position of each window won), which the tape does not keep: the forward runs again into
scratch memory, then the backward. Both JIT kernels together cost less than the numpy scatter's walk
over every kernel offset with its comparisons (LeNet's pools on AVX-512: 8.5 -> 5.9 ms and 3.4 -> 2.2
ms, one thread).

Where oneDNN has no JIT kernel for pooling over NCHW (AVX2), x and g are reordered to channels last and
the result back (`LAYOUTS`); where it has none for either, `max_pool_scatter` returns None and the
caller runs numpy's path.

oneDNN takes the first maximum of a window, as torch's CPU kernels (and the numpy path) do. A window
holding NaN is where they differ, so the caller passes such inputs to numpy (`has_nan`). The forward
stays numpy's: it propagates NaN, and oneDNN's would gain little on it (LeNet's first pool 3.1 -> 2.8 ms).
"""
import ctypes

import numpy as np

from . import library
from . import primitive as P

POOLING_MAX = 0x1FF  # dnnl_alg_kind_t dnnl_pooling_max

# Layouts tried in order, the first whose kernels are JIT taken (P.REFERENCE_KERNELS). On AVX2 oneDNN
# pools NCHW with its portable `simple_nchw` kernels: LeNet's first pool (128×32×26×26, 2×2), the
# scatter at two threads, 27 ms against numpy's 13; channels last, with the reorders in and out, 7.7
# (one thread: 14.5 against 13.7; the second pool 4.6 against 5.5).
LAYOUTS = ("plain", "channels_last")

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


def _desc(shape, layout):
    """A float32 descriptor of `shape` (N, C, *spatial) laid out "plain" (C-contiguous) or "channels_last"
    (N, *spatial, C in memory)."""
    if layout == "plain":
        return P.Desc.plain(shape, np.float32)
    return P.Desc.strided(shape, P.channels_last_strides(shape), np.float32)


def _channels_last_buffer(shape):
    """Scratch memory for an array of `shape` laid out channels last."""
    n, c, *spatial = shape
    return np.empty((n, *spatial, c), np.float32)


class _Plan:
    """The training forward and the backward of one pooling in one layout, with the workspace's size
    and, for channels last, the reorders of x and g into it and of the result out of it."""

    def __init__(self, layout, x_shape, y_shape, geometry):
        src, dst = _desc(x_shape, layout), _desc(y_shape, layout)
        self.forward = P.Primitive(_forward_pd(src, dst, geometry), "pooling_forward")
        lib = _typed()
        self.backward = P.Primitive(P.make_pd(lambda pd, attr: lib.dnnl_pooling_backward_primitive_desc_create(
            pd, library.engine(), POOLING_MAX, src.handle, dst.handle, *geometry, self.forward.pd, attr),
            "dnnl_pooling_backward_primitive_desc_create"), "pooling_backward")
        self.workspace = self.forward.md(P.QUERY_WORKSPACE_MD).size()
        self.reorders = None
        if layout != "plain":
            plain_x, plain_y = P.Desc.plain(x_shape, np.float32), P.Desc.plain(y_shape, np.float32)
            self.reorders = (P.reorder(plain_x, src), P.reorder(plain_y, dst), P.reorder(src, plain_x))

    def is_reference(self):
        return self.forward.is_reference() or self.backward.is_reference()

    def run(self, g, x, out):
        workspace = np.empty(max(self.workspace, 1), np.uint8)
        if self.reorders is None:
            self.forward.execute({P.ARG_SRC: x, P.ARG_DST: np.empty(g.shape, np.float32), P.ARG_WORKSPACE: workspace})
            self.backward.execute({P.ARG_DIFF_DST: g, P.ARG_DIFF_SRC: out, P.ARG_WORKSPACE: workspace})
            return
        x_in, g_in, result_out = self.reorders
        moved_x, moved_g = _channels_last_buffer(x.shape), _channels_last_buffer(g.shape)
        x_in.execute({P.ARG_SRC: x, P.ARG_DST: moved_x})
        g_in.execute({P.ARG_SRC: g, P.ARG_DST: moved_g})
        self.forward.execute({P.ARG_SRC: moved_x, P.ARG_DST: _channels_last_buffer(g.shape),
                              P.ARG_WORKSPACE: workspace})
        # the backward writes over moved_x, which the forward was the last to read
        self.backward.execute({P.ARG_DIFF_DST: moved_g, P.ARG_DIFF_SRC: moved_x, P.ARG_WORKSPACE: workspace})
        result_out.execute({P.ARG_SRC: moved_x, P.ARG_DST: out})


def _plan(x_shape, y_shape, geometry):
    """The first plan of LAYOUTS whose kernels are JIT on this CPU, or None (numpy's path then)."""
    for layout in LAYOUTS:
        try:
            plan = _Plan(layout, x_shape, y_shape, geometry)
        except library.OneDNNError:  # no kernel at all for this layout
            continue
        if not plan.is_reference():
            return plan
    return None


def max_pool_scatter(g, x, kernel, stride, padding, dilation, out=None):
    """Each window's `g` at the window's (first) maximum of x, into `out` (a new array like x when None);
    None (nothing written) where oneDNN has only reference kernels for this pooling on this CPU."""
    key = (tuple(x.shape), tuple(g.shape), tuple(kernel), tuple(stride), tuple(padding), tuple(dilation))
    plan = _cache.get(key, lambda: _plan(x.shape, g.shape, _geometry(kernel, stride, padding, dilation)))
    if plan is None:
        return None
    out = np.empty(x.shape, np.float32) if out is None else out
    plan.run(g, x, out)
    return out
