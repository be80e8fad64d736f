"""`all_reduce_sum`: the cross-rank sum as a primitive, so traced code (SyncBatchNorm's statistics, the
gradients of a DDP model inside a compiled step) communicates at every replay, not only while tracing.

It is an `effect`: never removed, folded, merged or hoisted, so every rank runs the same collectives in
the same order. Its rule is itself: each rank's output depends on every rank's input, so the gradient
reaching one rank's input is the sum of the cotangents of all ranks' outputs. With one process (or no
process group) it is the identity, so SyncBatchNorm is BatchNorm in a single-process script.
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
