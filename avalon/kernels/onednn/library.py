"""Loading oneDNN (the optional extra `avalon[fast]` installs the `onednn-cpu-gomp` wheel) and what
every oneDNN call needs: the library handle, status checks, the CPU engine, a stream per thread and the
thread count of its OpenMP pool.

oneDNN is the library PyTorch's CPU convolutions run on; its JIT kernels (sgemm, direct convolutions,
batch norm) are faster than numpy's OpenBLAS on the shapes of a training step. Everything built on it
has a pure-numpy path beside it: `enabled()` is False without the wheel, after `set_enabled(False)`, or
with the environment variable AVALON_ONEDNN=0.

GNU OpenMP's spin count after a parallel region, GOMP_SPINCOUNT, is set to SPINCOUNT (25000) when
oneDNN loads, unless the environment already sets it (see SPINCOUNT). Loading also tells glibc to keep
freed memory for the next step (avalon/heap.py).
"""
import contextlib
import ctypes
import ctypes.util
import os
import sys
import threading

from ... import heap
from ... import threads as _threads
from ...errors import AvalonError

_switch = {"on": os.environ.get("AVALON_ONEDNN", "1") != "0"}

_SONAME = "libdnnl.so.3"
_STATUS = {1: "out of memory", 2: "invalid arguments", 3: "unimplemented", 5: "runtime error",
           6: "not required", 7: "invalid graph", 8: "invalid graph op", 9: "invalid shape",
           10: "invalid data type"}
_loaded = {}
_local = threading.local()


class OneDNNError(AvalonError, RuntimeError):
    """A oneDNN call failed: which call, oneDNN's status, and how to go on without oneDNN."""


def _candidates():
    explicit = os.environ.get("AVALON_ONEDNN_LIBRARY")
    if explicit:
        yield explicit
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix, os.path.expanduser("~/.local"))):
        yield os.path.join(prefix, "lib", _SONAME)
    found = ctypes.util.find_library("dnnl")
    if found:
        yield found


# GNU OpenMP's workers spin after each parallel region for GOMP_SPINCOUNT iterations (read once, when
# libgomp loads; its own default 300000) before they sleep; at 2 threads the spinning worker holds the
# core Avalon's own worker thread needs for the next numpy pass (threads_split, conv_split). Measured
# with bench/omp_spin.py on the busy shared machine, the ResNet-ish step at 2 threads: 4.4 s spinning,
# 1.5 s at 10000, 1.7 s at 0 under heavy load; 653, 585 and 661 ms with less (AVX-512 Xeon). Too short
# a spin puts the worker to sleep in the single-threaded stretches inside oneDNN's LSTM primitive, and
# waking it costs at every step of the recurrence: on an AMD EPYC (AVX2), the LSTM step at 2 threads,
# 6 fresh processes each, 61.6 ms at 10000 against 53.3 at 25000 (the MLP 30.5 against 24.8; the
# ResNet-ish and Transformer steps the same within this machine's noise). A user's value is kept.
SPINCOUNT = "25000"


def library():
    """The loaded libdnnl (a ctypes.CDLL), or None when it is not installed or cannot load."""
    if "lib" not in _loaded:
        _loaded["lib"] = None
        os.environ.setdefault("GOMP_SPINCOUNT", SPINCOUNT)  # before libdnnl loads libgomp
        for path in _candidates():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            if _version(lib) >= (3, 0):
                _loaded["lib"] = lib
                heap.keep_freed_memory()
                break
    return _loaded["lib"]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int),
                ("hash", ctypes.c_char_p), ("cpu_runtime", ctypes.c_uint), ("gpu_runtime", ctypes.c_uint)]


def _version(lib):
    lib.dnnl_version.restype = ctypes.POINTER(_Version)
    v = lib.dnnl_version().contents
    return v.major, v.minor, v.patch


def version():
    """(major, minor, patch) of the loaded oneDNN, or None."""
    lib = library()
    return _version(lib) if lib is not None else None


def available():
    """Whether oneDNN is installed and loads."""
    return library() is not None


def enabled():
    """Whether Avalon's kernels should use oneDNN now: installed, and not switched off."""
    return _switch["on"] and library() is not None


def set_enabled(flag):
    """Switch Avalon's oneDNN kernels on or off (off: the numpy paths); returns the previous setting.
    Compiled tapes follow the switch at their next call."""
    previous, _switch["on"] = _switch["on"], bool(flag)
    return previous


def check(status, what):
    """Raise OneDNNError unless `status` (a dnnl_status_t) is success."""
    if status != 0:
        raise OneDNNError(
            f"oneDNN {what} failed: {_STATUS.get(status, f'status {status}')}. This is a bug in Avalon's use "
            "of oneDNN or an unsupported case; call avalon.kernels.onednn.set_enabled(False) (or set the "
            "environment variable AVALON_ONEDNN=0) to run on the numpy kernels, and report it")


def _gomp():
    if "gomp" not in _loaded:
        try:
            _loaded["gomp"] = ctypes.CDLL("libgomp.so.1")  # the OpenMP runtime libdnnl links
        except OSError:
            _loaded["gomp"] = None
    return _loaded["gomp"]


def _requested(threads):
    """The count `prepare(threads)` sets, or None where it leaves OpenMP's own."""
    if _forked["child"]:
        return 1
    return threads if threads is not None else _threads._state["threads"]


def threads(requested=None):
    """The OpenMP thread count a oneDNN call made now by this thread would run on after
    `prepare(requested)`: 1 in a forked child, else `requested`, else the count given to
    avalon.set_num_threads, else OpenMP's own (1 without an OpenMP runtime)."""
    count = _requested(requested)
    if count is None:
        gomp = _gomp()
        count = gomp.omp_get_max_threads() if gomp is not None else 1
    return int(count)


_AVX512_CORE = 0x20  # the bit every dnnl_cpu_isa_t from avx512_core up sets (avx2 is 0x7, avx2_vnni_2 0x1f)


def has_avx512():
    """Whether oneDNN's kernels run with AVX-512 on this CPU (its effective ISA); False without oneDNN."""
    if "avx512" not in _loaded:
        lib = library()
        if lib is None:
            return False
        lib.dnnl_get_effective_cpu_isa.restype = ctypes.c_int
        _loaded["avx512"] = bool(lib.dnnl_get_effective_cpu_isa() & _AVX512_CORE)
    return _loaded["avx512"]


def prepare(threads=None):
    """Set the OpenMP thread count of the oneDNN calls this thread makes next: `threads`, else the
    count given to avalon.set_num_threads, else OpenMP's own (OMP_NUM_THREADS, threadpoolctl). An
    OpenMP setting belongs to the calling thread, so pool threads pass their own. In a forked child it
    is always one: GNU OpenMP's thread team does not survive fork, and a parallel call there hangs."""
    count = _requested(threads)
    gomp = _gomp()
    if count is not None and gomp is not None:
        gomp.omp_set_num_threads(int(count))


@contextlib.contextmanager
def keeping_threads():
    """Put the calling thread's OpenMP thread count back as it was after the block, for calls that
    `prepare` their own count (the LSTM's one-thread products). The count is per thread and shared with
    every OpenMP user in the process: left at 1, it made PyTorch's next step in bench/steps.py's 2-thread
    A/B runs a one-thread step (113 -> 31 ms on the LSTM workload)."""
    gomp = _gomp()
    previous = gomp.omp_get_max_threads() if gomp is not None else None
    try:
        yield
    finally:
        if previous is not None and not _forked["child"]:
            gomp.omp_set_num_threads(previous)


def _mark_forked():
    _forked["child"] = True


_forked = {"child": False}
os.register_at_fork(after_in_child=_mark_forked)


def engine():
    """The CPU engine (made once)."""
    if "engine" not in _loaded:
        lib = library()
        handle = ctypes.c_void_p()
        check(lib.dnnl_engine_create(ctypes.byref(handle), 1, 0), "dnnl_engine_create(cpu)")  # 1: dnnl_cpu
        _loaded["engine"] = handle
    return _loaded["engine"]


def stream():
    """This thread's stream on the CPU engine (oneDNN streams are not shared between threads)."""
    handle = getattr(_local, "stream", None)
    if handle is None or _local.pid != os.getpid():
        handle = ctypes.c_void_p()
        check(library().dnnl_stream_create(ctypes.byref(handle), engine(), 1), "dnnl_stream_create")
        _local.stream, _local.pid = handle, os.getpid()
    return handle


# Loaded with Avalon, as PyTorch's kernels load with torch: loading relocates a large C++ library (+12.7 MB
# resident here), memory of the process, not of the first step that happens to call it (bench/steps.py's
# memory column starts after the model is built: the LSTM step on oneDNN's LSTM primitive measured 61 MB
# with the library loaded inside the step, 50 with it loaded before).
if _switch["on"]:
    library()
