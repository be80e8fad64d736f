"""Batched float32 matrix products on oneDNN's matmul primitive: one call for a whole batch of strided
matrices (attention's q·kᵀ and p·v over batch × heads, and their gradients).

numpy's matmul runs such a batch as one small BLAS call per matrix; dnnl_sgemm called per matrix is
slower still on these sizes (16×4 products of 128×64 by 64×128: numpy 1.2 ms, a loop of sgemm 1.5,
the primitive 0.84, one thread). The primitive reads every operand where it lies (the heads of a
(B, L, H, E) array seen as (B, H, L, E), a transposed key) and writes into a strided `out`, so neither
the head split nor the merge needs a copy for the product.

`product(a, b, out, alpha, threads)` → the result, or None where it does not apply: the caller
checked that oneDNN is on, the arrays are float32 numpy arrays and the call runs on few enough threads
(gemm.matmul); here both operands must have the same batch dimensions (no broadcasting), at least
`SMALLEST` multiply-adds in all, two matrices or more, no empty axis, and strides oneDNN can describe
(non-negative, whole elements). `alpha` scales the product in the same pass (an eltwise-linear post-op: attention's
1/√E, instead of a scaled copy of q). Primitives are cached per shapes, strides and alpha.
"""
import ctypes

import numpy as np

from . import library
from . import primitive as P

SMALLEST = 1 << 21  # multiply-adds in the whole batch below which numpy's call is as cheap
ELTWISE_LINEAR = 0x26  # dnnl_alg_kind_t dnnl_eltwise_linear (3.x): alpha·x + beta
MAX_DIMS = 12  # DNNL_MAX_NDIMS
# single products (gemm.matmul's 2-D path) on the primitive too, whose brgemm kernels beat dnnl_sgemm on
# the workloads' shapes (see gemm._product); False: dnnl_sgemm
MATRICES = True

_F32 = np.dtype(np.float32)
_cache = P.Cache(128)


def _typed():
    handle = P.lib()
    if not getattr(handle, "_avalon_matmul_typed", False):
        p, i, f = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
        typed = {
            "dnnl_matmul_primitive_desc_create": [p, p, p, p, p, p, p],
            "dnnl_post_ops_create": [p],
            "dnnl_post_ops_append_eltwise": [p, i, f, f],
            "dnnl_primitive_attr_set_post_ops": [p, p],
            "dnnl_post_ops_destroy": [p],
        }
        for name, argtypes in typed.items():
            fn = getattr(handle, name)
            fn.restype, fn.argtypes = i, argtypes
        handle._avalon_matmul_typed = True
    return handle


def _scaled(attr, alpha):
    """Add the post-op dst = alpha·dst to `attr`."""
    lib, ops = _typed(), ctypes.c_void_p()
    library.check(lib.dnnl_post_ops_create(ctypes.byref(ops)), "dnnl_post_ops_create")
    try:
        library.check(lib.dnnl_post_ops_append_eltwise(ops, ELTWISE_LINEAR, alpha, 0.0), "dnnl_post_ops_append_eltwise")
        library.check(lib.dnnl_primitive_attr_set_post_ops(attr, ops), "dnnl_primitive_attr_set_post_ops")
    finally:
        lib.dnnl_post_ops_destroy(ops)


def _make(a, b, out, alpha):
    src, weights, dst = P.Desc.of(a), P.Desc.of(b), P.Desc.of(out)
    engine = library.engine()

    def create(pd, attr):
        if alpha != 1.0:
            _scaled(attr, alpha)
        return _typed().dnnl_matmul_primitive_desc_create(pd, engine, src.handle, weights.handle, None,
                                                          dst.handle, attr)

    return P.Primitive(P.make_pd(create, f"dnnl_matmul_primitive_desc_create ({a.shape} @ {b.shape})"), "matmul")


def _primitive(a, b, out, alpha, threads):
    key = (a.shape, a.strides, b.shape, b.strides, out.strides, alpha)

    def make():  # None, cached, where oneDNN refuses the signature: it is not asked again
        try:
            made = _make(a, b, out, alpha)
        except library.OneDNNError:
            return None
        # a reference kernel (some strided layouts) takes seconds where numpy or sgemm take milliseconds
        return made.unless_reference()

    return _cache.get(key, make, threads)  # made at the count it runs at (primitive.Cache)


def matrix(a, b, out, threads=None):
    """out = a @ b for 2-D float32 numpy arrays on the matmul primitive, read and written where they lie;
    False (nothing written) where MATRICES is off, a layout cannot be described, `out` is read-only or
    overlaps an operand, or oneDNN would run a reference kernel."""
    if not MATRICES or not (P.describable(a) and P.describable(b) and P.describable(out)) \
            or not out.flags.writeable or np.may_share_memory(out, a) or np.may_share_memory(out, b):
        return False
    prim = _primitive(a, b, out, 1.0, threads)
    if prim is None:
        return False
    prim.execute({P.ARG_SRC: a, P.ARG_WEIGHTS: b, P.ARG_DST: out}, threads)
    return True


def product(a, b, out=None, alpha=1.0, threads=None):
    """alpha·(a @ b) for float32 numpy arrays with equal batch dimensions, on one matmul primitive,
    into `out` when given; None where it does not apply (see the module docstring)."""
    if a.ndim != b.ndim or a.ndim < 3 or a.ndim > MAX_DIMS or a.shape[:-2] != b.shape[:-2]:
        return None
    (m, k), n = a.shape[-2:], b.shape[-1]
    count = int(np.prod(a.shape[:-2]))
    if b.shape[-2] != k or 0 in a.shape or 0 in b.shape or count < 2 or count * m * n * k < SMALLEST:
        return None  # (a batch of one: gemm's sgemm path, which knows the tall weight-gradient case)
    shape = a.shape[:-1] + (n,)
    if out is not None and out.shape != shape:
        return None
    if not P.describable(a):
        a = np.ascontiguousarray(a)
    if not P.describable(b):
        b = np.ascontiguousarray(b)
    target = out
    if out is None or not P.describable(out) or not out.flags.writeable \
            or np.may_share_memory(out, a) or np.may_share_memory(out, b):
        target = np.empty(shape, _F32)
    prim = _primitive(a, b, target, float(alpha), threads)
    if prim is None:
        return None
    prim.execute({P.ARG_SRC: a, P.ARG_WEIGHTS: b, P.ARG_DST: target}, threads)
    if out is not None and target is not out:
        out[...] = target
        return out
    return target
