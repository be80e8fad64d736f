"""torch.set_num_threads / get_num_threads: how many threads the CPU kernels (numpy's BLAS and
OpenMP pools) may use.

With threadpoolctl installed the limit is applied to every thread pool loaded in the process;
without it the number is only recorded (set OMP_NUM_THREADS before numpy loads to limit BLAS then).
"""
import operator
import os

from .errors import AvalonError

_state = {"threads": None}


def set_num_threads(num):
    """Let numpy's BLAS and OpenMP pools use `num` threads (a positive int), from now on.

    >>> avalon.set_num_threads(1)       # deterministic timings, or one process per core
    """
    try:
        num = operator.index(num)
    except TypeError:
        num = 0
    if num < 1:
        raise AvalonError(f"set_num_threads({num!r}): the number of threads must be a positive integer")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        threadpool_limits(limits=num)  # applies the limit now; it holds until set again
    _state["threads"] = num


def get_num_threads():
    """The thread count last set by `set_num_threads`; before that, the largest thread pool loaded
    (threadpoolctl) or the number of CPUs."""
    if _state["threads"] is not None:
        return _state["threads"]
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return os.cpu_count() or 1
    pools = [pool["num_threads"] for pool in threadpool_info()]
    return max(pools) if pools else os.cpu_count() or 1


__all__ = ["set_num_threads", "get_num_threads"]
