"""Holding numpy's OpenBLAS to one thread while Avalon's multithreaded kernels run: `with one_thread():`.

After a call on several threads OpenBLAS's workers spin on their cores for about 2²⁸ cycles (0.1 s or
more) before they sleep, and nothing shortens that once numpy has loaded the library. Avalon's own
multithreaded work (oneDNN's OpenMP team, its worker threads) then waits for a core: on the 2-core
development machine one 2-thread numpy product made the next 2-thread oneDNN LSTM step 4.5× slower,
and with its products on oneDNN at two threads but OpenBLAS free, the Transformer's step took 1.43× as
long. A compiled replay that runs its float32 work on oneDNN therefore holds OpenBLAS to one thread
(avalon.kernels.onednn.gemm.numpy_blas_held); whatever numpy still computes there is small.

OpenBLAS's thread count is global to the process (its `openblas_set_num_threads_local` sets the global
count too), so holders are counted: the first sets one thread, the last puts the count back. Where
numpy's BLAS is not OpenBLAS (or has no such setter), `one_thread()` changes nothing and `held()` stays
False.
"""
import contextlib
import ctypes
import threading

_lock = threading.Lock()
_state = {"setter": None, "holders": 0, "previous": None}


def _setter():
    """OpenBLAS's `openblas_set_num_threads_local` (returns the count it replaces), or False."""
    if _state["setter"] is None:
        _state["setter"] = False
        try:
            from threadpoolctl import threadpool_info

            for pool in threadpool_info():
                if pool.get("internal_api") == "openblas":
                    function = ctypes.CDLL(pool["filepath"]).openblas_set_num_threads_local
                    function.restype, function.argtypes = ctypes.c_int, [ctypes.c_int]
                    _state["setter"] = function
                    break
        except (ImportError, OSError, AttributeError):
            pass
    return _state["setter"]


def held():
    """Whether some block holds OpenBLAS to one thread now (in any thread of the process)."""
    return _state["holders"] > 0


@contextlib.contextmanager
def one_thread():
    """numpy's OpenBLAS on one thread inside the block (see the module docstring)."""
    setter = _setter()
    if not setter:
        yield
        return
    with _lock:
        if _state["holders"] == 0:
            _state["previous"] = setter(1)
        _state["holders"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["holders"] -= 1
            if _state["holders"] == 0:
                setter(_state["previous"])
