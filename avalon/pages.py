"""Large buffers whose unwritten pages cost no memory.

numpy advises transparent huge pages for arrays from 4 MiB (madvise MADV_HUGEPAGE), so writing one
byte of a 2 MiB-aligned range makes all of it resident. That costs nothing for an array written
whole, but some buffers are sized for a worst case and written in parts: oneDNN's LSTM workspace
(12 of its 31 MB never written on bench/steps.py's LSTM), the per-thread oneDNN scratchpad (that LSTM
writes 6 of its 32 MB) and a compiled tape's workspace arena holding the former. Each written range then
grows to whole huge pages at both ends: that LSTM step's peak memory is 48 MB with huge pages, 41.6
without (2 threads).

`empty(nbytes)` maps such a buffer itself (anonymous, private, MADV_NOHUGEPAGE where the system has it):
4 KiB pages, each resident once written, all returned to the system when the array is freed. Huge
pages do save time where a buffer is dense (TLB reach: 4 KiB pages made that LSTM step 1.5-2% slower
at one thread), so once a reused buffer has been written as it will be at every call, `settle` gives
its fully written 2 MiB ranges huge pages, which adds nothing resident (the step's time is then
numpy's: 0.99-1.01x). `HUGE_PAGES = True` gives np.empty's arrays again (huge pages also measured 1%
faster on the ResNet-ish step's arena, written whole: arenas use `empty` only when they hold a
primitive's `partial` result). tracemalloc does not see these mappings. `python bench/pages_ab.py`
compares the settings.
"""
import ctypes
import ctypes.util
import mmap

import numpy as np

HUGE_PAGES = False
SMALLEST = 4 << 20  # bytes: numpy advises huge pages from here (smaller arrays: np.empty)
HUGE = 2 << 20  # bytes of a huge page (x86-64, and arm64 with 4 KiB pages)
_MADV_COLLAPSE = 25  # Linux 6.1+; Python 3.11's mmap does not name it


def empty(nbytes):
    """A uint8 array of `nbytes` bytes (zeros when mapped here, from SMALLEST up; 2 MiB-aligned)."""
    if HUGE_PAGES or nbytes < SMALLEST:
        return np.empty(nbytes, np.uint8)
    if hasattr(mmap, "MAP_PRIVATE"):
        pages = mmap.mmap(-1, nbytes + HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # + room to align
    else:  # Windows: no huge pages to avoid
        pages = mmap.mmap(-1, nbytes + HUGE)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        pages.madvise(mmap.MADV_NOHUGEPAGE)  # under THP "always" too, not only numpy's advice
    origin = np.frombuffer(pages, np.uint8, count=1).ctypes.data
    # from a 2 MiB boundary (`settle` counts huge pages from it); holds the mapping while it lives
    return np.frombuffer(pages, np.uint8, count=nbytes, offset=-origin % HUGE)


def settle(array):
    """Turn each 2 MiB range of `array` (from `empty`) whose pages are all resident into a huge page
    (MADV_COLLAPSE): called once its user has written what it writes, it gives the dense parts back
    the TLB reach of huge pages (the LSTM step's arena: 4 KiB pages cost 1.5-2% of its time) at no
    memory. Does nothing where mincore or MADV_COLLAPSE is missing."""
    pages = getattr(array.base, "obj", None)  # np.frombuffer's memoryview of the mapping
    libc = _libc()
    if not isinstance(pages, mmap.mmap) or libc is None:
        return
    size = mmap.PAGESIZE
    resident = (ctypes.c_ubyte * (array.nbytes // size))()
    if libc.mincore(ctypes.c_void_p(array.ctypes.data), ctypes.c_size_t(len(resident) * size), resident):
        return
    per = HUGE // size
    skip = -array.ctypes.data % HUGE // size  # pages before the first 2 MiB-aligned address
    ranges = np.frombuffer(resident, np.uint8)[skip:]
    full = (ranges[:len(ranges) // per * per].reshape(-1, per) & 1).all(axis=1)
    start = array.ctypes.data + skip * size - np.frombuffer(pages, np.uint8, count=1).ctypes.data  # in the mapping
    for k in np.flatnonzero(full):
        try:
            pages.madvise(mmap.MADV_HUGEPAGE, start + int(k) * HUGE, HUGE)
            pages.madvise(_MADV_COLLAPSE, start + int(k) * HUGE, HUGE)
        except (OSError, ValueError, AttributeError):  # no MADV_COLLAPSE (kernel < 6.1), no huge page free
            return


def _libc():
    if not hasattr(_libc, "handle"):
        name = ctypes.util.find_library("c")
        try:
            _libc.handle = ctypes.CDLL(name) if name else None
            _libc.handle.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        except (OSError, AttributeError):
            _libc.handle = None
    return _libc.handle
