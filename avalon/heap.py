"""glibc's malloc told to keep freed memory for the next training step.

A step allocates and frees the same arrays at every call: convolutions' blocked copies, products'
results, pooling's workspace, the gradients. With glibc's settings as Avalon used to hold them (every
block from 128 KiB mapped afresh, a freed heap top over 128 KiB given back), each of those pages was
faulted in and zeroed again at every step, 0.6 µs a page on the 2-vCPU machine of issue #9: 7,600
faults per LeNet step, 10,000 per Transformer step, 34,000 per ResNet-ish step. Keeping the memory
(`keep_freed_memory`: blocks up to MMAP_THRESHOLD come from the heap, and up to TRIM_THRESHOLD of free
heap top stays mapped) took those to none. Avalon alone at two threads, fresh processes alternating:
LeNet 76.5 -> 51.7 ms, LSTM 45.3 -> 41.0, Transformer 256 -> 203, ResNet-ish 1307 -> 1111. The
high-water mark of the first three steps moved by -10 to +15 MB (MLP 27.7 -> 17.7 MB, ResNet-ish
345 -> 360). These are the settings glibc itself reaches once a 32 MiB block has been freed (its
dynamic threshold stops there), as it soon is in a PyTorch process.

It is called when oneDNN loads and when a tape is compiled, once per process. A value set in the
environment (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, or either in GLIBC_TUNABLES) is left as
it is, and `KEEP_FREED = False` (before the first call) leaves glibc's settings alone. Nothing happens
where the C library is not glibc.
"""
import ctypes
import os

KEEP_FREED = True
MMAP_THRESHOLD = 32 << 20  # bytes: larger blocks are still mapped on their own and given back when freed
TRIM_THRESHOLD = 64 << 20  # bytes of free heap top kept mapped
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)
_done = []


def _set_by_user(name, tunable):
    return name in os.environ or tunable in os.environ.get("GLIBC_TUNABLES", "")


def keep_freed_memory():
    """Set glibc's mmap and trim thresholds (see the module docstring); True when they were set now."""
    if _done or not KEEP_FREED:
        return False
    _done.append(True)
    if _set_by_user("MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold") \
            or _set_by_user("MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
