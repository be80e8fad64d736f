"""Reverse mode as a tape transform: walk the tape backwards, appending each rule's calls to it.

Only nodes that both depend on a differentiated input and reach the output are visited; a node with
no gradient arriving is skipped (a symbolic zero); several gradients into one node are summed with
explicit `add` calls; a gradient of a broadcast operand is summed back to its shape.

Rules compute on the values seen while tracing. With `release=True` the walk lets go of each value
as soon as nothing after that point can read it (`_Release`), so the first call of a cached gradient
holds what a compiled replay would, not every forward and backward value at once.
"""
import numpy as np

from ..backend import is_array, is_inexact
from ..errors import GradientError
from ..ops import elementwise as ew
from ..ops import reduce as rd
from ..rules import vjp_of
from ..tape import Call, Node
from ..tracing import release as forward_release
from ..tracing.tracer import Tracer, is_held
from .recompute import values_for_rule


def _differentiable(node):
    return is_inexact(node.dtype)


def active_nodes(tape, output, wrt, no_grad=()):
    """Calls on a path from any of `wrt` to `output` carrying floating-point values (a primitive that
    is not differentiable, such as `stop_gradient` or `floor`, ends a path, and so does a call in
    `no_grad`: one recorded under `avalon.no_grad`)."""
    depends = set(wrt)
    for n in tape.nodes:
        if isinstance(n, Call) and n.prim.differentiable and _differentiable(n) and n not in no_grad and \
                any(a in depends for a in n.inputs):
            depends.add(n)
    reaches = {output}
    for n in reversed(tape.nodes):
        if n in reaches and isinstance(n, Call):
            reaches.update(n.inputs)
    return depends & reaches


def backward(trace, output, wrt, seed, release=False):
    """Append the backward pass of `output` (a node) to `trace`'s tape; return gradient tracers
    (one per node in `wrt`; None where no gradient reaches it). `seed` is the output's cotangent.
    `release` lets the walk drop values seen while tracing once nothing can read them any more (for
    a tape that is compiled and then forgets its values; not for one a reader shows, nor for a
    gradient recorded inside traced code, whose nodes an enclosing gradient's rules read).

    Gradient hooks (`trace.grad_hooks`: a module's backward hooks, `Tensor.register_hook`) registered
    on a node run when the walk reaches it, before its rule: all of its gradient has arrived and none
    has been passed on, so a hook sees it whole and may replace it in `grads`.

    For readers of the tape (the workbench's stepper), `tape.meta` links the passes by node id
    (ids survive tape copies): "rule_of" maps each backward node to the forward node whose rule (or
    gradient hook) emitted it, "grads" each node to its gradient.
    """
    tape = trace.tape
    active = active_nodes(tape, output, wrt, trace.no_grad)
    grads = {output: seed}
    grad_ids = tape.meta.setdefault("grads", {})
    rule_of = tape.meta.setdefault("rule_of", {})
    releasing = _Release(trace, wrt) if release else None
    if releasing:
        forward_release.sweep(trace)  # what the forward pass left that no rule reads
    saved = trace.phase, trace.origin
    trace.phase = "backward"
    try:
        for node in reversed(list(tape.nodes)):
            start = len(tape.nodes)
            for fire in trace.grad_hooks.get(node, ()):  # every gradient into `node` is in, none passed on
                trace.origin = node
                fire(grads)
            replaced = []  # nodes of the gradients the rule's results were added to
            if isinstance(node, Call) and node in active and node in grads:
                before = [grads.get(a) for a in node.inputs] if releasing else ()
                _apply_rule(trace, node, grads, active)
                replaced = [b._node for a, b in zip(node.inputs, before) if b is not None and grads[a] is not b]
                del before
            if releasing:
                releasing.after(node, grads, grad_ids, tape.nodes[start:], replaced)
            rule_of.update((n.id, node.id) for n in tape.nodes[start:])
    finally:
        trace.phase, trace.origin = saved
    grad_ids.update((n.id, g._node.id) for n, g in grads.items())
    return [grads.get(w) for w in wrt]


class _Release:
    """What the backward walk lets go of after visiting a forward node: the node's own value (no
    rule still to run reads it: rules read their node and its operands, which come earlier), its
    gradient once passed on (unless a gradient hook might still read it, or it is a result), and
    the values of backward calls that no tracer stands for any more (a rule's intermediates, a
    gradient that another was added to). A value a tracer still stands for (what the traced code or
    a hook kept, a pending gradient) stays, as do inputs, constants and what checkpointed segments
    recompute from.
    """

    def __init__(self, trace, wrt):
        self.trace = trace
        self.keep = set(wrt)
        self.segments = set()

    def after(self, node, grads, grad_ids, emitted, replaced):
        trace = self.trace
        segment = trace.checkpoints.get(node)
        if segment is not None and id(segment) not in self.segments:
            self.keep.update(segment.calls)  # the recomputation reads their values (draws, effects)
            if segment.recomputed is not None:  # read through a dict, not tracers
                self.keep.update(segment.recomputed.values())
                self.segments.add(id(segment))
        candidates = [node, *emitted, *replaced]
        if not trace.grad_hooks and node in grads and isinstance(node, Call) and node not in self.keep:
            gradient = grads.pop(node)
            grad_ids[node.id] = gradient._node.id
            candidates.append(gradient._node)
            del gradient
        for n in candidates:
            if isinstance(n, Call) and n not in self.keep and not is_held(trace, n):
                n.value = None


def _apply_rule(trace, node, grads, active):
    """Run `node`'s rule on its incoming gradient; add what it returns into its operands' gradients.

    In a checkpointed segment the rule reads the segment's recomputed values (see `recompute`)."""
    vjp = vjp_of(node.prim, node)
    trace.origin = node
    recomputed = values_for_rule(trace, node)
    args = [Tracer(recomputed.get(a, a), trace) if isinstance(a, Node) else a for a in node.args]
    results = vjp(grads[node], Tracer(recomputed.get(node, node), trace), *args, **node.params)
    if len(results) != len(node.args):
        raise GradientError(f"the rule of {node.prim.name} returned {len(results)} gradients for "
                            f"{len(node.args)} arguments: return a tuple with one gradient (or None) per argument")
    for arg, g in zip(node.args, results):
        if g is None or not isinstance(arg, Node) or arg not in active:
            continue
        g = _fit(trace, node, g, arg)
        grads[arg] = grads[arg] + g if arg in grads else g


def _fit(trace, node, g, arg):
    """Sum a gradient back over broadcast axes and give it the operand's dtype."""
    if is_array(g):  # a rule may compute a gradient that does not depend on traced values
        g = Tracer(trace.const(g), trace)
    if not isinstance(g, Tracer):
        raise GradientError(f"the rule of {node.prim.name} returned {type(g).__name__} instead of an array")
    if tuple(g.shape) != tuple(arg.shape):
        if not _broadcasts_to(arg.shape, g.shape):
            raise GradientError(
                f"the rule of {node.prim.name} returned a gradient of shape {tuple(g.shape)} for an operand of "
                f"shape {tuple(arg.shape)}" + (f" (at {node.location})" if node.location else "") +
                ": a gradient has its operand's shape, or a shape the operand broadcasts to")
        g = rd.sum_to(g, shape=arg.shape)
    if g.dtype != arg.dtype:
        g = ew.astype(g, dtype=arg.dtype)
    return g


def _broadcasts_to(shape, target):
    try:
        return np.broadcast_shapes(tuple(shape), tuple(target)) == tuple(target)
    except ValueError:
        return False


def default_seed(output, xp):
    """The cotangent 1 of a scalar output; a non-scalar output needs an explicit seed."""
    if output.shape not in ((), (1,)):
        raise GradientError(
            f"the function returned an array of shape {tuple(output.shape)}, not a scalar",
            fix="reduce it (e.g. `.sum()` or `.mean()`) or pass `seed=` (an array of that shape) "
                "to get the vector-Jacobian product")
    return xp.ones(output.shape, dtype=output.dtype)
