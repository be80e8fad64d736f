"""float32 matrix products on oneDNN: `dnnl_sgemm` (its JIT GEMM, the one PyTorch's CPU build uses) and,
for a single product on several threads or with b stored transposed, the matmul primitive's brgemm
kernels (matmul.py `matrix`: at two threads 0.57-0.9× sgemm's time on the workloads' shapes; Avalon
alone, fresh processes alternating, MLP 13.0 -> 11.4 ms and Transformer 137 -> 129 ms at two threads,
within noise at one).

`matmul(a, b, out=None)` follows numpy's matmul on operands of two or more dimensions and returns None
where it does not apply, so that the caller runs numpy instead:
- oneDNN is switched off or missing (`library.enabled()`, decided at every call: `set_enabled(False)`
  takes effect at once, in compiled tapes too), an operand is not a float32 numpy array;
- the product is small: below `SMALLEST` multiply-adds per matrix (m·n·k) numpy's call is cheaper
  than oneDNN's (a 16³ product: 0.8 µs against 5.3; the two break even near 128×64×128, measured
  at one thread), or narrow: a side shorter than `NARROWEST` (see the constant);
- the call would run on more than `MAX_THREADS` OpenMP threads (the `threads` argument, else
  avalon.set_num_threads's count, else OpenMP's own) while numpy's OpenBLAS is free to run on several:
  its worker spins for 0.1 s after each multithreaded product (kernels/openblas.py) and takes the core
  sgemm's second thread needs (the Transformer step at two threads, products on sgemm: 1.43× as long
  as on OpenBLAS). Compiled replays and optimiser steps hold OpenBLAS to one thread
  (`holding_numpy_blas`), and inside them products run on oneDNN at the full count: Avalon alone at two
  threads, fresh processes alternating, MLP 14.6 -> 13.9 ms and Transformer 164 -> 130 ms against
  OpenBLAS at two threads, and SGD's updates on `axpby` at two threads 12.7 ms.
  Outside them, products of fewer than `ONE_THREAD_BELOW` multiply-adds run on sgemm at ONE thread
  (the caller's count put back after), not on OpenBLAS at several (LeNet's fully connected layers,
  128×1600×128, at 2 threads: see the constant).

Operands are read where they lie: a C-contiguous matrix, its transpose, or either with a row stride
(a slice of columns) is passed with its transposition flag and leading dimension, without a copy.
Other layouts (a negative or zero stride, a stride in both axes) are copied first. `out=` is written
in place when its rows (or its transpose's rows) are contiguous; otherwise, and when it overlaps an
operand, the product goes through a temporary. Batched operands with equal batch dimensions (two
matrices or more) are one call of oneDNN's matmul primitive (matmul.py; `BATCHED = False`: not), which
also takes `alpha`; other batches are one sgemm per matrix, or one for the whole batch when the first
operand's batch rows lie one after another and the second is a single matrix (x (…, m, k) @ W (k, n)).

`sgemm(a, b, out, alpha, beta)` is the 2-D call for callers that accumulate (`out = a @ b + out`,
beta=1) or know their shapes; it returns False where a layout does not fit.

`axpby(alpha, x, beta, y)`: y = alpha·x + beta·y in one pass (SGD's momentum and parameter updates),
from AXPBY_SMALLEST elements.
"""
import contextlib
import ctypes
import math
import threading

import numpy as np

from .. import openblas
from . import library
from . import matmul as batched

SMALLEST = 1 << 21  # m·n·k below which numpy's matmul is as fast (128·128·128)
# elements below which numpy is as fast: its passes run in cache (196608: 103 µs both ways; 262144: 182 against 140);
# at two threads (an update inside holding_numpy_blas) from half as many (131072: 38 µs against numpy's 53,
# 65536: 27 against 24)
AXPBY_SMALLEST = 1 << 18
AXPBY_SMALLEST_THREADED = 1 << 17
# a product with a side shorter than this stays on numpy (a classifier head's 10 classes): sgemm packs
# such a product through 4-6 MB of scratch that stays resident (256×1024·1024×10: +4.3 MB peak), for
# 25-50 µs of the 60-110 a call takes
NARROWEST = 16
MAX_THREADS = 1  # more OpenMP threads than this, while OpenBLAS is not held: numpy (see the module docstring)
HOLD_NUMPY_BLAS = True  # replays and optimiser steps hold OpenBLAS to one thread, their products on oneDNN
# Products below this many multiply-adds run on sgemm at one thread when the call would have more than
# MAX_THREADS (see the module docstring). LeNet step at 2 threads, fresh processes, alternating: 50-56 ms
# wall and 85-109 ms CPU (35 of it OpenBLAS's spinning worker) -> 40-50 ms and 53-55 ms CPU.
ONE_THREAD_BELOW = 1 << 26
BATCHED = True  # products of batched operands on oneDNN's matmul primitive (False: per matrix / numpy)
# On a CPU without AVX-512, at one thread, numpy's OpenBLAS multiplies by a matrix faster than dnnl_sgemm
# or the matmul primitive while the first operand is stored row-major. An AMD EPYC (AVX2), the MLP's
# products, medians of 25 alternating calls, ms, OpenBLAS against oneDNN's better: x·W1ᵀ 5.9 against 6.3,
# h·W2ᵀ 7.2 against 8.1, g·W2 7.5 against 17-20 (both oneDNN kernels); PyTorch's 6.3, 8.1 and 8.5. So
# are weight gradients gᵀ·x (a stored transposed) summed over OPENBLAS_MIN_K rows or more: the
# Transformer's, over 2048 rows, 12.8 against 34.7 (gᵀ·h, 256×2048·2048×1024), 14.2-15.3 against 18-20
# (1024×2048·2048×256), 12.3 against 14.8 (768×2048·2048×256); PyTorch's 14.0, 15.4-16.7 and 12.9. Over
# fewer rows oneDNN is the faster (the MLP's, over 256: 5.7 against 6.0, 7.6 against 8.0). Every product
# on an AVX-512 CPU stays on oneDNN. False: oneDNN for all.
OPENBLAS_WITHOUT_AVX512 = True
OPENBLAS_MIN_K = 512

# a·b, both row-major, b's rows a multiple of 256 floats (1 KiB) apart (a Linear's backward g·W, W
# 1024×1024): b's rows are copied with 64 bytes of padding first, ALIASED_ROWS_BLOCK rows at a time, as
# oneDNN pads the weights it lays out itself (the LSTM's), so that they stop evicting each other from
# the cache. The MLP's g·W2 (256×1024·1024×1024), 2 threads, AVX2, medians of 25 alternating calls:
# 6.0-6.3 ms -> 3.4-3.5 with the copies (PyTorch's 4.0-4.4); the MLP step at 2 threads, fresh processes
# alternating, 24.4 -> 20.5 ms, its peak memory the same. Only from ALIASED_ROWS_MIN_M rows of a, where
# the copies are a small share of the product, and not for weight gradients (a stored transposed: not
# slowed, and their b is an activation whose copy would be the step's largest).
PAD_ALIASED_ROWS = True
ALIASED_ROWS_MIN_M = 64
ALIASED_ROWS_BLOCK = 256

# aᵀ-stored times b, TALL times as many rows as columns or more (a Linear's weight gradient gᵀ·x,
# 1024×2048·2048×256): oneDNN is faster on the transposed product, xᵀ·g, written transposed through a
# temporary: 7.7 -> 5.7 ms at one thread (an earlier machine); at two (AVX2), where sgemm and the matmul primitive
# took 16-23 ms (PyTorch 9-14), 10-16 ms, and 768×2048·2048×256 8.5 -> 7.0 (PyTorch 7.0).
TALL = 3

_F32 = np.dtype(np.float32)
_call = {}


def _sgemm_function():
    if "sgemm" not in _call:
        f = library.library().dnnl_sgemm
        i64, ptr, f32 = ctypes.c_int64, ctypes.c_void_p, ctypes.c_float
        f.argtypes = [ctypes.c_char, ctypes.c_char, i64, i64, i64, f32, ptr, i64, ptr, i64, f32, ptr, i64]
        f.restype = ctypes.c_int
        _call["sgemm"] = f
    return _call["sgemm"]


def _layout(x):
    """(flag, leading dimension) of a 2-D float32 array for row-major sgemm, or None: b'N' when its rows
    are contiguous, b'T' when its columns are (it is the transpose of a row-major matrix)."""
    if not x.flags.aligned:
        return None
    rows, cols = x.shape
    s0, s1 = x.strides[0] // 4, x.strides[1] // 4
    if (cols == 1 or x.strides[1] == 4) and x.strides[0] % 4 == 0:
        ld = s0 if rows > 1 else cols
        if ld >= max(1, cols):
            return b"N", ld
    if (rows == 1 or x.strides[0] == 4) and x.strides[1] % 4 == 0:
        ld = s1 if cols > 1 else rows
        if ld >= max(1, rows):
            return b"T", ld
    return None


_FLIP = {b"N": b"T", b"T": b"N"}


def sgemm(a, b, out, alpha=1.0, beta=0.0, threads=None):
    """out = alpha·(a @ b) + beta·out for 2-D float32 numpy arrays, on dnnl_sgemm; False (nothing
    written) where an operand's layout does not fit (see `_layout`) or `out` overlaps an operand.
    `threads`: the OpenMP thread count of this call (a pool thread passes its share)."""
    (m, k), n = a.shape, b.shape[1]
    if m == 0 or n == 0 or k == 0:  # nothing to multiply (an empty array's strides say nothing)
        if beta == 0:
            out[...] = 0  # beta 0 overwrites, NaN included, as BLAS does
        else:
            out *= beta
        return True
    la, lb, lc = _layout(a), _layout(b), _layout(out)
    if la is None or lb is None or lc is None or np.may_share_memory(out, a) or np.may_share_memory(out, b):
        return False
    pa, pb, pc = a.ctypes.data, b.ctypes.data, out.ctypes.data
    library.prepare(threads)
    if lc[0] == b"N":
        status = _sgemm_function()(la[0], lb[0], m, n, k, alpha, pa, la[1], pb, lb[1], beta, pc, lc[1])
    else:  # out is a transposed matrix: write its transpose, bᵀ·aᵀ
        status = _sgemm_function()(_FLIP[lb[0]], _FLIP[la[0]], n, m, k, alpha, pb, lb[1], pa, la[1],
                                   beta, pc, lc[1])
    library.check(status, f"dnnl_sgemm ({m}×{k} @ {k}×{n})")
    return True


def _threads_fit(threads):
    """Whether a call on `threads` (None: the count prepare() would set) may run on oneDNN: within
    MAX_THREADS, or on any count while numpy's OpenBLAS is held to one thread (no worker of its spins on
    the cores oneDNN's team needs)."""
    return library.threads(threads) <= MAX_THREADS or openblas.held()


def holding_numpy_blas():
    """The context compiled replays on numpy and optimiser steps run in: numpy's OpenBLAS held to one
    thread (openblas.one_thread), so that products and updates run on oneDNN at the full count, while
    HOLD_NUMPY_BLAS, oneDNN is on and its calls would run on more than one thread; else none."""
    if HOLD_NUMPY_BLAS and library.enabled() and library.threads() > 1:
        return openblas.one_thread()
    return contextlib.nullcontext()


def applies(*arrays):
    """Whether oneDNN is on and every array is a float32 numpy array (None entries are skipped)."""
    if not library.enabled():
        return False
    return all(x is None or (type(x) is np.ndarray and x.dtype == _F32) for x in arrays)


def matmul(a, b, out=None, threads=None, alpha=1.0):
    """numpy.matmul(a, b, out=out) (times `alpha`) on dnnl_sgemm for float32 numpy arrays of two or more
    dimensions; None where it does not apply (see the module docstring): run numpy's then. Operands with
    the same batch dimensions go to oneDNN's matmul primitive (kernels/onednn/matmul.py) when BATCHED."""
    if a.ndim < 2 or b.ndim < 2 or not applies(a, b, out) or _openblas_is_faster(a, b, threads, alpha):
        return None
    if not _threads_fit(threads):
        if math.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2])) * a.shape[-2] * a.shape[-1] * b.shape[-1] \
                >= ONE_THREAD_BELOW:
            return None
        with library.keeping_threads():
            return matmul(a, b, out, 1, alpha)
    if BATCHED and a.ndim > 2:
        done = batched.product(a, b, out, alpha, threads)
        if done is not None:
            return done
    if alpha != 1.0:  # only the batched primitive scales in the same pass
        return None
    (m, k), n = a.shape[-2:], b.shape[-1]
    if m * n * k < SMALLEST or min(m, n, k) < NARROWEST or b.shape[-2] != k:
        return None
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    shape = batch + (m, n)
    if out is not None and out.shape != shape:
        return None
    result = np.empty(shape, _F32) if out is None else out
    if result.size == 0 or k == 0:
        result[...] = 0
        return result
    if batch and b.ndim == 2:  # x (…, m, k) @ W: one product over all the rows when they lie in order
        rows_a, rows_c = _rows(a), _rows(result)
        if rows_a is not None and rows_c is not None:
            return result if _product(rows_a, b, rows_c, threads) else None
    if not batch:
        return result if _product(a, b, result, threads) else None
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    for index in np.ndindex(*batch):
        if not _product(a[index], b[index], result[index], threads):
            return None
    return result


def _openblas_is_faster(a, b, threads, alpha):
    """Whether numpy's product is the faster on this CPU (see OPENBLAS_WITHOUT_AVX512): a by a single
    matrix, unscaled, a's rows contiguous or the product long (OPENBLAS_MIN_K), at one thread of the
    caller's own count."""
    return (OPENBLAS_WITHOUT_AVX512 and b.ndim == 2 and alpha == 1.0
            and (a.strides[-1] == a.itemsize or a.shape[-1] >= OPENBLAS_MIN_K)
            and threads is None and library.threads() == 1 and not library.has_avx512())


def _rows(x):
    """x (…, m, k) as the (…·m, k) matrix it is in memory, or None where that needs a copy."""
    try:
        return np.reshape(x, (-1, x.shape[-1]), copy=False)
    except ValueError:
        return None


def _product(a, b, out, threads):
    """out = a @ b (2-D), copying an operand whose layout sgemm cannot read and going through a
    temporary where out cannot be written in place."""
    if _layout(a) is None:
        a = np.ascontiguousarray(a)
    if _layout(b) is None:
        b = np.ascontiguousarray(b)
    if PAD_ALIASED_ROWS and _layout(a)[0] == b"N" and _rows_alias(b) and out.shape[0] >= ALIASED_ROWS_MIN_M \
            and _layout(out) is not None and not (np.may_share_memory(out, a) or np.may_share_memory(out, b)):
        return _from_padded_blocks(a, b, out, threads)
    m, n = out.shape
    if m >= TALL * n and _layout(a)[0] == b"T" and _layout(b)[0] == b"N" and _layout(out) == (b"N", n):
        temporary = np.empty((n, m), _F32).T
        if sgemm(a, b, temporary, threads=threads):
            out[...] = temporary
            return True
    # the matmul primitive's brgemm kernels, at several threads (0.57-0.9x sgemm's time on the workloads'
    # shapes) and for b stored transposed (a Linear's x·Wᵀ: 0.86-1.0x at one thread, where sgemm is the
    # faster on the other layouts, up to 0.86x)
    if (library.threads(threads) > 1 or _layout(b)[0] == b"T") and batched.matrix(a, b, out, threads=threads):
        return True
    if sgemm(a, b, out, threads=threads):
        return True
    temporary = np.empty(out.shape, _F32)
    if not sgemm(a, b, temporary, threads=threads):
        return False
    out[...] = temporary
    return True


def _rows_alias(b):
    """Whether b is row-major with a row stride of a multiple of 256 floats (1 KiB): the rows the
    kernels stream together then fall in the same cache sets."""
    layout = _layout(b)
    return layout[0] == b"N" and layout[1] % 256 == 0 and b.shape[0] > 1


def _from_padded_blocks(a, b, out, threads):
    """out = a @ b on sgemm, ALIASED_ROWS_BLOCK rows of b at a time copied with padded rows, each block's
    product added into out (as fast as one padded copy of the whole, in a quarter of its scratch)."""
    for start in range(0, b.shape[0], ALIASED_ROWS_BLOCK):
        rows = slice(start, start + ALIASED_ROWS_BLOCK)
        if not sgemm(a[:, rows], _padded(b[rows]), out, beta=0.0 if start == 0 else 1.0, threads=threads):
            return False
    return True


_local = threading.local()


def _padded(b):
    """A copy of b whose rows lie 16 floats (64 bytes) further apart, in this thread's scratch buffer
    (grown to the largest need and kept, so that a compiled step's replays allocate nothing for it)."""
    rows, cols = b.shape
    need = rows * (cols + 16)
    scratch = getattr(_local, "scratch", None)
    if scratch is None or scratch.size < need:
        scratch = _local.scratch = np.empty(need, _F32)
    copy = scratch[:need].reshape(rows, cols + 16)[:, :cols]
    copy[...] = b
    return copy


_ONE = np.ones((1, 1), _F32)


def axpby(alpha, x, beta, y, threads=None):
    """y = alpha·x + beta·y in place, in one pass over each array, for C-contiguous float32 numpy arrays
    of one size while oneDNN is on: the sgemm of the 1×1 matrix [1] by x as a 1×n matrix, added into y
    scaled by beta. numpy's in-place operators walk y twice and need a temporary for alpha·x (an SGD
    update of 0.8 M parameters, buf = m·buf + g then p -= lr·buf: 0.77 ms against 0.57, one thread).
    Written in place, so ndarray subclasses (avalon.Tensor parameters) qualify. False (nothing written)
    where it does not apply, or below AXPBY_SMALLEST elements (the Transformer's biases and norms: its
    SGD step 1.9 ms on numpy, 2.4 with every parameter on oneDNN)."""
    if not library.enabled() or not all(isinstance(v, np.ndarray) and v.dtype == _F32 for v in (x, y)):
        return False
    smallest = AXPBY_SMALLEST if library.threads(threads) == 1 else AXPBY_SMALLEST_THREADED
    if x.size != y.size or x.size < smallest or not (x.flags.c_contiguous and y.flags.c_contiguous) \
            or not y.flags.writeable or np.may_share_memory(x, y) or not _threads_fit(threads):
        return False
    library.prepare(threads)
    status = _sgemm_function()(b"N", b"N", 1, x.size, 1, float(alpha), _ONE.ctypes.data, 1, x.ctypes.data,
                               x.size, float(beta), y.ctypes.data, x.size)
    library.check(status, f"dnnl_sgemm (axpby of {x.size})")
    return True
