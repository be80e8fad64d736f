"""Batch normalisation on oneDNN (float32 numpy arrays, C-contiguous, layout N, C, *spatial).

Two kernels serve avalon/ops/batch_norm.py:

- `forward`: y = (x - mean)·σ⁻¹·weight + bias with the statistics given (oneDNN's "use global stats"):
  one read of x and one write of y, where numpy makes two passes.
- `backward`: the full gradient in x (through the statistics too) and the gradients of weight and bias,
  from x, the batch's own statistics and the output gradient: two passes where the numpy path of the
  decomposed primitives made five.

The statistics are computed by numpy (ops/batch_norm.py: a centred second pass over cache-sized parts,
as accurate as a two-pass variance and faster than oneDNN's own statistics here). `usable` says when
these kernels run; every other case takes the numpy path, and `avalon.kernels.onednn.set_enabled(False)`
switches them off at the next call.
"""
import ctypes

import numpy as np

from . import library
from . import primitive as P

# dnnl_normalization_flags_t
USE_GLOBAL_STATS, USE_SCALE, USE_SHIFT = 0x1, 0x2, 0x4
BACKWARD = 128  # dnnl_prop_kind_t dnnl_backward: the gradient in the data and in scale and shift

_cache = P.Cache(64)


def _typed():
    lib = P.lib()
    if not getattr(lib, "_avalon_norm_typed", False):
        p, i, u, f = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_float
        lib.dnnl_batch_normalization_forward_primitive_desc_create.argtypes = [p, p, i, p, p, f, u, p]
        lib.dnnl_batch_normalization_forward_primitive_desc_create.restype = i
        lib.dnnl_batch_normalization_backward_primitive_desc_create.argtypes = [p, p, i, p, p, p, f, u, p, p]
        lib.dnnl_batch_normalization_backward_primitive_desc_create.restype = i
        lib._avalon_norm_typed = True
    return lib


def usable(*arrays):
    """Whether the oneDNN kernels take these operands: oneDNN switched on, every array a C-contiguous
    float32 numpy array (None stands for an absent weight or bias)."""
    return library.enabled() and all(
        a is None or (type(a) is np.ndarray and a.dtype == np.float32 and a.flags.c_contiguous) for a in arrays)


def _forward_pd(desc, eps, flags, prop):
    lib = _typed()
    return P.make_pd(lambda pd, attr: lib.dnnl_batch_normalization_forward_primitive_desc_create(
        pd, library.engine(), prop, desc.handle, desc.handle, eps, flags, attr),
        "dnnl_batch_normalization_forward_primitive_desc_create")


def _forward_primitive(shape, eps, flags):
    desc = P.Desc.plain(shape, np.float32)
    return P.Primitive(_forward_pd(desc, eps, flags, P.FORWARD_INFERENCE), "batch_normalization_forward")


def _backward_primitive(shape, eps):
    lib = _typed()
    desc = P.Desc.plain(shape, np.float32)
    flags = USE_SCALE | USE_SHIFT
    hint = _forward_pd(desc, eps, flags, P.FORWARD_TRAINING)  # oneDNN wants the forward it inverts
    try:
        pd = P.make_pd(lambda pd, attr: lib.dnnl_batch_normalization_backward_primitive_desc_create(
            pd, library.engine(), BACKWARD, desc.handle, desc.handle, desc.handle, eps, flags, hint, attr),
            "dnnl_batch_normalization_backward_primitive_desc_create")
    finally:
        lib.dnnl_primitive_desc_destroy(hint)
    return P.Primitive(pd, "batch_normalization_backward")


def forward(x, mean, var, weight, bias, eps, out):
    """`out` (like x) = (x - mean)·σ⁻¹·weight + bias per channel; mean, var, weight and bias are (C,)
    float32 arrays (weight and bias may be None)."""
    flags = forward_flags(weight, bias)
    key = ("batch_norm_forward", x.shape, float(eps), flags)
    return run_forward(_cache.get(key, lambda: _forward_primitive(x.shape, eps, flags)), x, mean, var, weight,
                       bias, out)


def forward_flags(weight, bias):
    """A normalisation forward's flags: the statistics given, scale and shift where there are any."""
    return USE_GLOBAL_STATS | (USE_SCALE if weight is not None else 0) | (USE_SHIFT if bias is not None else 0)


def run_forward(prim, x, mean, var, weight, bias, out):
    """Run a (batch or layer) normalisation forward made with `forward_flags(weight, bias)`; returns out."""
    arrays = {P.ARG_SRC: x, P.ARG_DST: out, P.ARG_MEAN: mean, P.ARG_VARIANCE: var}
    if weight is not None:
        arrays[P.ARG_SCALE] = weight
    if bias is not None:
        arrays[P.ARG_SHIFT] = bias
    prim.execute(arrays)
    return out


def backward(g, x, mean, var, weight, eps, gx, gw, gb):
    """Writes the gradient of batch normalisation with x's own statistics (mean, biased var) into `gx`
    (like x), and those of weight and bias into the (C,) arrays `gw` and `gb`; `weight` None is a
    weight of ones."""
    if weight is None:
        weight = np.ones(x.shape[1], np.float32)
    key = ("batch_norm_backward", x.shape, float(eps))
    prim = _cache.get(key, lambda: _backward_primitive(x.shape, eps))
    prim.execute({P.ARG_SRC: x, P.ARG_DIFF_DST: g, P.ARG_MEAN: mean, P.ARG_VARIANCE: var, P.ARG_SCALE: weight,
                  P.ARG_DIFF_SRC: gx, P.ARG_DIFF_SCALE: gw, P.ARG_DIFF_SHIFT: gb})
