"""Collectives as primitives, so traced code communicates at every replay, not only while tracing:
`all_reduce_sum` (SyncBatchNorm's statistics, the gradients of a DDP model inside a compiled step) and
`broadcast_from` (DDP's buffers at each forward).

Both are `effect`s: never removed, folded, merged or hoisted, so every rank runs the same collectives in
the same order. all_reduce_sum's rule is itself: each rank's output depends on every rank's input, so the
gradient reaching one rank's input is the sum of the cotangents of all ranks' outputs. With one process
(or no process group) both are identities, so SyncBatchNorm is BatchNorm in a single-process script.
"""
import numpy as np

from ..ops.primitive import primitive
from ..rules.registry import rule
from .collectives import arrive
from .group import active


@primitive("all_reduce_sum", effect=True)
def all_reduce_sum(x):
    """The sum of `x` over all ranks of the process group (a new array)."""
    total = np.array(x, copy=True, order="C")
    group = active()
    if group is not None:
        arrive(group, "all_reduce (traced)")
        group.comm.Allreduce(group.mpi.IN_PLACE, total, group.mpi.SUM)
    return total


rule(all_reduce_sum)(lambda g, out, x: (all_reduce_sum(g),))


@primitive("broadcast_from", effect=True, differentiable=False)
def broadcast_from(x, *, src):
    """Rank `src`'s `x`, on every rank (a new array)."""
    value = np.array(x, copy=True, order="C")
    group = active()
    if group is not None:
        arrive(group, "broadcast (traced)")
        group.comm.Bcast(value, root=src)
    return value
