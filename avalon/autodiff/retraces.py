"""Why a call traced: every trace of a cached function is noted with its reason, `explain_cache`
lists them, and code that keeps retracing gets one warning naming what keeps changing.

A retrace runs the user's Python again and compiles a new replay: harmless now and then (a new batch
shape at the end of an epoch), a silent slowdown when it happens at every call (a fresh `lambda` per
step, a global that changes every step).
"""
import collections
import inspect
import threading
import types
import warnings
import weakref

from ..tensor import is_torch_tensor
from ..tracing.source import user_location

RETRACE_WARNING = 8  # traces of the same code before the warning (torch.compile recompiles 8 times)
_events = collections.deque(maxlen=2000)
# Keyed by a function's code (a fresh lambda per call is the same code) or by any other callable's id
_traces_of = collections.Counter()  # traces so far
_last_key = {}  # the key of the latest trace
_warned = set()
_lock = threading.Lock()
DRAWS = "it drew random numbers"


class RetraceWarning(UserWarning):
    """The same code traced again and again: each call pays tracing and compiling."""


class CacheEvent:
    """One trace: what was traced (`name`), why (`reason`)."""

    def __init__(self, name, reason, subject):
        self.name, self.reason = name, reason
        self._subject = _weak(subject)

    def about(self, subject):
        mine = self._subject() if self._subject is not None else None
        return mine is not None and (mine is subject or getattr(subject, "__code__", 0) is
                                     getattr(mine, "__code__", 1))

    def __repr__(self):
        return f"{self.name}: {self.reason}"


class CacheReport:
    """What `explain_cache` found: `events` (oldest first), printed one line each."""

    def __init__(self, events, subject):
        self.events, self.subject = events, subject

    def __repr__(self):
        what = "every cached call" if self.subject is None else _name(self.subject)
        if not self.events:
            return f"explain_cache({what}): no trace noted"
        lines = [f"explain_cache({what}): {len(self.events)} trace(s)"]
        lines += [f"  {i + 1}. {e!r}" for i, e in enumerate(self.events)]
        return "\n".join(lines)

    def __len__(self):
        return len(self.events)


def explain_cache(subject=None):
    """Why calls traced: for a function (all functions made from the same code, so a fresh lambda per
    call is one subject) or a model, or for everything when `subject` is None. Each event names what
    was traced and why: the first call, new argument shapes or static values, a global, closure
    variable or attribute that changed (and from what to what), a new function object.

    >>> print(avalon.explain_cache(loss_fn))
    explain_cache(loss_fn): 2 trace(s)
      1. loss_fn: first call
      2. loss_fn: global `beta` (read by loss_fn in train.py) changed from 0.5 to 0.7
    """
    subject = inspect.unwrap(subject) if subject is not None else None  # an avalon.jit function: its own
    with _lock:
        events = [e for e in _events if subject is None or e.about(subject)]
    return CacheReport(events, subject)


def noted(f, subject, key, stale_reason):
    """Note a trace of `f` (for `subject`: the model of a module call, else `f`) under `key`, and warn
    once when its code keeps retracing. `stale_reason` says why a cached entry could not be used."""
    identity = subject.__code__ if isinstance(subject, types.FunctionType) else id(subject)
    with _lock:
        previous = _last_key.get(identity)
        fresh_function = isinstance(subject, types.FunctionType) and previous is not None and \
            previous[0]() is not subject
        reason = stale_reason or _new_key_reason(previous, key, fresh_function)
        _last_key[identity] = key
        _traces_of[identity] += 1
        _events.append(CacheEvent(_name(subject), reason, subject))
        warn = _traces_of[identity] >= RETRACE_WARNING and identity not in _warned and \
            not reason.startswith(DRAWS)  # host_random has said why
        if warn:
            _warned.add(identity)
    if warn:
        where = user_location()
        warnings.warn_explicit(
            f"avalon: {_name(subject)} has been traced {RETRACE_WARNING} times (each trace runs your Python "
            f"code again and compiles a new replay); the latest because: {reason}. "
            f"{_advice(reason, fresh_function)} avalon.explain_cache({_name(subject)}) lists every trace.",
            RetraceWarning, where.filename if where else "<avalon>", where.lineno if where else 0)


def forget():
    """Clear the notes (with the cache: `avalon.clear_cache()`)."""
    with _lock:
        _events.clear()
        _traces_of.clear()
        _last_key.clear()
        _warned.clear()


def _new_key_reason(previous, key, fresh_function):
    if fresh_function:
        return "a new function object (made from the same code as one traced before: a lambda or def " \
               "inside the loop?)"
    if previous is None:
        return "first call"
    _, spec, signature, *extra = key
    _, old_spec, old_signature, *old_extra = previous
    if spec != old_spec:
        return f"the arguments' structure or static values changed: {_difference(old_spec, spec)}"
    if signature != old_signature:
        if len(signature) != len(old_signature):
            return f"{len(old_signature)} argument arrays before, {len(signature)} now"
        i, old, new = next((i, o, n) for i, (o, n) in enumerate(zip(old_signature, signature)) if o != n)
        return f"argument array #{i}: shape {tuple(old[1])} {old[2]} before, {tuple(new[1])} {new[2]} now"
    if extra != old_extra:
        return "other grad options (seed shape, argnums)"
    return "the cached entry was dropped (the cache keeps the latest 512 entries, or it was cleared)"


def _difference(old, new):
    """Where two nested keys first differ, shown briefly, with the attribute path that leads there
    (`config.scale`) when the keys name one."""
    path = []
    while True:
        old, new = getattr(old, "items", old), getattr(new, "items", new)  # a module's static part
        if not (isinstance(old, tuple) and isinstance(new, tuple)):
            break
        if old and new and isinstance(old[0], str) and old[0] == new[0] and old[0] not in _TAGS:
            path.append(old[0])
        pair = next(((o, n) for o, n in zip(old, new) if o != n), None)
        if pair is None:  # one is the other with items added at the end
            longer, word = (new, "added") if len(new) > len(old) else (old, "removed")
            extra = longer[min(len(old), len(new))]
            where = f"`{'.'.join(path)}`: " if path else ""
            return f"{where}{_short(_shown(extra))} {word}"
        old, new = pair
    where = f"`{'.'.join(path)}` " if path else ""
    return f"{where}{_short(_shown(old))} before, {_short(_shown(new))} now"


_TAGS = {"", "fields", "tuple", "list", "dict", "holder", "namedtuple", "sequence", "static", "value",
         "container", "array", "unhashable", "deep"}  # the key's own words, not attribute names


def _shown(key):
    """A static key's value: (float, 1.0) is 1.0."""
    return key[1] if isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], type) else key


def _advice(reason, fresh_function):
    if fresh_function:
        return "Define the function once, outside the loop, and pass what changes (the batch) as arguments."
    if reason.startswith(("global", "closure", "the arguments' structure")):
        return "Pass a value that changes at every step as an array argument (a number as " \
               "`np.asarray(value, np.float32)`): arrays are read at every call without tracing again."
    if reason.startswith("argument array"):
        return "Shapes that keep changing retrace: pad batches to one shape, or use drop_last=True."
    return ""


def _name(subject):
    if isinstance(subject, types.FunctionType):
        return subject.__qualname__
    return type(subject).__name__ if not isinstance(subject, type) else subject.__name__


def _weak(obj):
    try:
        return weakref.ref(obj)
    except TypeError:
        return None if is_torch_tensor(obj) else (lambda: obj)


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
