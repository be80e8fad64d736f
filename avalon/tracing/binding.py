"""Holders seen with other arrays by one thread only: the one mechanism that gives traced code (and
`gradcheck`) a model with tracers, or float64 copies, in place of its arrays.

The code is given a *view* of each holder: a copy of its structure (for a Module: the module objects
and their parameter, buffer and submodule tables) sharing every other value with the user's object,
with the new arrays bound into the copy. The user's object never holds a tracer, so another thread
that reads or calls it meanwhile sees its own arrays. What the code assigns to a plain attribute of a
view (`self.steps = 3`), or registers in it, is given to the user's object afterwards (even when the
code then fails, as Python's own writes would be); arrays it assigns are state outputs, written back
by the caller (`write_state`).

A holder kind registered with its own `assign` and no `view` cannot be copied: it is bound in place
under `tree.IN_PLACE` (one lock, held until the binding is undone; see `register_holder`).
"""
import contextlib
import threading

from .. import tree
from ..backend import is_array
from ..tensor import is_torch_tensor


class Bindings:
    """The holders one call works on, with other arrays bound in. `bind` gives the object to pass to
    the code, `find` the object the code sees for a holder, `release` ends it all."""

    def __init__(self, originals=None):
        self._seen = {}  # id(holder) -> the object the code sees for it (a view maps to itself)
        self._views = []  # [original, view, the view's attributes as bound]
        self._bound = []  # (original, what the code sees, {name: value bound})
        self._in_place = []  # (holder, its arrays before)
        # id(view) -> (view, the holder it is a view of); a trace's bindings share one (`Trace.original`)
        self.originals = {} if originals is None else originals

    def original(self, obj):
        """The holder `obj` is a view of (`obj` itself when it is not a view)."""
        return self.originals.get(id(obj), (None, obj))[1]

    def find(self, obj):
        """What the code sees for `obj` (a view, or `obj` bound in place), None if it was not bound."""
        return self._seen.get(id(obj))

    def bind(self, obj, values):
        """`obj` as the code should receive it, with `values` ({dotted name: array}) bound in."""
        holder = tree.holder_of(obj)
        if holder.view is None or self._seen.get(id(obj)) is obj:
            return self.bind_in_place(obj, values)
        seen = self._view_of(obj)
        holder.assign(seen, values)
        self._bound.append((obj, seen, values))
        for entry in self._views:  # what the code then changes is what differs from now
            entry[2] = dict(getattr(entry[1], "__dict__", {}))
        return seen

    def bind_in_place(self, obj, values):
        """Bind `values` into `obj` itself (the caller goes on using `obj`), under `tree.IN_PLACE`."""
        holder = tree.holder_of(obj)
        tree.IN_PLACE.acquire()
        self._in_place.append((obj, {name: array for name, array, _ in holder.named_arrays(obj)}))
        self._seen[id(obj)] = obj
        holder.assign(obj, values)
        self._bound.append((obj, obj, values))
        return obj

    def _view_of(self, obj):
        seen = self._seen.get(id(obj))
        if seen is None:
            seen = tree.holder_of(obj).view(obj, self._view_of)
            self._seen[id(obj)] = self._seen[id(seen)] = seen
            self.originals[id(seen)] = (seen, obj)  # keeps the view, so its id means it alone
            self._views.append([obj, seen, None])
        return seen

    def release(self, keep_arrays=False):
        """End the bindings. Plain attributes the code assigned on views (`self.steps = 3`), and the
        entries it added to their tables, are set on the originals, as Python code changes the objects
        it runs on, even when it then fails. With `keep_arrays` (a gradient inside traced code, whose
        holders are the enclosing trace's views) the arrays it assigned are given to the originals
        too: state updates the enclosing code goes on with."""
        for obj, seen, before in self._views:
            for key, value in getattr(seen, "__dict__", {}).items():
                if value is not before.get(key):
                    if not _is_array_like(value):
                        obj.__dict__[key] = value
                elif isinstance(value, dict) and isinstance(obj.__dict__.get(key), dict):
                    self._add_entries(obj.__dict__[key], value)
        changed = [_replaced(seen, values) for _, seen, values in self._bound] if keep_arrays else []
        for obj, arrays in reversed(self._in_place):
            tree.holder_of(obj).assign(obj, arrays)
        for (obj, _, _), new in zip(self._bound, changed):
            if new:
                tree.holder_of(obj).assign(obj, new)
        for _ in self._in_place:
            tree.IN_PLACE.release()
        self._in_place.clear()

    def _add_entries(self, table, copy):
        """Entries the code added to a view's copy of a table (a layer made on first call) are added to
        the original's: a tracer as None, its value written by the state update that follows."""
        for key, value in copy.items():
            if key not in table:
                table[key] = None if getattr(type(value), "_avalon_tracer", False) else self.original(value)


def _replaced(seen, values):
    """{name: array} the code assigned in place of what was bound into `seen`."""
    return {name: array for name, array, _ in tree.holder_of(seen).named_arrays(seen)
            if array is not values.get(name)}


def _is_array_like(value):
    return is_array(value) or getattr(type(value), "_avalon_tracer", False) or is_torch_tensor(value) \
        or type(value) in (list, tuple, dict) and any(_is_array_like(v) for v in
                                                      (value.values() if type(value) is dict else value))


class _Hooked(threading.local):
    """The views this thread's hook, run while tracing, reaches through the user's objects."""

    def __init__(self):
        self.views = {}  # id(original) -> its view


_hooked = _Hooked()
HOOKING = [0]  # how many threads run such a hook now: when 0, attribute access looks no further
_counting = threading.Lock()


@contextlib.contextmanager
def through_views(pairs):
    """Run a hook while tracing: it is given the user's objects (what a replay gives it, and what it
    may compare by identity), and in this thread a Module's members it reads (`module.weight_g`) or
    sets (`module.weight = ...`) are its view's, so what it computes from them is traced."""
    pairs = [(obj, view) for obj, view in pairs if obj is not view]
    if not pairs:
        yield
        return
    saved = dict(_hooked.views)
    _hooked.views.update((id(obj), view) for obj, view in pairs)
    with _counting:
        HOOKING[0] += 1
    try:
        yield
    finally:
        with _counting:
            HOOKING[0] -= 1
        _hooked.views = saved


def hooked_view(obj):
    """The view `through_views` gives `obj` in this thread now, or None."""
    return _hooked.views.get(id(obj))
