"""Tape-to-tape optimisation passes. Each takes a tape and returns a new one (its input is untouched;
a pass with nothing to change returns the tape itself, as copying a long tape costs time), each can be
switched off on its own (`tape.compile(cse=False)`), and none changes what the tape computes.

`memory_roots` is the aliasing analysis that buffer reuse and code generation share: which arrays a
node's value may share memory with.
"""
import numpy as np

from ..backend import is_array
from ..ops import linalg, reduce, shape
from ..tape import Call, Const, Input, Node
from . import inplace

# Whether `fresh` primitives (convolutions, attention: new memory without taking out=) are trusted not to
# share their operands' memory. Off, the planner assumes they may, and keeps every buffer they read (a
# ReLU's result read by the next convolution, say) out of buffer reuse and the workspace: the path before.
# Off by default: on, the ResNet-ish step of bench/steps.py ran 2.5% faster but the ReLU results its
# backward reads moved into the workspace kept between calls, and its peak memory grew from 358 to 567 MB
# (0.60x -> 0.96x PyTorch's; issue #9 asks for <= 0.8x).
TRUST_FRESH = False
# Whether `buffer_plan` alone trusts fresh primitives (the workspace still follows TRUST_FRESH). A buffer
# the plan recycles is one allocated during the same call, so trusting costs no memory kept between calls;
# it lets batch norm's backward results (16 MB each in the ResNet-ish step, read by conv_weight_grad) be
# written into the dead one of the previous layer instead of fresh memory whose first touch page-faults:
# ResNet-ish step 0.985x at one thread (CPU clock, A/B in one process), peak memory 360 MB either way.
PLAN_TRUSTS_FRESH = True


def dead_code(tape):
    """Remove calls and constants no output needs.

    Inputs stay (they are the function's signature), and so do random draws and effects: a draw
    advances the generator, so dropping an unused one would change every later one, and an effect
    (a hook's host callback) is there for what it does, not for its value.
    """
    live = set(tape.outputs)
    for n in reversed(tape.nodes):
        if isinstance(n, Call) and (n in live or n.prim.pinned):
            live.add(n)
            live.update(n.inputs)
    dead = {n for n in tape.nodes if n not in live and not isinstance(n, Input)}
    return tape.copy(drop=dead) if dead else tape


def _key(value):
    """A hashable stand-in for an operand or parameter: nodes by identity, arrays by identity, other
    values by type and repr (so 1, 1.0 and True stay apart, as do slices, which are unhashable)."""
    if isinstance(value, Node):
        return ("node", value.id)
    if is_array(value):
        return ("array", id(value))
    if isinstance(value, (tuple, list)):
        return (type(value).__name__,) + tuple(_key(v) for v in value)
    if isinstance(value, dict):
        return ("dict",) + tuple((k, _key(v)) for k, v in sorted(value.items(), key=lambda kv: repr(kv[0])))
    return (type(value).__qualname__, repr(value))


def common_subexpressions(tape):
    """Merge calls of the same primitive on the same operands and parameters (random draws and
    effects excepted: two draws are two different samples, two callbacks two calls)."""
    seen, replace = {}, {}
    for n in tape.nodes:
        if not isinstance(n, Call) or n.prim.pinned:
            continue
        key = (id(n.prim), _key([replace.get(a, a) for a in n.args]), _key(n.params))
        if key in seen:
            replace[n] = seen[key]
        else:
            seen[key] = n
    return tape.copy(replace=replace) if replace else tape


def constant_folding(tape):
    """Evaluate, once, the calls whose operands are all constants: they become constants.

    Constants are arrays the traced code captured (globals, arrays built inside it): their values as
    they are at compile time are what the compiled function uses.
    """
    replace = {}
    for n in tape.nodes:
        if not isinstance(n, Call) or n.prim.pinned:
            continue
        args = [replace.get(a, a) for a in n.args]
        if all(isinstance(a, Const) for a in args if isinstance(a, Node)):
            value = n.prim.impl(*[a.value if isinstance(a, Node) else a for a in args], **n.params)
            const = Const(getattr(value, "shape", ()), value.dtype, value=value)
            const.location, const.scope, const.phase = n.location, n.scope, n.phase
            replace[n] = const
    return tape.copy(replace=replace) if replace else tape


def _swaps_last_two(node):
    if not (isinstance(node, Call) and node.prim is shape.transpose):
        return False
    n = len(node.shape)
    return node.params["axes"] == tuple(range(n - 2)) + (n - 1, n - 2)


def _swapped(node):
    """`node` with its last two axes swapped: the operand of a swap itself, or a new transpose."""
    if _swaps_last_two(node):
        return node.args[0]
    n = len(node.shape)
    axes = tuple(range(n - 2)) + (n - 1, n - 2)
    return _like(node, Call(shape.transpose, [node], {"axes": axes}, node.shape[:-2] + node.shape[:-3:-1],
                            node.dtype))


def _like(old, new):
    new.location, new.scope, new.phase = old.location, old.scope, old.phase
    return new


def matmul_layout(tape):
    """transpose(matmul(a, b)) → matmul(bᵀ, aᵀ): the same numbers, computed straight into a row-major
    array. A transposed product is a strided view, slow for everything that reads it: the weight
    gradient of `x @ W.T` (every Linear layer's) is one, and an optimiser's step goes over it."""
    users = tape.consumers()
    outputs = set(tape.outputs)
    replace = {}
    for n in tape.nodes:
        product = n.args[0] if _swaps_last_two(n) else None
        if isinstance(product, Call) and product.prim is linalg.matmul and users[product] == [n] \
                and product not in outputs:
            a, b = product.args
            replace[n] = _like(n, Call(linalg.matmul, [_swapped(b), _swapped(a)], {}, n.shape, n.dtype))
    return tape.copy(replace=replace) if replace else tape


def _aliased_operands(call, trust_fresh):
    """The operands whose memory a call's result may share (`fresh` primitives' none if `trust_fresh`)."""
    if call.prim is reduce.sum_to:  # its operand itself when there is nothing to sum, else a new array
        return [call.args[0]] if call.shape == call.args[0].shape else []
    if call.prim.view:  # a view looks into its first operand
        return [call.args[0]] if isinstance(call.args[0], Node) else []
    if call.prim.out or (trust_fresh and call.prim.fresh):  # new memory (or the out= one), never an operand's
        return []
    if call.prim is linalg.einsum and _einsum_allocates(call.params["subscripts"]):
        return []
    # Anything else might hand back an operand or a view of one (a user's primitive returning its
    # argument, clip without bounds, einsum's pure transpositions): assume it does.
    return call.inputs


def _einsum_allocates(subscripts):
    """Whether an einsum computes a new array: a product of operands, or a sum over an index. (One
    operand with every index kept, a transposition or a diagonal, may come back as a view of it.)"""
    inputs, _, output = subscripts.partition("->")
    terms = inputs.split(",")
    return len(terms) > 1 or any(c.isalpha() and c not in output for c in terms[0])


def memory_roots(tape, trust_fresh=None):
    """node -> the set of nodes whose memory its value may share (itself included).

    Inputs, constants and results of `out`-style primitives own their memory; a view, or the result of
    a primitive not known to allocate, may also share its operands' memory. `fresh` primitives' results
    own theirs when `trust_fresh` (default TRUST_FRESH).
    """
    trust_fresh = TRUST_FRESH if trust_fresh is None else trust_fresh
    roots = {}
    for n in tape.nodes:
        mine = {n}
        if isinstance(n, Call):
            for a in _aliased_operands(n, trust_fresh):
                mine |= roots[a]
        roots[n] = mine
    return roots


def memory_lifetimes(tape, trust_fresh=None):
    """({node: the position of the last call that reads its memory, through any value that may share
    it}, the end: the position given to memory that outputs or effects keep, past every call);
    `trust_fresh` as in `memory_roots`."""
    order = {n: i for i, n in enumerate(tape.nodes)}
    end = len(tape.nodes)
    last = {n: order[n] for n in tape.nodes}
    for n in tape.nodes:
        if isinstance(n, Call):
            for a in n.inputs:
                last[a] = max(last[a], end if n.prim.effect else order[n])
    for o in tape.outputs:
        last[o] = end
    roots = memory_roots(tape, trust_fresh)
    dies = {}
    for n in tape.nodes:
        for r in roots[n]:
            dies[r] = max(dies.get(r, -1), last[n])
    return dies, end


def buffer_plan(tape):
    """{call: earlier call}: calls that write their result into an earlier call's dead buffer (`out=`).

    Memory belongs to its root (see `memory_roots`); a root is dead once the last user of every value
    that may share it has run. Only the buffers of `out`-style primitives are recycled (never inputs,
    constants, views, anything an output may share, or anything an effect hands to Python, which
    may keep it), into calls that take `out=` and produce the same shape and dtype. A buffer is freed
    after the call that last reads it, so no call writes into one of its own operands, except an
    elementwise one into an operand it reads for the last time (`inplace.operand_buffer`). Fresh
    primitives are trusted when PLAN_TRUSTS_FRESH or TRUST_FRESH.
    """
    dies, end = memory_lifetimes(tape, PLAN_TRUSTS_FRESH or TRUST_FRESH)
    releases = {}
    for n in tape.nodes:
        if isinstance(n, Call) and n.prim.out and n.shape and dies[n] < end:
            releases.setdefault(dies[n], []).append(n)
    roots = memory_roots(tape, PLAN_TRUSTS_FRESH or TRUST_FRESH) if inplace.IN_PLACE else None
    free, plan = {}, {}
    for i, n in enumerate(tape.nodes):
        if isinstance(n, Call) and n.prim.out and n.shape:
            operand = inplace.operand_buffer(n, releases.get(i), roots)
            pool = free.get((n.shape, np.dtype(n.dtype)))
            if operand is not None:
                plan[n] = operand
                releases[i].remove(operand)  # its buffer lives on as n's
            elif pool:
                plan[n] = pool.pop()
        for dead in releases.get(i, ()):
            free.setdefault((dead.shape, np.dtype(dead.dtype)), []).append(dead)
    return plan


def workspace_slots(tape, plan):
    """{call: its buffer's slot}: the calls whose fresh result may live in a workspace, an array kept
    between calls and written again at every call (see `compile_tape(workspace=...)`).

    A call that `plan` points into a dead buffer allocates nothing; every other `out`-style call with a
    shape allocates its result, and may write it into a slot instead, unless that memory reaches
    Python: an output may share it (the caller keeps outputs; the next call would overwrite them), or
    an effect reads it (a hook may keep what it is given). Memory is followed through `plan` (a call
    writing into a dead buffer writes into that buffer's slot) and `memory_roots` (views).
    """
    owner = {}  # call -> the call whose fresh allocation it writes into
    for n in tape.nodes:
        if isinstance(n, Call) and n.prim.out and n.shape:
            owner[n] = owner[plan[n]] if n in plan else n
    roots = memory_roots(tape)
    exposed = set().union(*(roots[o] for o in tape.outputs), *(roots[a] for n in tape.nodes
                          if isinstance(n, Call) and n.prim.effect for a in n.inputs))
    unsafe = {owner[n] for n in exposed if n in owner}
    fresh = [n for n in tape.nodes if n in owner and owner[n] is n and n not in unsafe]
    return {n: k for k, n in enumerate(fresh)}
