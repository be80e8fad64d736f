"""Softmax over the last axis and its backward on oneDNN's softmax primitive (float32): attention's
weights and the gradient of its scores.

numpy's softmax walks the scores five times (max, subtract, exp, sum, divide) and its backward four;
oneDNN does each in one pass over a row in cache: (16, 4, 128, 128) scores at one thread, forward
2.16 -> 0.54 ms (in place), backward p·(dp - Σ dp·p) 1.54 -> 0.52 ms.

`forward(x, out)` writes softmax(x) into `out` (which may be x) and returns True; `backward(dp, p,
out=None)` returns p·(dp - Σ_last dp·p), in `out` when given. Where they do not apply they write
nothing and return False / None: `SOFTMAX = False` (the switch), oneDNN off or missing, an array not
a float32 numpy array, layouts oneDNN cannot describe, shapes that differ, a call on more than
gemm.MAX_THREADS OpenMP threads outside a replay (as a product, gemm._threads_fit), `out` overlapping an
input other than in place, oneDNN offering only a reference kernel for the layout on this CPU
(P.REFERENCE_KERNELS: the backward on AVX2). Fully masked rows (every score -inf) are the caller's
to keep away from `forward`: oneDNN gives them NaN where numpy's path gives zeros; `backward` gives
zeros for rows of zero weights as the numpy path does. Primitives are cached per shape and strides.
"""
import ctypes

import numpy as np

from . import gemm, library
from . import primitive as P

SOFTMAX = True  # False: attention's softmax and its backward on numpy
SOFTMAX_ACCURATE = 0x30000  # dnnl_alg_kind_t dnnl_softmax_accurate (3.x)

_cache = P.Cache(64)


def _typed():
    handle = P.lib()
    if not getattr(handle, "_avalon_softmax_typed", False):
        p, i = ctypes.c_void_p, ctypes.c_int
        handle.dnnl_softmax_forward_primitive_desc_create.restype = i
        handle.dnnl_softmax_forward_primitive_desc_create.argtypes = [p, p, i, i, p, p, i, p]
        handle.dnnl_softmax_backward_primitive_desc_create.restype = i
        handle.dnnl_softmax_backward_primitive_desc_create.argtypes = [p, p, i, p, p, p, i, p, p]
        handle._avalon_softmax_typed = True
    return handle


def _forward_pd(src, dst, axis):
    engine = library.engine()
    return P.make_pd(lambda pd, attr: _typed().dnnl_softmax_forward_primitive_desc_create(
        pd, engine, P.FORWARD_TRAINING, SOFTMAX_ACCURATE, src.handle, dst.handle, axis, attr),
        "dnnl_softmax_forward_primitive_desc_create")


def _forward(x, out):
    key = ("forward", x.shape, x.strides, out.strides)
    return _cache.get(key, lambda: P.Primitive(_forward_pd(P.Desc.of(x), P.Desc.of(out), x.ndim - 1),
                                               "softmax forward").unless_reference())


def _backward(dp, p, out):
    key = ("backward", dp.shape, dp.strides, p.strides, out.strides)

    def make():
        diff_src, diff_dst, dst = P.Desc.of(out), P.Desc.of(dp), P.Desc.of(p)
        hint = _forward_pd(dst, dst, p.ndim - 1)
        try:
            pd = P.make_pd(lambda pd, attr: _typed().dnnl_softmax_backward_primitive_desc_create(
                pd, library.engine(), SOFTMAX_ACCURATE, diff_src.handle, diff_dst.handle, dst.handle,
                p.ndim - 1, hint, attr), "dnnl_softmax_backward_primitive_desc_create")
        finally:
            P.lib().dnnl_primitive_desc_destroy(hint)
        return P.Primitive(pd, "softmax backward").unless_reference()

    return _cache.get(key, make)


def _usable(*arrays):
    shape = arrays[0].shape
    return (SOFTMAX and gemm.applies(*arrays) and gemm._threads_fit(None) and 0 < arrays[0].ndim <= 12
            and all(x.shape == shape and P.describable(x) for x in arrays) and arrays[0].size > 0)


def forward(x, out):
    """out = softmax(x) over the last axis (out may be x itself); False where it does not apply."""
    if not _usable(x, out) or not out.flags.writeable or (out is not x and np.may_share_memory(out, x)):
        return False
    primitive = _forward(x, out)
    if primitive is None:
        return False
    primitive.execute({P.ARG_SRC: x, P.ARG_DST: out})
    return True


def backward(dp, p, out=None):
    """p·(dp - Σ_last dp·p), the gradient of softmax's input from its output's gradient `dp` and its
    output `p`, into `out` (a new array when None); None where it does not apply."""
    if not _usable(dp, p):
        return None
    if out is None:
        out = np.empty(dp.shape, dp.dtype)
    elif not _usable(dp, out) or not out.flags.writeable or np.may_share_memory(out, dp) \
            or np.may_share_memory(out, p):
        return None
    primitive = _backward(dp, p, out)
    if primitive is None:
        return None
    primitive.execute({P.ARG_DST: p, P.ARG_DIFF_DST: dp, P.ARG_DIFF_SRC: out})
    return out
