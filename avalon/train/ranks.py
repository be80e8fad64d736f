"""What `fit` does differently on the ranks of a process group (avalon.distributed): rank 0 alone shows
progress and writes checkpoints, and the numbers it records are averaged over the ranks, so every rank's
history is the same. Without a process group there is one rank, and nothing changes."""
import numpy as np

from .. import distributed
from ..errors import AvalonError


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


def same_start(start, path):
    """Refuse a resumed run whose ranks would start from different epochs (a checkpoint some rank cannot
    read): their collectives would not match, and every rank would wait until the timeout."""
    if rank_and_size()[1] == 1:
        return
    low, high = np.array([start], np.int64), np.array([start], np.int64)
    distributed.all_reduce(low, op=distributed.ReduceOp.MIN)
    distributed.all_reduce(high, op=distributed.ReduceOp.MAX)
    if low[0] != high[0]:
        raise AvalonError(f"fit(resume=True): rank {rank_and_size()[0]} resumes after {start} epoch(s) from {path}, "
                          f"but the ranks resume after {int(low[0])} to {int(high[0])}: some rank reads another "
                          "file or none\n  fix: put the checkpoint where every rank reads the same file (a shared "
                          "file system), or copy it to each machine before restarting")
