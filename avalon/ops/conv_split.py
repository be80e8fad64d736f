"""The Winograd convolutions (winograd.py) at several BLAS threads: the batch split across Python
threads, each running its share of the chunks on one BLAS thread.

Why: with numpy's BLAS on 2 threads, a ResNet layer spends ~60% of its time outside the products (the
column copies and Winograd combinations of conv_gemm.py and winograd.py, on one core), while each
product waits for both BLAS threads. Here each thread takes a contiguous part of the batch with column
buffers of its own, BLAS is held to one thread for the duration, and
numpy releases the GIL in its copies, ufuncs and products. Two concurrent one-thread OpenBLAS products
ran no faster than one after the other, and two large copies no faster than one (memory bandwidth),
both measured here, so this is not two cores' worth: what it buys is one part's copies running while the other part multiplies. Measured on the quiet
2-core machine, the ResNet-ish training step (bench/resnet_ab.py) at 2 threads: 1106 ms split
(2 MiB chunks) against 1467 ms whole; at 1 thread nothing changes (no split). The forward and the input's
gradient write each part's samples into one result; the weight's gradient is the sum of the parts'
(added in a fixed order: deterministic). The direct im2col path (conv_gemm.py) is left whole: its
products are most of its time, and LeNet's second layer (128×32×13×13 -> 64, whose 11 output rows are
too few for Winograd) took 30-32 ms split against 23 whole.

Runs when numpy is the array module, BLAS has more than one thread and threadpoolctl (which sets
BLAS's thread count) is importable. SPLIT = False runs the plain chunk loop, which the tests compare.
"""
import threading

import numpy as np

from .. import threads as _threads
from . import conv_gemm
from .worker_pool import WorkerPool

SPLIT = True
# Fewest samples per thread: below that the parts' fixed costs (buffers, filters) outweigh the gain.
MIN_SAMPLES = 2

_state = {"controller": None}
# Held while a batch is split: BLAS's thread count is process-wide, so a second caller at that time
# (another user thread) runs its batch whole rather than set and restore the count over the first's.
_busy = threading.Lock()


def _controller():
    """threadpoolctl's controller of the loaded thread pools, made once; None without threadpoolctl."""
    if _state["controller"] is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _state["controller"] = False
        else:
            _state["controller"] = ThreadpoolController()
    return _state["controller"] or None


def thread_count():
    """The threads a split may use: the count given to avalon.set_num_threads when it was called (it
    limits BLAS and oneDNN to it too), else numpy's BLAS threads (conv_gemm.blas_threads)."""
    return _threads._state["threads"] or conv_gemm.blas_threads()


def workers(xp, n):
    """How many threads share a batch of `n` samples (1: no split)."""
    if not SPLIT or xp is not np or _in_part():
        return 1
    count = min(thread_count(), n // MIN_SAMPLES)
    return count if count > 1 and _controller() is not None else 1


_pool = WorkerPool("avalon-conv")


_local = threading.local()


def _in_part():
    """Whether this thread is running a part of a split batch (which it does not split again)."""
    return getattr(_local, "part", False)


def _single(part, piece, out):
    """`part` on `piece` in this thread, marked as a part."""
    _local.part = True
    try:
        return part(piece, out)
    finally:
        _local.part = False


def split_batch(xp, n, part, shape=None, dtype=None, into=None):
    """`part(piece, out)` over the batch's samples: each call computes the samples of the slice `piece`
    (into `out`, that slice of the result, when `shape` is given; else returns its share of a sum).

    With `shape` the (n, ...) result of `dtype` is returned (written into `into` when given); without,
    the sum of the parts."""
    count = workers(xp, n)
    if count == 1 or not _busy.acquire(blocking=False):
        return part(slice(0, n), into)
    try:
        return _split(xp, n, part, shape, dtype, count, into)
    finally:
        _busy.release()


def _split(xp, n, part, shape, dtype, count, into=None):
    bounds = [n * i // count for i in range(count + 1)]
    pieces = [slice(a, b) for a, b in zip(bounds, bounds[1:])]
    result = None if shape is None else xp.empty(shape, dtype=dtype) if into is None else into
    outs = [None if result is None else result[p] for p in pieces]
    with _controller().limit(limits=1, user_api="blas"):
        futures = [_pool(count).submit(_single, part, p, o) for p, o in zip(pieces[1:], outs[1:])]
        try:
            first = _single(part, pieces[0], outs[0])
        finally:
            parts = [f.result() for f in futures]  # waits for all, and raises what a thread raised
    if result is not None:
        return result
    total = first
    for other in parts:
        total += other
    return total
