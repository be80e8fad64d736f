"""In-place elementwise results: `buffer_plan` lets an elementwise call write its result into the buffer
of an operand it reads for the last time (ReLU's backward `where(y > 0, g, 0)` into y's buffer, a bias
add into its product's), instead of into a buffer that died before it or new memory. The two buffers
were alive together at that call; now one is, which lowers a step's peak where such a call sets it
(a Transformer layer's feed-forward: 8 MB per layer of bench/steps.py's workload).

Only primitives that compute element i of their result from element i of each operand and are safe
when `out` is an operand run in place: numpy's ufuncs (exactly the same memory read and written: numpy
handles it), and the kernel library's `fused` chains (avalon/kernels: a kernel whose `out` is one of its
inputs keeps that input's values until its last step has read them). The operand must have the
result's shape and dtype (no broadcasting, no casting), own its memory (an `out`-style call's buffer,
never an input, a constant or a view), share no memory with the call's other operands, and die at this
call: no later call, output or effect reads it; not one a fused `where` selects from (see `_selected`).
`IN_PLACE = False` switches it off.
"""
import numpy as np

from ..kernels.program import Input
from ..ops import elementwise as ew
from ..tape import Call
from .fuse import fused

IN_PLACE = True

_ELEMENTWISE = frozenset((fused, ew.relu, ew.add, ew.subtract, ew.multiply, ew.divide, ew.maximum, ew.minimum,
                          ew.negative, ew.exp, ew.log, ew.sqrt, ew.square, ew.tanh, ew.sin, ew.cos))


def operand_buffer(call, dying, roots):
    """The operand of `call` whose buffer `call` writes its result into, or None. `dying`: the buffers
    whose last reader is `call`; `roots`: `passes.memory_roots` (who may share whose memory)."""
    if not IN_PLACE or call.prim not in _ELEMENTWISE or not dying:
        return None
    dtype = np.dtype(call.dtype)
    selected = _selected(call)
    for k, a in enumerate(call.inputs):
        if a in dying and isinstance(a, Call) and a.shape == call.shape and np.dtype(a.dtype) == dtype \
                and k not in selected and not any(b is not a and a in roots[b] for b in call.inputs):
            return a
    return None


def _selected(call):
    """Positions of the inputs a fused kernel's `where` selects from: written over, they would cost the
    kernel its bit-mask selection (numpy_backend._where_into), 4-5 times the time on ReLU's backward."""
    if call.prim is not fused:
        return ()
    return {a.k for op, operands in call.params["kernel"].program.steps if op == "where"
            for a in operands[1:] if isinstance(a, Input)}
