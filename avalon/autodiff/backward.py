"""Reverse mode as a tape transform: walk the tape backwards, appending each rule's calls to it.

Only nodes that both depend on a differentiated input and reach the output are visited; a node with
no gradient arriving is skipped (a symbolic zero); several gradients into one node are summed with
explicit `add` calls; a gradient of a broadcast operand is summed back to its shape.
"""
import numpy as np

from ..backend import is_array, is_inexact
from ..errors import GradientError
from ..ops import elementwise as ew
from ..ops import reduce as rd
from ..rules import vjp_of
from ..tape import Call, Node
from ..tracing.tracer import Tracer
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


def backward(trace, output, wrt, seed):
    """Append the backward pass of `output` (a node) to `trace`'s tape; return gradient tracers
    (one per node in `wrt`; None where no gradient reaches it). `seed` is the output's cotangent.

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
    rule_of = tape.meta.setdefault("rule_of", {})
    saved = trace.phase, trace.origin
    trace.phase = "backward"
    try:
        for node in reversed(list(tape.nodes)):
            start = len(tape.nodes)
            for fire in trace.grad_hooks.get(node, ()):  # every gradient into `node` is in, none passed on
                trace.origin = node
                fire(grads)
            if isinstance(node, Call) and node in active and node in grads:
                _apply_rule(trace, node, grads, active)
            rule_of.update((n.id, node.id) for n in tape.nodes[start:])
    finally:
        trace.phase, trace.origin = saved
    tape.meta.setdefault("grads", {}).update((n.id, g._node.id) for n, g in grads.items())
    return [grads.get(w) for w in wrt]


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
            f"the function returned an array of shape {tuple(output.shape)}, not a scalar: "
            "reduce it (e.g. `.sum()` or `.mean()`) or pass `seed=` (an array of that shape) "
            "to get the vector-Jacobian product")
    return xp.ones(output.shape, dtype=output.dtype)
