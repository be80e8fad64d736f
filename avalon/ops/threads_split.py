"""Large elementwise passes and reductions split along the first (batch) axis over a small persistent
thread pool, so that with two threads both cores work on them.

Why: numpy runs each ufunc, copy and einsum on one core, and releases the GIL while it does. In the
ResNet-ish step at 2 threads batch norm (center, normalize, normalize_grad) and the fused ReLU/add
kernels were ~30% of the step on one core while the convolutions (conv_split.py) used both. Measured on
the quiet 2-core machine: a multiply and add over a 16 MiB float32 array took 3.2 ms whole and 1.8 ms in
two halves; a per-channel einsum reduction 1.1 ms against 0.7. The ResNet-ish training step at 2 threads
(bench/resnet_ab.py, interleaved): 893 ms split against 988 whole.

Users: the fused kernels (avalon/kernels/kernel.py, numpy backend), normalisation (norm.py), relu
(elementwise.py) and einsums that sum over the batch (linalg.py).

Values: an elementwise pass computes every element with the same ufunc on the same operands, so its
result is bit for bit the whole pass's. A reduction over the first axis is the sum of the parts' sums
(added in a fixed order: deterministic), which differs from the whole only by summation order.

Runs when numpy is the array module, the thread count (avalon.set_num_threads's when set, else the
usual variables, else every core: conv_split.thread_count) is above one and the result holds at least MIN_BYTES. SPLIT = False
runs every pass whole, which the tests compare.
"""
import math
import threading

import numpy as np

from . import conv_split
from .worker_pool import WorkerPool

SPLIT = True
# Smallest result split: a hand-over to the pool costs ~100 µs here; measured (a float32 add at 2 threads)
# 1 MiB 219 µs split against 144 whole, 2 MiB 304 against 337, 4 MiB 406 against 527, 8 MiB 628 against 911.
# Whole steps alone at 2 threads (fresh processes, 3 rounds each), 2 MiB against 4: Transformer 0.961-0.979
# (its 2048×256 activations are 2 MiB), LeNet 0.94-0.97, MLP, LSTM and ResNet-ish 0.99-1.006.
MIN_BYTES = 2 << 20

_local = threading.local()


def workers(xp, n, nbytes):
    """How many threads share a pass over `n` rows of `nbytes` in all (1: run it whole)."""
    if not SPLIT or xp is not np or n < 2 or nbytes < MIN_BYTES:
        return 1
    if getattr(_local, "part", False) or conv_split._in_part():  # a part does not split again
        return 1
    return min(conv_split.thread_count(), n)


_pool = WorkerPool("avalon-rows")


def _single(part, piece):
    _local.part = True
    try:
        return part(piece)
    finally:
        _local.part = False


def over_rows(n, count, part):
    """[part(piece) for each of `count` contiguous slices of range(n)], the first in this thread and
    the others on the pool, in the slices' order."""
    bounds = [n * i // count for i in range(count + 1)]
    pieces = [slice(a, b) for a, b in zip(bounds, bounds[1:])]
    futures = [_pool(count).submit(_single, part, p) for p in pieces[1:]]
    try:
        first = _single(part, pieces[0])
    finally:
        rest = [f.result() for f in futures]  # waits for all, and raises what a thread raised
    return [first, *rest]


def rows_of(value, piece, n, ndim):
    """`value`'s part for the rows `piece` of an (n, ...) result of `ndim` axes: its slice where it
    runs along the first axis, else the whole (None, a number, or an array broadcast along it)."""
    if isinstance(value, np.ndarray) and value.ndim == ndim and value.shape[0] == n:
        return value[piece]
    return value


def _overlaps_unlike(out, value, n):
    """Whether `value` shares memory with `out` other than as out's own rows (which a part reads and
    writes alone), so a part could read what another part wrote."""
    if not isinstance(value, np.ndarray) or not np.may_share_memory(out, value):
        return False
    same = value.shape == out.shape and value.strides == out.strides and \
        value.__array_interface__["data"][0] == out.__array_interface__["data"][0]
    return not same


def elementwise(out, part, *operands):
    """`part(*operands' rows, out=out's rows)` over row blocks of `out` on the pool, or once whole
    when the pass is small, splitting is off, or an operand overlaps `out` other than row for row.
    `part` must write its rows of `out` and nothing else. Returns `out`."""
    n = out.shape[0] if out.ndim else 0
    count = workers(np if isinstance(out, np.ndarray) else None, n, out.nbytes)
    if count == 1 or any(_overlaps_unlike(out, v, n) for v in operands):
        part(*operands, out=out)
        return out
    ndim = out.ndim
    over_rows(n, count, lambda p: part(*(rows_of(v, p, n, ndim) for v in operands), out=out[p]))
    return out


def like_x(part, x, out=None):
    """`part(x, out=...)`, an elementwise pass whose result has float `x`'s shape and dtype, in row blocks
    on both cores into `out` (made like x when None); None where it would run whole (the caller's
    own path then runs it)."""
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f" or x.ndim == 0 or \
            workers(np, x.shape[0], x.nbytes) == 1:
        return None
    return elementwise(np.empty_like(x) if out is None else out, part, x)


def sum_over_rows(part, n, nbytes, *operands):
    """`part(*operands)` — a reduction that sums over the first axis of each operand (each of n rows) — as
    the sum of its values on row blocks of the operands, or once whole. Returns the total."""
    count = workers(np if all(isinstance(v, np.ndarray) for v in operands) else None, n, nbytes)
    if count == 1:
        return part(*operands)
    parts = over_rows(n, count, lambda p: part(*(v[p] for v in operands)))
    total = parts[0]
    for other in parts[1:]:
        total += other
    return total


def batch_einsum(xp, subscripts, operands):
    """einsum(subscripts, *operands) as the sum of its row blocks' einsums, where every operand's first
    index is one the output sums away (a statistic over the batch: `"abcd->b"`, `"abcd,abcd->b"`);
    None where it is not such a sum or runs whole anyway."""
    if xp is not np or "..." in subscripts or "->" not in subscripts or len(operands) > 2:
        return None
    inputs, output = subscripts.split("->")
    terms = inputs.split(",")
    first = terms[0][:1]
    if not first or first in output or len(terms) != len(operands) or \
            any(t[:1] != first or t.count(first) != 1 for t in terms) or \
            not all(isinstance(v, np.ndarray) and v.ndim == len(t) for v, t in zip(operands, terms)):
        return None
    n = operands[0].shape[0]
    if any(v.shape[0] != n for v in operands) or workers(np, n, max(v.nbytes for v in operands)) == 1:
        return None
    sizes = {c: d for t, v in zip(terms, operands) for c, d in zip(t, v.shape)}
    if not set(output) <= set(sizes) or \
            math.prod(sizes[c] for c in output) * 16 > max(v.size for v in operands):
        return None  # a large result: the parts' results and their sum would cost what the split saves
    return sum_over_rows(lambda *parts: np.einsum(subscripts, *parts), n, MIN_BYTES, *operands)
