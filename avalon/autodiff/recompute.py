"""Gradient checkpointing as a tape transform: trade compute for memory.

A checkpointed segment's calls are recorded as usual. When the backward pass reaches the segment it
first re-emits the segment's calls on the tape, reading the segment's inputs, and the segment's rules
then read those recomputed values instead of the forward ones. The forward intermediates are then
used by nothing after the forward pass, so they die there, and the compiled replay's buffer plan
recycles their memory; only the segment's inputs and outputs stay alive until its backward pass.

Random draws and effects (a hook's call into Python) are not re-emitted: the recomputation reads
their forward results, so a dropout mask is the same in both passes and a hook runs once. The
segment's inputs reach the recomputation through `recompute`, an identity call, so that
common-subexpression elimination cannot merge the recomputed calls back into the forward ones
(which would keep the forward intermediates alive and undo the saving).
"""
import contextlib

from ..ops.primitive import primitive
from ..rules import rule
from ..tape import Call, Const, Node
from ..tracing import release


@primitive("recompute", view=True)
def recompute(x):
    """`x` itself: a checkpointed segment's input, as its recomputation in the backward pass reads it."""
    return x


rule(recompute)(lambda g, out, x: (g,))


class Segment:
    """The forward calls of one checkpointed segment, and (once the backward pass reached it) the
    recomputed node standing in for each of them."""

    def __init__(self, calls):
        self.calls = calls
        self.recomputed = None


@contextlib.contextmanager
def segment(trace):
    """Calls `trace` records inside form one checkpointed segment. A segment recorded inside another
    is part of the outer one, which recomputes it all."""
    start = len(trace.tape.nodes)
    with release.paused(trace):
        yield
    calls = [n for n in trace.tape.nodes[start:] if isinstance(n, Call)]
    seg = Segment(calls)
    for n in calls:
        trace.checkpoints[n] = seg


def values_for_rule(trace, node):
    """The nodes `node`'s rule reads in place of the forward ones ({} outside checkpointed segments);
    the first rule of a segment to run re-emits the segment's calls."""
    seg = trace.checkpoints.get(node)
    if seg is None:
        return {}
    if seg.recomputed is None:
        seg.recomputed = _re_emit(trace, seg)
    return seg.recomputed


def _re_emit(trace, seg):
    """Append a copy of each call of `seg` but random draws and effects (`pinned`) to the tape, reading
    the segment's inputs and those calls' results through `recompute`; {forward node: its recomputed node}."""
    copies = {}

    def operand(a):
        if not isinstance(a, Node) or isinstance(a, Const):
            return a
        if a not in copies:  # a segment input, a draw or an effect's result: read once through `recompute`
            copies[a] = _append(trace, a, Call(recompute, [a], {}, a.shape, a.dtype))
        return copies[a]

    for n in seg.calls:
        if not n.prim.pinned:
            copies[n] = _append(trace, n, Call(n.prim, [operand(a) for a in n.args], n.params, n.shape, n.dtype))
    return {n: copies[n] for n in seg.calls if not n.prim.pinned}


def _append(trace, like, node):
    """`node` on the tape, recomputing `like`: its value seen while tracing, line, scope; the
    backward phase; and no gradient when `like` had none."""
    node.value, node.location, node.scope, node.phase = like.value, like.location, like.scope, trace.phase
    if like in trace.no_grad:
        trace.no_grad.add(node)
    return trace.tape.append(node)
