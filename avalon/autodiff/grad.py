"""`grad`, `grad_tape` and `value_and_grad`: gradients of a function's scalar output.

`loss, grads = avalon.grad(f, *args)` returns f's value and `grads`, a tuple mirroring `args`: an array
gets an array of its shape and dtype, a holder (a Module) a `Grads` of its trainable arrays, lists,
tuples and dicts the same containers, anything else None. Called on arrays, it goes through the
compile cache; called inside traced code (grad of grad), it records onto the enclosing tape.
"""
import numpy as np

from .. import tree
from ..backend import namespace
from ..errors import GradientError
from ..tracing import Tracer, record, write_state
from . import cache
from .backward import backward, default_seed


def _differentiable(node):
    return node.role != "buffer" and np.issubdtype(node.dtype, np.inexact)


def _mirror(spec, per_leaf, holders):
    """Gradients arranged like the arguments (holders become `Grads` of their trainable arrays)."""
    def on_holder(obj, values, roles):
        sources = {name: array for name, array, _ in tree.holder_of(obj).named_arrays(obj)}
        return tree.Grads({k: v for k, v in values.items() if roles[k] == "param"}, sources)

    args, _ = tree.unflatten(spec, per_leaf, holders, on_holder)
    return tuple(args)


def _single_output(recording):
    if len(recording.out_nodes) != 1:
        raise GradientError(f"grad needs a function returning one array, got {len(recording.out_nodes)} "
                            "(return the loss alone; compute other values outside the differentiated function)")
    return recording.out_nodes[0]


class GradEntry:
    """A compiled forward+backward pass: value, one gradient slot per leaf, state updates."""

    def __init__(self, recording, compiled, slots):
        self.compiled = compiled
        self.slots = slots  # per leaf: output index, "zeros", or None
        self.state = recording.state
        self.n_grads = sum(isinstance(s, int) for s in slots)


def _record_with_backward(f, args, seed):
    slots = []

    def then(recording):
        trace = recording.trace
        output = _single_output(recording)
        xp = namespace(output.value)
        seed_node = trace.input("seed", seed) if seed is not None else trace.const(default_seed(output, xp))
        if seed is not None and tuple(seed.shape) != tuple(output.shape):
            raise GradientError(f"seed has shape {tuple(seed.shape)} but the output has shape {tuple(output.shape)}")
        inputs = recording.tape.inputs[:len(recording.leaves)]
        wrt = [node for node in inputs if _differentiable(node)]
        grads = backward(trace, output, wrt, Tracer(seed_node, trace))
        by_node = dict(zip(wrt, grads))
        extra = []
        for node in inputs:
            if not _differentiable(node):
                slots.append(None)
            elif by_node.get(node) is None:
                slots.append("zeros")
            else:
                slots.append(1 + len(extra))
                extra.append(by_node[node]._node)
        return extra

    recording = record(f, args, then=then)
    return recording, slots


def _grad_leaves(slots, outputs, leaves):
    out = []
    for slot, leaf in zip(slots, leaves):
        if slot is None:
            out.append(None)
        elif slot == "zeros":
            out.append(namespace(leaf).zeros(leaf.shape, dtype=leaf.dtype))
        else:
            out.append(outputs[slot])
    return out


def grad(f, *args, seed=None):
    """f's value and the gradient of that value with respect to every array in `args`.

    >>> loss, (gW, gx) = avalon.grad(lambda W, x: np.tanh(x @ W).sum(), W, x)
    >>> loss, grads = avalon.grad(loss_fn, model, x, y); opt.step(grads[0])

    A non-scalar output needs `seed` (the output's cotangent): the result is then a vector-Jacobian
    product. The first call with a new signature traces and compiles; later calls replay.
    """
    value, per_leaf, holders, spec = grad_per_leaf(f, args, seed)
    return value, _mirror(spec, per_leaf, holders)


def grad_per_leaf(f, args, seed=None):
    """(value, one gradient or None per argument leaf, holders, spec): `grad` before arranging."""
    leaves, _, holders, spec = tree.flatten((tuple(args), {}))
    if any(isinstance(a, Tracer) for a in leaves) or isinstance(seed, Tracer):
        value, per_leaf = _grad_in_trace(f, args, seed, leaves)
        return value, per_leaf, holders, spec
    key = cache.key_of(f, spec, leaves, "grad", None if seed is None else cache.signature([seed]))
    entry = cache.lookup(key)
    if entry is None:
        recording, slots = _record_with_backward(f, args, seed)
        entry = GradEntry(recording, recording.tape.compile(), slots)
        cache.store(key, entry)
        outputs = cache.take_values(recording, entry.compiled)
    else:
        outputs = entry.compiled(*leaves, *(() if seed is None else (seed,)))
    write_state(holders, entry.state, outputs[1 + entry.n_grads:])
    return outputs[0], _grad_leaves(entry.slots, outputs, leaves), holders, spec


def _grad_in_trace(f, args, seed, leaves):
    """grad inside traced code: f records onto the enclosing tape, and so does its backward pass."""
    out = f(*args)
    if not isinstance(out, Tracer):
        return out, [None] * len(leaves)
    trace = out._trace
    xp = namespace(out._node.value)
    seed = seed if seed is not None else default_seed(out._node, xp)
    seed = seed if isinstance(seed, Tracer) else Tracer(trace.const(seed), trace)
    wrt = [a._node for a in leaves if isinstance(a, Tracer) and np.issubdtype(a.dtype, np.inexact)]
    grads = dict(zip(wrt, backward(trace, out._node, wrt, seed)))
    per_leaf = []
    for a in leaves:
        if isinstance(a, Tracer) and a._node in grads:
            g = grads[a._node]
            per_leaf.append(g if g is not None else namespace(a._node.value).zeros(a.shape, dtype=a.dtype))
        else:
            per_leaf.append(None)
    return out, per_leaf


def grad_tape(f, *args, seed=None):
    """The joint forward+backward tape of `grad(f, *args)` (dead code removed): print it, draw it,
    compile it, or differentiate it again. Outputs: the value, then the gradients, then state."""
    from ..compile import dead_code

    recording, _ = _record_with_backward(f, args, seed)
    return dead_code(recording.tape)


def value_and_grad(f):
    """`f` → a function returning `(value, grads)`, like `grad(f, *args)` (JAX's spelling)."""
    def wrapped(*args, seed=None):
        return grad(f, *args, seed=seed)

    return wrapped
