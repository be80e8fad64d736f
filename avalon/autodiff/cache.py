"""The compile cache: traced-and-compiled functions keyed by the function and its arguments'
structure, static values, shapes and dtypes. A hit replays generated code without tracing."""
from collections import OrderedDict

from .. import tree
from ..tracing import Tracer, record, write_state

_MAX_ENTRIES = 512
_entries = OrderedDict()


def signature(leaves):
    """The part of a cache key that arrays contribute: type, shape and dtype of each."""
    return tuple((type(a), tuple(a.shape), str(a.dtype)) for a in leaves)


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


def key_of(f, spec, leaves, *extra):
    try:
        hash(f)
    except TypeError:
        f = id(f)
    return (f, spec, signature(leaves)) + extra


def take_values(recording, compiled):
    """The outputs computed while tracing; the tapes then forget their values (the cache keeps only
    what replay needs)."""
    outputs = [n.value for n in recording.tape.outputs]
    recording.tape.drop_values()
    compiled.tape.drop_values()
    return outputs


class CallEntry:
    """A compiled forward call: outputs and state updates of `f`."""

    def __init__(self, recording, compiled):
        self.compiled = compiled
        self.out_spec = recording.out_spec
        self.n_out = len(recording.out_nodes)
        self.state = recording.state


def call(f, args, kwargs=None):
    """`f(*args, **kwargs)` through the cache: trace and compile on a miss, replay on a hit.

    Tracer arguments (a call inside traced code) simply run `f`, recording onto the outer tape.
    """
    kwargs = kwargs or {}
    leaves, _, holders, spec = tree.flatten((tuple(args), dict(kwargs)))
    if any(isinstance(a, Tracer) for a in leaves):
        return f(*args, **kwargs)
    key = key_of(f, spec, leaves, "call")
    entry = lookup(key)
    if entry is None:
        recording = record(f, args, kwargs)
        entry = CallEntry(recording, recording.tape.compile())
        store(key, entry)
        outputs = take_values(recording, entry.compiled)
    else:
        outputs = entry.compiled(*leaves)
    write_state(holders, entry.state, outputs[entry.n_out:])
    return tree.unflatten(entry.out_spec, outputs[:entry.n_out], [], None)


def jit(f):
    """Decorator: calls of `f` on arrays trace once per signature, then replay compiled code.

    >>> @avalon.jit
    ... def predict(W, x):
    ...     return np.tanh(x @ W)
    """
    import functools

    @functools.wraps(f)
    def compiled(*args, **kwargs):
        return call(f, args, kwargs)

    return compiled
