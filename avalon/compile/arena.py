"""Workspaces laid out in one arena by liveness: slots whose memory is never alive at the same time
share bytes, so the memory a compiled tape keeps between calls is about its peak of intermediates, not
the sum of every one (see `compile_tape(workspace=True)`).
"""
import numpy as np

from .passes import memory_lifetimes

ALIGN = 64  # bytes: every buffer starts on a cache line (and a SIMD-aligned address)


def arena_layout(tape, plan, slots):
    """([byte offset of each slot, in slot order], the arena's size in bytes).

    A slot's memory is alive from the call that first writes it to the last call reading any value
    written into it since (`plan` hands a dead buffer to later calls) or any view of those. Slots are
    placed largest first, each at the lowest offset where it overlaps no placed slot alive at the
    same time (the usual greedy that lands near the peak of live bytes).
    """
    if not slots:
        return [], 0
    dies, _ = memory_lifetimes(tape)
    order = {n: i for i, n in enumerate(tape.nodes)}
    owner = {}
    life = {o: [order[o], order[o]] for o in slots}
    for n in tape.nodes:
        if n in slots or n in plan:
            owner[n] = n if n in slots else owner.get(plan[n])
            if owner[n] is not None:
                life[owner[n]][1] = max(life[owner[n]][1], dies[n])
    sizes = {o: _aligned(int(np.prod(o.shape, dtype=np.int64)) * np.dtype(o.dtype).itemsize) for o in slots}
    placed = []  # (offset, size, start, end)
    offsets = {}
    for o in sorted(slots, key=lambda o: (-sizes[o], slots[o])):
        start, end = life[o]
        taken = sorted((off, off + size) for off, size, s, e in placed if s <= end and start <= e)
        offset = 0
        for lo, hi in taken:
            if offset + sizes[o] <= lo:
                break
            offset = max(offset, hi)
        offsets[o] = offset
        placed.append((offset, sizes[o], start, end))
    total = max(off + size for off, size, _, _ in placed)
    return [offsets[o] for o in sorted(slots, key=slots.get)], total


def _aligned(nbytes):
    return max(ALIGN, -(-nbytes // ALIGN) * ALIGN)
