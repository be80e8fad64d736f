"""Letting go of forward values while a cached gradient's first call traces.

Tracing computes every value as it records it, and the tape keeps each one, since the backward pass's
rules compute on them. But a rule reads only some of its node's values: `add`'s reads none, `matmul`'s
its operands and not its result, `conv`'s its input and weight. Which ones is read from the rule's own
code (`reads`): a parameter its body never loads is never read. A forward value that no tracer stands
for any more (the traced code can no longer use it) and that no rule will read (neither its own node's
rule as `out`, nor a consumer's rule as that operand) is dropped while the forward pass goes on, so the
first call holds about what a compiled replay holds instead of every forward value at once.

Only for a trace whose tape is compiled and then forgets its values (`release_values(trace)`, what
`avalon.grad` does on a cache miss); tapes people look at keep everything.
"""
import contextlib
import dis
import heapq
import inspect
import weakref

from ..tape import Call

_EVERY = 128  # tracers made between two sweeps, at most
_BYTES = 32 << 20  # and values made between two sweeps, at most (large activations go sooner)

_sweepers = weakref.WeakKeyDictionary()  # trace -> its _Sweeper


def release_values(trace):
    """Make `trace` drop forward values nothing will read (see the module docstring)."""
    _sweepers[trace] = _Sweeper()


def tick(trace, node):
    """A tracer of `node` was made on `trace`: sweep every `_EVERY` of them, or sooner once values of
    `_BYTES` in all were made since the last sweep (no-op for other traces)."""
    sweeper = _sweepers.get(trace)
    if sweeper is not None:
        sweeper.countdown -= 1
        sweeper.made += getattr(node.value, "nbytes", 0)
        if not sweeper.countdown or sweeper.made >= _BYTES:
            sweeper.countdown, sweeper.made = _EVERY, 0
            sweeper.sweep(trace)


def sweep(trace):
    """Drop now whatever can go (at the end of the forward pass)."""
    sweeper = _sweepers.get(trace)
    if sweeper is not None:
        sweeper.sweep(trace, everything=True)


@contextlib.contextmanager
def paused(trace):
    """No sweeping inside: a checkpointed segment's values are copied for its recomputation when it
    ends, before its calls are known to be a segment's."""
    sweeper = _sweepers.get(trace)
    if sweeper is not None:
        sweeper.paused += 1
    try:
        yield
    finally:
        if sweeper is not None:
            sweeper.paused -= 1


class _Sweeper:
    """The forward calls whose values may still go: their fate is decided once no tracer stands for
    them (then their consumers are all known, since nothing can use them any more).

    A call still held when looked at is looked at again once it is twice as old (in nodes recorded
    since it was), so values the traced code keeps for long (a U-Net's skips, a decoder's outputs)
    cost each a few looks, not one per sweep: O(n log n) in all, and a value goes by twice its age.
    """

    def __init__(self):
        self.countdown = _EVERY
        self.made = 0
        self.paused = 0
        self.pending = []  # heap of (when to look again, position recorded, call)
        self.seen = 0
        self.consumers = {}

    def sweep(self, trace, everything=False):
        from .tracer import is_held

        if trace.phase != "forward" or self.paused:
            return  # the backward walk lets go of its own values
        nodes = trace.tape.nodes
        now = len(nodes)
        for position in range(self.seen, now):
            n = nodes[position]
            if isinstance(n, Call):
                for a in n.inputs:
                    self.consumers.setdefault(a, []).append(n)
                if not n.prim.pinned:  # a draw or an effect: a checkpoint's recomputation reads it
                    heapq.heappush(self.pending, (position, position, n))
        self.seen = now
        later = []
        while self.pending and (everything or self.pending[0][0] <= now):
            _, born, n = heapq.heappop(self.pending)
            if is_held(trace, n):
                later.append((now + max(1, now - born), born, n))
            elif n not in trace.checkpoints and not _read_by_a_rule(n, self.consumers.get(n, ())):
                n.value = None
        for entry in later:
            heapq.heappush(self.pending, entry)


def _read_by_a_rule(node, consumers):
    if reads(node.prim, node)[0]:
        return True
    for c in consumers:
        operands = reads(c.prim, c)[1]
        if operands is None or any(a is node and i in operands for i, a in enumerate(c.args)):
            return True
    return False


def reads(prim, call=None):
    """(whether `prim`'s rule reads its output, the positions of the operands it reads — None for
    all), for `call` (a Call of `prim`) when given.

    Read from the rule's code: a parameter its body never loads, or loads only for its `.shape`,
    `.dtype` or `.ndim` (which a tracer knows without its value), is one it never reads. A rule whose
    code cannot be read this way (not a plain function, taking *args, calling locals()) reads
    everything, unless it says what it reads of a call: `vjp.reads = lambda call: (out, positions)`
    (einsum's reads the operands other than each one it differentiates: none of a lone operand).
    A primitive without a rule reads nothing (no gradient can pass it).
    """
    rule = prim.vjp
    if rule is None:
        return False, frozenset()
    declared = getattr(rule, "reads", None)
    if declared is not None and call is not None:
        return declared(call)
    found = _reads_of.get(rule)
    if found is None:
        found = _reads_of[rule] = _loaded_parameters(rule)
    return found


_reads_of = weakref.WeakKeyDictionary()  # rule function -> reads(...)
_LOADS = ("LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE", "LOAD_CLASSDEREF")
_STATIC = ("shape", "dtype", "ndim")  # what a tracer knows without its value


def _loaded_parameters(rule):
    code = getattr(rule, "__code__", None)
    if not inspect.isfunction(rule) or code is None or code.co_flags & inspect.CO_VARARGS:
        return True, None
    loaded = set()
    instructions = list(dis.get_instructions(code))
    for k, instruction in enumerate(instructions):
        if instruction.opname.startswith(_LOADS):
            names = instruction.argval
            following = instructions[k + 1] if k + 1 < len(instructions) else None
            if instruction.opname == "LOAD_FAST" and following is not None and \
                    following.opname == "LOAD_ATTR" and following.argval in _STATIC:
                continue  # `x.shape`: no value read
            loaded.update(names if isinstance(names, tuple) else (names,))
        elif instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME") and instruction.argval in ("locals", "vars"):
            return True, None
    positional = code.co_varnames[:code.co_argcount]  # (g, out, *operands)
    if len(positional) < 2:
        return True, None
    return positional[1] in loaded, frozenset(i for i, name in enumerate(positional[2:]) if name in loaded)
