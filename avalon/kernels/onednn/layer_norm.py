"""Layer normalisation on oneDNN (float32 numpy arrays, C-contiguous, seen as (rows, D): every row
normalised over its D values, mean and variance one value per row, weight and bias D values).

Two kernels serve avalon/ops/layer_norm.py, as avalon/kernels/onednn/norm.py serves batch norm:

- `forward`: y = (x - mean)·σ⁻¹·weight + bias with the statistics given (oneDNN's "use global stats"):
  one read of x and one write of y, where numpy makes three passes.
- `backward`: the full gradient in x (through the statistics too) and the gradients of weight and bias,
  in one primitive where numpy makes several passes over each row block.

The statistics are numpy's (ops/layer_norm.py), as for batch norm. Which calls run here is decided by
ops/layer_norm.py at each call (norm.usable), so `avalon.kernels.onednn.set_enabled(False)` switches
these kernels off at the next call.
"""
import ctypes

import numpy as np

from . import library
from . import primitive as P
from . import norm
from .norm import BACKWARD, USE_SCALE, USE_SHIFT

_cache = P.Cache(64)


def _typed():
    lib = P.lib()
    if not getattr(lib, "_avalon_layer_norm_typed", False):
        p, i, u, f = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_float
        lib.dnnl_layer_normalization_forward_primitive_desc_create.argtypes = [p, p, i, p, p, p, f, u, p]
        lib.dnnl_layer_normalization_forward_primitive_desc_create.restype = i
        lib.dnnl_layer_normalization_backward_primitive_desc_create.argtypes = [p, p, i, p, p, p, p, f, u, p, p]
        lib.dnnl_layer_normalization_backward_primitive_desc_create.restype = i
        lib._avalon_layer_norm_typed = True
    return lib


def _descs(shape):
    """The (rows, D) data and (rows,) statistics descriptors, C-contiguous float32."""
    return P.Desc.plain(shape, np.float32), P.Desc.plain(shape[:1], np.float32)


def _forward_pd(data, stat, eps, flags, prop):
    lib = _typed()
    return P.make_pd(lambda pd, attr: lib.dnnl_layer_normalization_forward_primitive_desc_create(
        pd, library.engine(), prop, data.handle, data.handle, stat.handle, eps, flags, attr),
        "dnnl_layer_normalization_forward_primitive_desc_create")


def _forward_primitive(shape, eps, flags):
    data, stat = _descs(shape)
    return P.Primitive(_forward_pd(data, stat, eps, flags, P.FORWARD_INFERENCE), "layer_normalization_forward")


def _backward_primitive(shape, eps):
    lib = _typed()
    data, stat = _descs(shape)
    flags = USE_SCALE | USE_SHIFT
    hint = _forward_pd(data, stat, eps, flags, P.FORWARD_TRAINING)  # oneDNN wants the forward it inverts
    try:
        pd = P.make_pd(lambda pd, attr: lib.dnnl_layer_normalization_backward_primitive_desc_create(
            pd, library.engine(), BACKWARD, data.handle, data.handle, data.handle, stat.handle, eps, flags, hint,
            attr), "dnnl_layer_normalization_backward_primitive_desc_create")
    finally:
        lib.dnnl_primitive_desc_destroy(hint)
    return P.Primitive(pd, "layer_normalization_backward")


def forward(x, mean, var, weight, bias, eps, out):
    """`out` (rows, D) = (x - mean)·σ⁻¹·weight + bias for x (rows, D), mean and var (rows,), weight and
    bias (D,) or None."""
    flags = norm.forward_flags(weight, bias)
    key = ("layer_norm_forward", x.shape, float(eps), flags)
    return norm.run_forward(_cache.get(key, lambda: _forward_primitive(x.shape, eps, flags)), x, mean, var,
                            weight, bias, out)


def backward(g, x, mean, var, weight, eps, gx, gw, gb):
    """Writes the gradient of layer normalisation with x's own statistics (mean, biased var per row)
    into `gx` (rows, D, like x), and those of weight and bias into the (D,) arrays `gw` and `gb`;
    `weight` None is a weight of ones."""
    if weight is None:
        weight = np.ones(x.shape[1], np.float32)
    key = ("layer_norm_backward", x.shape, float(eps))
    prim = _cache.get(key, lambda: _backward_primitive(x.shape, eps))
    # oneDNN 3.2's layer-norm backward counts the shift among its inputs with USE_SHIFT (batch norm's does
    # not), though no gradient depends on it: zeros
    shift = np.zeros(x.shape[1], np.float32)
    prim.execute({P.ARG_SRC: x, P.ARG_DIFF_DST: g, P.ARG_MEAN: mean, P.ARG_VARIANCE: var, P.ARG_SCALE: weight,
                  P.ARG_SHIFT: shift, P.ARG_DIFF_SRC: gx, P.ARG_DIFF_SCALE: gw, P.ARG_DIFF_SHIFT: gb})
