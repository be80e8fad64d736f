"""The compile cache: traced-and-compiled functions keyed by the function and its arguments'
structure, static values, shapes and dtypes. A hit replays generated code without tracing, so
Python side effects in the function (a `print`) run only on the call that traces.

An entry is used only while the Python values its trace read still hold (`guards`: globals, closure
variables, captured models' attributes); otherwise the call traces again, and `retraces` notes why.
A function is keyed by a weak reference: when it is gone (a lambda made for one call), so are its
entries. The cache is shared by threads, behind one lock.
"""
import threading
import types
import weakref
from collections import OrderedDict

from .. import tree
from ..tensor import plain, wrap
from ..tracing import Trace, Tracer, current, record, write_back
from ..tracing.release import release_values
from . import guards, host_random, retraces

_MAX_ENTRIES = 512
_entries = OrderedDict()
_keys_of_function = {}  # weak reference to a function -> its keys (dropped when it dies)
_lock = threading.RLock()


def signature(leaves):
    """The part of a cache key that arrays contribute: type, shape and dtype of each."""
    return tuple((type(a), a.shape, a.dtype) for a in leaves)


def _function_key(f):
    if isinstance(f, types.FunctionType):
        return weakref.ref(f)  # one shared reference object per function; equal while f lives
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
    with _lock:
        entry = _entries.get(key)
        if entry is not None:
            _entries.move_to_end(key)
        return entry


def store(key, entry):
    with _lock:
        _entries[key] = entry
        function = key[0]
        if isinstance(function, weakref.ref):
            if function not in _keys_of_function:
                weakref.finalize(function(), _forget_function, function)
            _keys_of_function.setdefault(function, set()).add(key)
        if len(_entries) > _MAX_ENTRIES:
            _entries.popitem(last=False)


def _forget_function(function):
    with _lock:
        for key in _keys_of_function.pop(function, ()):
            _entries.pop(key, None)


def clear():
    """Forget every compiled function (the next call of each traces again) and why each traced."""
    with _lock:
        _entries.clear()
    retraces.forget()
    host_random.forget()


def traced(f, subject, key, stale, trace, holders=()):
    """`trace()`'s result (a recording), noting why `f` traced and the Python values it read: they
    guard the entry built from it (`entry.guards = found[0]`). `holders`: the arguments' models."""
    retraces.noted(f, subject, key, stale)
    with guards.watching(f, holders, subject) as found:
        recording = trace()
    return recording, found[0]


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
            current = {name: array for name, array, _ in tree.named_arrays(obj, holder)}
            arrays = [plain(current.get(name)) for name in names]
            if any(a is None for a in arrays) or signature(arrays) != sig:
                return None
            values.extend(arrays)
        return values


def fetch(key):
    """(entry, captured arrays, None) for `key`, or (None, None, why) when it must be traced (again):
    why is None for a key not in the cache, else what changed since the entry was traced."""
    entry = lookup(key)
    if entry is None:
        return None, None, None
    changed = entry.guards.changed()
    if changed is not None:
        return None, None, changed
    captured = entry.captures.arrays()
    if captured is None:
        return None, None, "a model the function uses without receiving it changed its attributes or array shapes"
    return entry, captured, None


def write_backs(recording):
    """(state, written) of `recording` as `write_back` reads them, without their nodes: a node holds
    its operands, and so the whole traced tape, which a cached entry has no use for once compiled."""
    return [(index, name, None) for index, name, _ in recording.state], \
        [(index, None) for index, _ in recording.written]


class _CallEntry:
    """A compiled forward call: outputs, then state updates, of `f`. It keeps what replay needs (the
    generated function, its constants and workspaces, how outputs map back), never the tapes."""

    def __init__(self, recording, compiled, read):
        self.replay = compiled.replay
        self.guards = read
        self.out_spec = recording.out_spec
        self.n_out = len(recording.out_nodes)
        self.state, self.written = write_backs(recording)
        self.captures = Captures(recording)


def call(f, args, kwargs=None, subject=None):
    """`f(*args, **kwargs)` through the cache: trace and compile on a miss, replay on a hit. `subject`
    is what `explain_cache` files the call under (the model of a module call; `f` by default).

    Inside traced code (a trace is active, or an argument is a tracer) it simply runs `f`, which
    records onto the enclosing tape: its random draws and state updates then happen at every replay
    of the enclosing function, instead of once, frozen, while it was traced.
    """
    kwargs = kwargs or {}
    leaves, _, holders, spec = tree.flatten((tuple(args), kwargs), names=False)
    if current() is not None or any(isinstance(a, Tracer) for a in leaves):
        return f(*args, **kwargs)
    key = key_of(f, spec, leaves, "call")
    entry, captured, stale = fetch(key)
    if entry is None:
        recording, read = traced(f, subject or f, key, stale, lambda: _record_releasing(f, args, kwargs), holders)
        compiled = recording.tape.compile()
        entry = _CallEntry(recording, compiled, read)
        store(key, entry)
        outputs = first_outputs(recording, compiled)
    else:
        outputs = entry.replay(*leaves, *captured)
    write_back(entry, holders + entry.captures.objects, leaves, outputs[entry.n_out:])
    return tree.unflatten(entry.out_spec, [wrap(o) for o in outputs[:entry.n_out]], [], None)


def _record_releasing(f, args, kwargs):
    """`record`, dropping forward values nothing will read while it goes (its tape is compiled, then
    forgets them): the first call holds about what a replay holds."""
    trace = Trace()
    release_values(trace)
    return record(f, args, kwargs, trace=trace)


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
