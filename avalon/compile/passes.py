"""Tape-to-tape optimisation passes. Each takes a tape and returns a new one (its input is untouched),
each can be switched off on its own (`tape.compile(cse=False)`), and none changes what the tape computes.
"""
import numpy as np

from ..tape import Call, Const, Input, Node


def dead_code(tape):
    """Remove calls and constants no output needs (inputs stay: they are the function's signature)."""
    live = set(tape.outputs)
    for n in reversed(tape.nodes):
        if n in live and isinstance(n, Call):
            live.update(n.inputs)
    return tape.copy(drop={n for n in tape.nodes if n not in live and not isinstance(n, Input)})


def _operand_key(value):
    if isinstance(value, Node):
        return ("node", value.id)
    return ("literal", type(value).__name__, repr(value))


def common_subexpressions(tape):
    """Merge calls of the same primitive on the same operands and parameters (random draws excepted)."""
    seen, replace = {}, {}
    for n in tape.nodes:
        if not isinstance(n, Call) or n.prim.random:
            continue
        args = tuple(_operand_key(replace.get(a, a)) for a in n.args)
        key = (id(n.prim), args, repr(sorted(n.params.items())))
        if key in seen:
            replace[n] = seen[key]
        else:
            seen[key] = n
    return tape.copy(replace=replace)


def constant_folding(tape):
    """Evaluate, once, the calls whose operands are all constants: they become constants."""
    replace = {}
    for n in tape.nodes:
        if not isinstance(n, Call) or n.prim.random:
            continue
        args = [replace.get(a, a) for a in n.args]
        if all(isinstance(a, Const) for a in args if isinstance(a, Node)):
            value = n.prim.impl(*[a.value if isinstance(a, Node) else a for a in args], **n.params)
            const = Const(getattr(value, "shape", ()), value.dtype, value=value)
            const.location, const.scope, const.phase = n.location, n.scope, n.phase
            replace[n] = const
    return tape.copy(replace=replace)


def buffer_plan(tape):
    """{call: earlier call}: calls that write their result into the earlier call's dead buffer (`out=`).

    A buffer is dead once the last user of its value, and of every view of it, has run. Only fresh
    results of primitives are recycled (not views, inputs, constants or outputs), into calls that take
    `out=` and produce exactly the same shape and dtype.
    """
    order = {n: i for i, n in enumerate(tape.nodes)}
    end = len(tape.nodes)
    last = {n: order[n] for n in tape.nodes}
    for n in tape.nodes:
        if isinstance(n, Call):
            for a in n.inputs:
                last[a] = order[n]
    for o in tape.outputs:
        last[o] = end
    # A view keeps the array it looks into alive (views alias their first operand).
    for n in reversed(tape.nodes):
        if isinstance(n, Call) and n.prim.view and isinstance(n.args[0], Node):
            base = n.args[0]
            last[base] = max(last[base], last[n])
    releases = {}
    for n in tape.nodes:
        if isinstance(n, Call) and not n.prim.view and n.shape and last[n] < end:
            releases.setdefault(last[n], []).append(n)
    free, plan = {}, {}
    for i, n in enumerate(tape.nodes):
        if isinstance(n, Call) and n.prim.out and not n.prim.view and n.shape:
            pool = free.get((n.shape, np.dtype(n.dtype)))
            if pool:
                plan[n] = pool.pop()
        for dead in releases.get(i, ()):
            free.setdefault((dead.shape, np.dtype(dead.dtype)), []).append(dead)
    return plan
