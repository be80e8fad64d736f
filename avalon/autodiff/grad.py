"""`grad`, `grad_tape` and `value_and_grad`: gradients of a function's scalar output.

Called on arrays, `grad` goes through the compile cache: the first call with a new signature traces
`f`, appends the backward pass to the same tape (`backward`) and compiles the joint tape; later calls
replay it. Called inside traced code (grad of grad), it records onto the enclosing tape instead.
"""
import inspect

import numpy as np

from .. import tree
from ..backend import is_array, is_inexact, namespace
from ..errors import GradientError
from ..ops import shape as sh
from ..tensor import wrap
from ..tracing import Trace, Tracer, current, record, write_back
from ..tracing.release import release_values
from ..tracing.binding import Bindings
from . import cache
from .backward import backward, default_seed


def grad(f, *args, seed=None, argnums=None):
    """f's value and the gradient of that value with respect to every array in `args`.

    `grads` is a tuple mirroring `args`: a floating-point array gets an array of the same shape and
    dtype; a holder (an `nn.Module`, or a class given to `avalon.register_holder`) gets a `Grads`
    (`g.fc1.weight`, `g["fc1.weight"]`, `for name, array in g`) of its trainable arrays; lists,
    tuples, dicts and named tuples get the same containers. Integer and boolean arrays get None
    (they have no gradient), and so do non-array arguments (numbers, strings, flags).

    >>> loss, (gW, gx) = avalon.grad(lambda W, x: np.tanh(x @ W).sum(), W, x)
    >>> loss, (g, _, _) = avalon.grad(loss_fn, model, x, y); opt.step(g)

    `f` must return one array. A non-scalar output needs `seed`, the output's cotangent (an array of
    its shape): the result is then the vector-Jacobian product; without it, `GradientError`.

    The first call with a new signature (structure and static values of `args`, shapes and dtypes of
    their arrays) traces and compiles; later calls replay the compiled code, so Python side effects
    in `f` happen only on the call that traces. Random draws are fresh at every call and holder state
    (running statistics) is updated in place, as if `f` ran again. Gradients are fresh arrays.

    `argnums` (an index or a tuple of them, as in JAX) limits differentiation to those arguments; the
    others get None. A training step needs only the model's gradient, and skipping the input's
    saves its backward pass (a first convolution's input gradient is costly):

    >>> loss, (g, _, _) = avalon.grad(loss_fn, model, x, y, argnums=0)
    """
    if not callable(f):
        raise GradientError(f"grad's first argument is the function to differentiate, got a {type(f).__name__}",
                            fix="call avalon.grad(loss_fn, *arguments)")
    value, per_leaf, holders, spec = grad_per_leaf(f, args, seed, argnums)
    grads = _mirror(spec, per_leaf, holders)
    if argnums is not None:
        chosen = _chosen(argnums, len(args))
        grads = tuple(g if i in chosen else None for i, g in enumerate(grads))
    return value, grads


def value_and_grad(f, argnums=None):
    """`f` → a function returning `(value, grads)`, like `grad(f, *args)` (JAX's spelling)."""
    def wrapped(*args, seed=None):
        return grad(f, *args, seed=seed, argnums=argnums)

    return wrapped


def _check_arguments(f, args):
    """Refuse, at the user's grad line, a function that cannot take `args` (Python's TypeError would come
    from inside the trace). Only before tracing: a cached signature took them already."""
    try:
        signature = inspect.signature(f)
    except (TypeError, ValueError):  # a builtin without one: calling it will tell
        return
    try:
        signature.bind(*args)
    except TypeError as error:
        raise GradientError(f"{getattr(f, '__qualname__', type(f).__name__)} cannot take the {len(args)} "
                            f"argument(s) given to grad: {error}",
                            fix="pass grad the function, then exactly the arguments it takes") from None


def _chosen(argnums, n_args):
    """The argument positions `argnums` names, as a set of non-negative indices."""
    positions = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in positions:
        if not isinstance(i, int) or not -n_args <= i < n_args:
            raise GradientError(f"argnums={argnums!r} names no argument of the {n_args} given",
                                fix=f"use indices from 0 to {n_args - 1} (or negative ones from the end)")
    return {i % n_args for i in positions}


def _leaf_mask(args, argnums):
    """Per argument leaf: is it differentiated (None: every leaf is)."""
    if argnums is None:
        return None
    chosen = _chosen(argnums, len(args))
    mask = []
    for i, arg in enumerate(args):
        mask += [i in chosen] * len(tree.flatten(arg, names=False)[0])
    return mask


def grad_tape(f, *args, seed=None, argnums=None):
    """The joint forward+backward tape of `grad(f, *args)`, dead code removed: print it, draw it,
    compile it, or differentiate it again.

    Inputs: the argument arrays (then the seed, if given). Outputs: the value, then the gradient of
    each argument array that has one (in argument order), then new values of holder state.
    """
    from ..compile import dead_code

    recording, _ = _record_with_backward(f, args, seed, _leaf_mask(args, argnums))
    return dead_code(recording.tape)


def grad_per_leaf(f, args, seed=None, argnums=None):
    """(value, one gradient or None per argument leaf, holders, spec): `grad` before arranging."""
    leaves, _, holders, spec = tree.flatten((args, {}), names=False)
    mask = _leaf_mask(args, argnums)
    if current() is not None or isinstance(seed, Tracer) or any(isinstance(a, Tracer) for a in leaves):
        value, per_leaf = _grad_in_trace(f, args, seed, mask)
        return value, per_leaf, holders, spec
    key = cache.key_of(f, spec, leaves, "grad", None if seed is None else cache.signature([seed]),
                       None if mask is None else tuple(mask))
    entry, captured, stale = cache.fetch(key)
    if entry is None:
        _check_arguments(f, args)
        (recording, slots), read = cache.traced(
            f, f, key, stale, lambda: _record_with_backward(f, args, seed, mask, release=True), holders)
        compiled = recording.tape.compile()
        entry = _GradEntry(recording, compiled, slots, read)
        cache.store(key, entry)
        outputs = cache.first_outputs(recording, compiled)
    else:
        outputs = entry.replay(*leaves, *captured) if seed is None else entry.replay(*leaves, *captured, seed)
    write_back(entry, holders + entry.captures.objects, leaves, outputs[entry.n_outputs:])
    return wrap(outputs[0]), [wrap(g) for g in entry.gradients(outputs, leaves)], holders, spec


class _GradEntry:
    """A compiled forward+backward pass. Its outputs: the value, the gradients that exist, state.

    `slots` says where each argument leaf's gradient is: an output position, "zeros" (differentiable,
    but no gradient reaches it: a symbolic zero, materialised per call) or None (not differentiable).
    """

    def __init__(self, recording, compiled, slots, read):
        self.replay = compiled.replay  # as `cache._CallEntry`: replay's needs only, never the tapes
        self.guards = read
        self.slots = slots
        self.state, self.written = cache.write_backs(recording)
        self.captures = cache.Captures(recording)
        self.n_outputs = 1 + sum(isinstance(s, int) for s in slots)

    def gradients(self, outputs, leaves):
        out = []
        for slot, leaf in zip(self.slots, leaves):
            if slot is None:
                out.append(None)
            elif slot == "zeros":
                out.append(namespace(leaf).zeros(leaf.shape, dtype=leaf.dtype))
            else:
                out.append(outputs[slot])
        return out


def _differentiable(dtype, role):
    return role != "buffer" and is_inexact(dtype)


def _scalar_output(recording):
    # (loss, 0.0) holds one array, but which value is the loss is a guess: refused as (loss, accuracy) is
    if len(recording.out_nodes) != 1 or isinstance(recording.result, (tuple, list, dict)):
        result = recording.result
        what = f"a {type(result).__name__} of {len(recording.out_nodes)} arrays" \
            if isinstance(result, (tuple, list, dict)) else "None (no return statement?)" if result is None else \
            f"a {type(result).__name__} that does not depend on the arguments" \
            if isinstance(result, (int, float, complex, np.ndarray, np.generic)) else f"a {type(result).__name__}"
        raise GradientError(f"grad needs a function returning one array (the loss); it returned {what}",
                            fix="return the loss alone, computed from the arguments (compute other values "
                                "outside the differentiated function)")
    return _check_output(recording.out_nodes[0])


def _check_output(node):
    if "complex" in str(node.dtype):  # any backend's complex dtypes
        raise GradientError(f"the function returned a complex value (dtype {node.dtype}): a gradient needs a "
                            "real output, as in torch", fix="return a real loss, e.g. its .abs() or .real")
    if not is_inexact(node.dtype):
        raise GradientError(f"the function returned an array of dtype {node.dtype}: only a floating-point "
                            "output has a gradient", fix="cast it, or return the floating-point loss")
    return node


def _record_with_backward(f, args, seed, mask=None, release=False):
    """Trace f and append its backward pass (for the leaves `mask` picks; all when None); `slots` as
    in `_GradEntry`. `release`: the backward walk drops values nothing reads any more (the tape is
    compiled, then forgets them; see `backward`)."""
    slots = []

    def then(recording):
        trace = recording.trace
        output = _scalar_output(recording)
        if seed is not None and tuple(seed.shape) != tuple(output.shape):
            raise GradientError(f"seed has shape {tuple(seed.shape)} but the output has shape {tuple(output.shape)}",
                            fix="pass a seed of the output's shape (the cotangent of each output value)")
        seed_node = trace.input("seed", seed) if seed is not None else \
            trace.const(default_seed(output, namespace(output.value)))
        inputs = recording.tape.inputs[:len(recording.leaves)]
        wanted = mask or [True] * len(inputs)
        wrt = [node for node, w in zip(inputs, wanted) if w and _differentiable(node.dtype, node.role)]
        by_node = dict(zip(wrt, backward(trace, output, wrt, Tracer(seed_node, trace), release)))
        extra = []
        for node in inputs:
            if node not in by_node:
                slots.append(None)
            elif by_node[node] is None:
                slots.append("zeros")
            else:
                extra.append(by_node[node]._node)
                slots.append(len(extra))
        return extra

    trace = Trace()
    if release:
        release_values(trace)  # and so does the forward pass, of values no rule reads
    return record(f, args, then=then, trace=trace), slots


def _grad_in_trace(f, args, seed, mask=None):
    """`_recorded_grad` with gradients enabled, as torch.func's grad: a `no_grad` around the call does
    not reach into it; its results are then constants to an enclosing grad."""
    leaves = tree.flatten((args, {}), names=False)[0]
    trace = next((a._trace for a in (*leaves, seed) if isinstance(a, Tracer)), None) or current()
    outer = trace.grad_enabled
    trace.grad_enabled = True
    try:
        out, per_leaf = _recorded_grad(f, args, seed, mask)
    finally:
        trace.grad_enabled = outer
    if not outer:
        trace.no_grad.update(t._node for t in (out, *per_leaf) if isinstance(t, Tracer))
    return out, per_leaf


def _recorded_grad(f, args, seed, mask=None):
    """grad inside traced code: f records onto the enclosing tape, and so does its backward pass.

    Every argument array takes part: a tracer, or a plain array as a constant of the tape (so grad
    with respect to a captured array still has a gradient). Each floating-point argument is passed to
    f as a node of its own (an identity reshape), so its gradient is the partial derivative for that
    position alone, as outside traced code, even where f also uses the same array by another way
    (passed twice, or captured).
    """
    leaves, infos, holders, spec = tree.flatten((args, {}))
    trace = next((a._trace for a in (*leaves, seed) if isinstance(a, Tracer)), None) or current()
    tracers = []
    for a in leaves:
        t = a if isinstance(a, Tracer) else Tracer(trace.const(a), trace)
        tracers.append(sh.reshape(t, shape=t.shape) if is_inexact(t.dtype) else t)
    inner = Bindings(trace.originals)  # views of the holders the enclosing code sees, with these tracers

    def bind(obj, values, roles):
        base = trace.view(obj)
        seen = inner.bind(base, values)
        trace.name_view(seen, base)
        return seen

    trace.bindings.append(inner)
    try:
        targs, _ = tree.unflatten(spec, tracers, holders, bind)
        out = f(*targs)
    finally:
        trace.bindings.pop()
        inner.release(keep_arrays=True)  # state updates stay: the enclosing code sees them
    if is_array(out):  # does not depend on anything traced: all gradients are zero
        out = Tracer(trace.const(out), trace)
    if not isinstance(out, Tracer):
        raise GradientError(f"grad needs a function returning one array (the loss), got {type(out).__name__}",
                            fix="return the loss alone, computed from the arguments")
    output = _check_output(out._node)
    if seed is None:
        seed = default_seed(output, namespace(output.value))
    elif tuple(seed.shape) != tuple(output.shape):
        raise GradientError(f"seed has shape {tuple(seed.shape)} but the output has shape {tuple(output.shape)}",
                            fix="pass a seed of the output's shape (the cotangent of each output value)")
    seed = seed if isinstance(seed, Tracer) else Tracer(trace.const(seed), trace)
    wanted = mask or [True] * len(tracers)
    wrt = [t._node for t, info, w in zip(tracers, infos, wanted) if w and _differentiable(t.dtype, info.role)]
    by_node = dict(zip(wrt, backward(trace, output, wrt, seed)))
    per_leaf = []
    for t in tracers:
        if t._node not in by_node:
            per_leaf.append(None)
        elif by_node[t._node] is None:
            per_leaf.append(namespace(t._node.value).zeros(t.shape, dtype=t.dtype))
        else:
            per_leaf.append(by_node[t._node])
    return out, per_leaf


def _mirror(spec, per_leaf, holders):
    """Gradients arranged like the arguments (holders become `Grads` of their trainable arrays)."""
    def on_holder(obj, values, roles):
        sources = {name: array for name, array, _ in tree.holder_of(obj).named_arrays(obj)}
        grads = tree.Grads({k: v for k, v in values.items() if roles[k] == "param"}, sources)
        # A DistributedDataParallel holder averages its gradients over the ranks here, once they exist
        reduce = getattr(obj, "_reduced_gradients", None)
        return grads if reduce is None else reduce(grads)

    args, _ = tree.unflatten(spec, per_leaf, holders, on_holder, statics=False)
    return tuple(args)
