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
    read; -1 for a rank that failed to load): their collectives would not match, and every rank would
    wait until the timeout. `fit` calls it on every rank whatever happened locally."""
    if rank_and_size()[1] == 1:
        return
    low, high = np.array([start], np.int64), np.array([start], np.int64)
    distributed.all_reduce(low, op=distributed.ReduceOp.MIN)
    distributed.all_reduce(high, op=distributed.ReduceOp.MAX)
    if low[0] != high[0]:
        mine = f"resumes after {start} epoch(s)" if start >= 0 else "could not resume"
        raise AvalonError(f"fit(resume=True): rank {rank_and_size()[0]} {mine} from {path}, but the ranks "
                          f"{'differ' if low[0] >= 0 else 'do not all succeed'} (from {int(low[0])} to "
                          f"{int(high[0])} epochs; -1: could not load): some rank reads another file, none, or "
                          "one that does not fit its model; nothing was changed on any rank\n  fix: put the "
                          "checkpoint where every rank reads the same file (a shared file system), or copy it to "
                          "each machine before restarting")
