"""Collectives on arrays, in place as torch.distributed's: all_reduce, broadcast, all_gather,
reduce_scatter, barrier.

Each one first waits for every rank to arrive with a non-blocking barrier polled against the group's
deadline, so a rank that stops answering makes the others raise `CollectiveTimeout` (and end the job)
instead of hanging; then it runs MPI's blocking collective. (OpenMPI's non-blocking collectives, polled
from Python, reach a tenth of the blocking ones' bandwidth at a few MB: bench/distributed.py.) A rank
that dies inside the collective ends the job through the launcher. With one process they are identities,
so single-process code runs them unchanged.
"""
import enum
import numbers
import time

import numpy as np

from ..tracing import Tracer
from .errors import CollectiveTimeout, DistributedError
from .group import current, mark_broken

SPIN_SECONDS = 0.002  # how long a wait spins on MPI before it sleeps between polls (a late peer may need the core)


class ReduceOp(enum.Enum):
    """How `all_reduce` and `reduce_scatter` combine the ranks' arrays (torch's names)."""
    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"
    PRODUCT = "product"


def _mpi_op(group, op):
    if not isinstance(op, ReduceOp):
        raise DistributedError(f"op={op!r} is not a ReduceOp", "pass ReduceOp.SUM, AVG, MAX, MIN or PRODUCT")
    mpi = group.mpi
    return {ReduceOp.SUM: mpi.SUM, ReduceOp.AVG: mpi.SUM, ReduceOp.MAX: mpi.MAX, ReduceOp.MIN: mpi.MIN,
            ReduceOp.PRODUCT: mpi.PROD}[op]


def _buffer(array, what, collective):
    """The array itself (written in place), refused when MPI cannot write into it."""
    if isinstance(array, Tracer):
        raise DistributedError(f"{collective} changes {what} in place, which traced code cannot record",
                               "in traced code use avalon.distributed.all_reduce_sum(x), which returns the sum "
                               "over the ranks and is recorded (a replay communicates too)")
    if not isinstance(array, np.ndarray):
        raise DistributedError(f"{collective}: {what} is a {type(array).__name__}, not a numpy array",
                               "pass the array to be changed in place (collectives write their result into it)")
    if not array.flags.c_contiguous or not array.flags.writeable:
        raise DistributedError(f"{collective}: {what} is not a writeable C-contiguous array, so the result "
                               "cannot be written into it", "pass np.ascontiguousarray(a) and use that array")
    return np.ndarray.view(array, np.ndarray)


def arrive(group, collective):
    """Return once every rank has reached this collective, or raise CollectiveTimeout."""
    wait(group, group.comm.Ibarrier(), collective)


def wait(group, request, collective, timeout=None):
    """Complete `request`, or raise CollectiveTimeout once `timeout` seconds (the group's) have passed."""
    timeout = group.timeout if timeout is None else timeout
    start = time.monotonic()
    deadline, patience = start + timeout, start + SPIN_SECONDS
    while not request.Test():
        now = time.monotonic()
        if now > deadline:
            mark_broken(group)  # the job is aborted when the program ends
            raise CollectiveTimeout(collective, group.rank, group.size, timeout)
        # MPI advances a non-blocking collective only inside calls such as Test, so poll without pausing
        # while the peers are about to arrive (yielding the core costs tens of µs on a busy machine);
        # past that, short sleeps leave the CPU to them.
        if now > patience:
            time.sleep(1e-4)


def _average(array, group, collective):
    if not np.issubdtype(array.dtype, np.inexact):
        raise DistributedError(f"{collective}(op=ReduceOp.AVG) on {array.dtype} values: an average is not an integer",
                               "use a floating-point array, or ReduceOp.SUM and divide yourself")
    array /= group.size


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Combine `tensor` across all ranks with `op`; every rank's array then holds the result.

    >>> g = np.array([rank + 1.0]); all_reduce(g)   # g == [3.0] on both of 2 ranks
    """
    pg = current()
    mpi_op = _mpi_op(pg, op)
    buf = _buffer(tensor, "tensor", "all_reduce")
    if op is ReduceOp.AVG and not np.issubdtype(buf.dtype, np.inexact):
        _average(buf, pg, "all_reduce")  # refuses before communicating
    if pg.size > 1:
        arrive(pg, "all_reduce")
        pg.comm.Allreduce(pg.mpi.IN_PLACE, buf, mpi_op)
    if op is ReduceOp.AVG:
        _average(buf, pg, "all_reduce")
    return _done(async_op)


def broadcast(tensor, src, group=None, async_op=False):
    """Copy rank `src`'s `tensor` into every rank's `tensor`."""
    pg = current()
    buf = _buffer(tensor, "tensor", "broadcast")
    if not isinstance(src, numbers.Integral) or not 0 <= src < pg.size:
        raise DistributedError(f"broadcast(src={src!r}) names no rank of the {pg.size}",
                               f"pass a rank from 0 to {pg.size - 1}")
    if pg.size > 1:
        arrive(pg, "broadcast")
        pg.comm.Bcast(buf, root=src)
    return _done(async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """`tensor_list[r]` becomes rank r's `tensor`, on every rank (each entry of `tensor`'s shape and dtype)."""
    pg = current()
    send = np.ascontiguousarray(tensor)
    _check_list(tensor_list, send, pg, "all_gather", "tensor_list")
    gathered = np.empty((pg.size, *send.shape), send.dtype)
    if pg.size > 1:
        arrive(pg, "all_gather")
        pg.comm.Allgather(send, gathered)
    else:
        gathered[0] = send
    for out, part in zip(tensor_list, gathered):
        out[...] = part
    return _done(async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """`output` on rank r becomes `input_list[r]` combined over all ranks with `op`."""
    pg = current()
    mpi_op = _mpi_op(pg, op)
    buf = _buffer(output, "output", "reduce_scatter")
    _check_list(input_list, buf, pg, "reduce_scatter", "input_list")
    if op is ReduceOp.AVG and not np.issubdtype(buf.dtype, np.inexact):
        _average(buf, pg, "reduce_scatter")
    send = np.stack([np.asarray(a, buf.dtype) for a in input_list])
    if pg.size > 1:
        arrive(pg, "reduce_scatter")
        pg.comm.Reduce_scatter_block(send, buf, mpi_op)
    else:
        buf[...] = send[0]
    if op is ReduceOp.AVG:
        _average(buf, pg, "reduce_scatter")
    return _done(async_op)


def barrier(group=None, async_op=False, device_ids=None, timeout=None):
    """Wait until every rank has reached its barrier, or raise CollectiveTimeout after `timeout` (a
    `datetime.timedelta`; the group's by default)."""
    pg = current()
    if pg.size > 1:
        wait(pg, pg.comm.Ibarrier(), "barrier", None if timeout is None else timeout.total_seconds())
    return _done(async_op)


class Work:
    """What a collective returns with `async_op=True`: the collective has completed already (Avalon's
    collectives are blocking, bounded by the timeout), so `wait()` returns at once."""

    def wait(self, timeout=None):
        return True

    def is_completed(self):
        return True


def _done(async_op):
    return Work() if async_op else None


def _check_list(arrays, like, pg, collective, what):
    if not isinstance(arrays, (list, tuple)) or len(arrays) != pg.size:
        n = len(arrays) if isinstance(arrays, (list, tuple)) else type(arrays).__name__
        raise DistributedError(f"{collective}: {what} must hold one array per rank ({pg.size}), got {n}",
                               f"pass a list of {pg.size} arrays of shape {like.shape}")
    for i, a in enumerate(arrays):
        if tuple(np.shape(a)) != like.shape or np.asarray(a).dtype != like.dtype:
            raise DistributedError(f"{collective}: {what}[{i}] has shape {tuple(np.shape(a))} and dtype "
                                   f"{np.asarray(a).dtype}, the other operand {like.shape} and {like.dtype}",
                                   "give every entry the same shape and dtype as the other operand")
