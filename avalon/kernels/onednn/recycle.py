"""Fresh float32 result arrays for oneDNN's products, taken back once nothing else holds them.

A product returned as a new array (a weight gradient, an output of a compiled step) is, from glibc's
128 KiB mmap threshold up (library.py holds it there), a new mapping whose pages the kernel zeroes
and faults in while sgemm writes it: 0.4 ms of a 4 MB array's 2.9 ms product, 2.5 ms of the MLP's
20.9 ms step (one thread). `empty(shape)` hands out an array made before for the same shape when only
this module still refers to it (CPython's reference count: the caller dropped it and every view of
it, since a view holds its base), else a new one, kept for later while this module holds fewer than
`PER_SHAPE` of that shape and `LIMIT` bytes in all. An array still referenced anywhere is never
handed out again, so a caller may keep, change or return what it gets.

Callers ask for it (`kept=True`) outside traces only: a trace keeps its values for a while and then
drops them all, which would leave this module holding idle arrays (the MLP's first call peaked 10 MB
higher); and not for a kernel's temporaries, which would stay resident between their uses.

`RECYCLE = False` switches it off (np.empty every time). Arrays below `SMALLEST` bytes are never kept:
the kept arrays stay resident while idle, which raises a step's peak (MLP 25.4 -> 27.0 MB with the
MLP's 3-4 MB weight gradients kept; the Transformer's ≤ 1 MB ones would give 5.7 of its 190 ms for
106.8 -> 109.6 MB, where its memory is the tighter target).
"""
import sys
import threading

import numpy as np

RECYCLE = True
SMALLEST = 2 << 20  # bytes (see the module docstring)
PER_SHAPE = 2  # arrays kept per shape (the weight gradients of two layers of one size)
LIMIT = 16 << 20  # bytes kept in all

_F32 = np.dtype(np.float32)
_kept = {}  # shape -> [arrays]
_lock = threading.Lock()
_held = [0]  # bytes kept
_IDLE = 3  # references to a kept array nobody else holds: the list, the loop variable, getrefcount's


def empty(shape, kept=True):
    """An uninitialised C-contiguous float32 array of `shape`: one handed out before and since dropped
    by everyone else, or a new one, kept for later (in place of the oldest kept array still in use
    once PER_SHAPE are kept) while LIMIT allows. `kept=False`: np.empty."""
    size = _F32.itemsize * int(np.prod(shape))
    if not (RECYCLE and kept) or size < SMALLEST:
        return np.empty(shape, _F32)
    shape = tuple(shape)
    with _lock:
        arrays = _kept.setdefault(shape, [])
        for x in arrays:
            if sys.getrefcount(x) == _IDLE:
                return x
        x = np.empty(shape, _F32)
        if len(arrays) == PER_SHAPE:  # every one in use: the oldest is left to its holders
            arrays.pop(0)
            _held[0] -= size
        if _held[0] + size <= LIMIT:
            arrays.append(x)
            _held[0] += size
        return x


def clear():
    """Forget every kept array (those still in use stay with their holders)."""
    with _lock:
        _kept.clear()
        _held[0] = 0
