"""What `fit` does differently on the ranks of a process group (avalon.distributed): rank 0 alone shows
progress and writes checkpoints, and the numbers it records are averaged over the ranks, so every rank's
history is the same. Without a process group there is one rank, and nothing changes."""
import numpy as np

from .. import distributed


def rank_and_size():
    """(rank, world size): (0, 1) without a process group."""
    if not distributed.is_initialized():
        return 0, 1
    return distributed.get_rank(), distributed.get_world_size()


def averaged(values):
    """{name: mean over the ranks of the value} (every rank passes the same names)."""
    names = sorted(values)
    if rank_and_size()[1] == 1 or not names:
        return dict(values)
    vector = np.array([values[name] for name in names], dtype=np.float64)
    distributed.all_reduce(vector, op=distributed.ReduceOp.AVG)
    return dict(zip(names, vector.tolist()))
