"""Data-parallel training across processes and machines, on MPI (torch.distributed's names).

Launch N copies of one script with `mpirun -n N python train.py`; each calls `init_process_group("mpi")`,
wraps its model in `avalon.nn.parallel.DistributedDataParallel` and reads its share of the data through
`avalon.data.DistributedSampler`. Run plainly (`python train.py`), the same script is one process.

Collectives work in place on numpy arrays, as torch's on tensors, and honour the group's `timeout`:

>>> dist.init_process_group("mpi", timeout=datetime.timedelta(minutes=5))
>>> a = np.full(3, dist.get_rank() + 1.0); dist.all_reduce(a, op=dist.ReduceOp.SUM)

Importing this package does not start MPI; `init_process_group` does.
"""
from .collectives import ReduceOp, Work, all_gather, all_reduce, barrier, broadcast, reduce_scatter
from .errors import CollectiveTimeout, DistributedError
from .group import (destroy_process_group, get_backend, get_rank, get_world_size, init_process_group, is_available,
                    is_initialized, is_mpi_available)
from .traced import all_reduce_sum, broadcast_from

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available", "is_mpi_available",
           "get_rank", "get_world_size", "get_backend", "ReduceOp", "Work", "all_reduce", "broadcast", "all_gather",
           "reduce_scatter", "barrier", "all_reduce_sum", "broadcast_from", "DistributedError", "CollectiveTimeout"]
