"""Workspaces laid out in one arena by liveness: slots whose memory is never alive at the same time
share bytes, so the memory a compiled tape keeps between calls is about its peak of intermediates, not
the sum of every one (see `compile_tape(workspace=True)`).
"""
import bisect

import numpy as np

from .passes import memory_lifetimes

ALIGN = 64  # bytes: every buffer starts on a cache line (and a SIMD-aligned address)


def arena_layout(tape, plan, slots):
    """([byte offset of each slot, in slot order], the arena's size in bytes).

    A slot's memory is alive from the call that first writes it to the last call reading any value
    written into it since (`plan` hands a dead buffer to later calls) or any view of those. Offsets
    come from replaying the tape's allocations on a first-fit free list: a slot made at a call takes
    the lowest free range that fits (or grows the arena), and its range is free again after its last
    reader, never before or at that call, so no call writes into bytes it reads. Linear in the tape
    for the short free lists tapes give.
    """
    if not slots:
        return [], 0
    dies, _ = memory_lifetimes(tape)
    order = {n: i for i, n in enumerate(tape.nodes)}
    owner, end = {}, {o: order[o] for o in slots}
    for n in tape.nodes:
        if n in slots or n in plan:
            owner[n] = n if n in slots else owner.get(plan[n])
            if owner[n] is not None:
                end[owner[n]] = max(end[owner[n]], dies[n])
    freed = {}
    for o, e in end.items():
        freed.setdefault(e, []).append(o)
    free = []  # sorted, disjoint (offset, size) ranges below `top`
    top, offsets = 0, {}
    for i, n in enumerate(tape.nodes):
        if n in slots:
            offsets[n], top = _take(free, _aligned(nbytes(n.shape, n.dtype)), top)
        for o in freed.get(i, ()):
            _give(free, offsets[o], _aligned(nbytes(o.shape, o.dtype)))
    return [offsets[o] for o in slots], top


def _take(free, size, top):
    """(an offset of `size` free bytes, the new top): the first free range that fits, else the top
    (extended from a free range that reaches it)."""
    for k, (offset, room) in enumerate(free):
        if room >= size:
            if room == size:
                del free[k]
            else:
                free[k] = (offset + size, room - size)
            return offset, top
    if free and free[-1][0] + free[-1][1] == top:
        offset = free.pop()[0]
        return offset, offset + size
    return top, top + size


def _give(free, offset, size):
    """Free `size` bytes at `offset`, merged with the free ranges next to them."""
    k = bisect.bisect(free, (offset, size))
    if k < len(free) and offset + size == free[k][0]:
        size += free.pop(k)[1]
    if k and free[k - 1][0] + free[k - 1][1] == offset:
        offset, size = free[k - 1][0], free[k - 1][1] + size
        del free[k - 1]
        k -= 1
    free.insert(k, (offset, size))


def nbytes(shape, dtype):
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _aligned(size):
    return max(ALIGN, -(-size // ALIGN) * ALIGN)
