"""The compile cache: traced-and-compiled functions keyed by the function and its arguments'
structure, static values, shapes and dtypes. A hit replays generated code without tracing, so
Python side effects in the function (a `print`) run only on the call that traces.
"""
from collections import OrderedDict

from .. import tree
from ..tensor import plain, wrap
from ..tracing import Tracer, current, record, write_back

_MAX_ENTRIES = 512
_entries = OrderedDict()


def signature(leaves):
    """The part of a cache key that arrays contribute: type, shape and dtype of each."""
    return tuple((type(a), a.shape, a.dtype) for a in leaves)


def _function_key(f):
    try:
        hash(f)
        return f
    except TypeError:
        if hasattr(f, "__self__") and hasattr(f, "__func__"):  # a method of an unhashable object
            return (tree.ByIdentity(f.__self__), f.__func__)
        return tree.ByIdentity(f)


def key_of(f, spec, leaves, *extra):
    """The cache key of calling `f` on arguments flattened to `spec` and `leaves`."""
    return (_function_key(f), spec, signature(leaves)) + extra


def lookup(key):
    entry = _entries.get(key)
    if entry is not None:
        _entries.move_to_end(key)
    return entry


def store(key, entry):
    _entries[key] = entry
    if len(_entries) > _MAX_ENTRIES:
        _entries.popitem(last=False)


def clear():
    """Forget every compiled function (the next call of each traces again)."""
    _entries.clear()


def first_outputs(recording, compiled):
    """The outputs computed while tracing, as fresh as a replay's; the tapes then forget their values
    (the cache keeps only what replay needs)."""
    outputs = compiled.fresh(n.value for n in recording.tape.outputs)
    recording.tape.drop_values()
    compiled.tape.drop_values()
    return outputs


class Captures:
    """The holders a cached function used without receiving them (a model in a closure): their
    arrays are inputs of the replay, read afresh at every call, so in-place optimiser steps and state
    updates are seen. A holder whose static values or array shapes changed makes the entry stale."""

    def __init__(self, recording):
        self.objects = [c.obj for c in recording.captured]
        self._guards = [(c.obj, tuple(c.tracers), c.static, signature(plain(c.originals[n]) for n in c.tracers))
                        for c in recording.captured]

    def arrays(self):
        """The holders' current arrays in input order, or None when the entry no longer fits them."""
        values = []
        for obj, names, static, sig in self._guards:
            holder = tree.holder_of(obj)
            if holder.static(obj) != static:
                return None
            current = {name: array for name, array, _ in holder.named_arrays(obj)}
            arrays = [plain(current.get(name)) for name in names]
            if any(a is None for a in arrays) or signature(arrays) != sig:
                return None
            values.extend(arrays)
        return values


def fetch(key):
    """(entry, captured arrays) for `key`, or (None, None) when it must be traced (again)."""
    entry = lookup(key)
    if entry is None:
        return None, None
    captured = entry.captures.arrays()
    return (entry, captured) if captured is not None else (None, None)


def write_backs(recording):
    """(state, written) of `recording` as `write_back` reads them, without their nodes: a node holds
    its operands, and so the whole traced tape, which a cached entry has no use for once compiled."""
    return [(index, name, None) for index, name, _ in recording.state], \
        [(index, None) for index, _ in recording.written]


class _CallEntry:
    """A compiled forward call: outputs, then state updates, of `f`. It keeps what replay needs (the
    generated function, its constants and workspaces, how outputs map back), never the tapes."""

    def __init__(self, recording, compiled):
        self.replay = compiled.replay
        self.out_spec = recording.out_spec
        self.n_out = len(recording.out_nodes)
        self.state, self.written = write_backs(recording)
        self.captures = Captures(recording)


def call(f, args, kwargs=None):
    """`f(*args, **kwargs)` through the cache: trace and compile on a miss, replay on a hit.

    Inside traced code (a trace is active, or an argument is a tracer) it simply runs `f`, which
    records onto the enclosing tape: its random draws and state updates then happen at every replay
    of the enclosing function, instead of once, frozen, while it was traced.
    """
    kwargs = kwargs or {}
    leaves, _, holders, spec = tree.flatten((tuple(args), kwargs), names=False)
    if current() is not None or any(isinstance(a, Tracer) for a in leaves):
        return f(*args, **kwargs)
    key = key_of(f, spec, leaves, "call")
    entry, captured = fetch(key)
    if entry is None:
        recording = record(f, args, kwargs)
        compiled = recording.tape.compile()
        entry = _CallEntry(recording, compiled)
        store(key, entry)
        outputs = first_outputs(recording, compiled)
    else:
        outputs = entry.replay(*leaves, *captured)
    write_back(entry, holders + entry.captures.objects, leaves, outputs[entry.n_out:])
    return tree.unflatten(entry.out_spec, [wrap(o) for o in outputs[:entry.n_out]], [], None)


def jit(f):
    """Decorator: calls of `f` on arrays trace once per signature, then replay compiled code.

    The signature is the structure of the arguments, their static values (numbers, strings, flags,
    a holder's non-array attributes) and the shapes and dtypes of their arrays; any change traces
    again. Random draws are fresh at every call and holder state (running statistics) is updated, as
    if the Python code ran again; other Python side effects happen only while tracing.

    >>> @avalon.jit
    ... def predict(W, x):
    ...     return np.tanh(x @ W)
    """
    import functools

    @functools.wraps(f)
    def compiled(*args, **kwargs):
        return call(f, args, kwargs)

    return compiled
