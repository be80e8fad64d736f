"""Guards of a cached entry: the Python values a trace read besides its arguments.

A traced function bakes whatever Python values it reads into its tape: a global loss weight, a
closure's temperature, a function it calls. While tracing, `watching()` notes every function of the
user's own code that runs (Avalon, numpy, the standard library and site-packages are not the
user's); the globals those functions load and the closure cells of the traced function (and of the
functions it reaches through them) become guards, checked before every replay. A changed value makes
the entry stale and the call traces again.

How a value is compared: numbers, strings, tuples, containers and plain data objects by value
(`tree.static_key`); functions, classes and holders (a model) by identity (a holder's arrays and
attributes are the captures' business); arrays by identity, shape, dtype and contents (whole up to
`WHOLE_ARRAY` elements, a fixed sample of larger ones); modules not at all.
"""
import contextlib
import dis
import sys
import types

import numpy as np

from .. import tree
from ..backend import is_array, namespace
from ..plain_data import is_plain_data, is_user_class
from ..tensor import is_torch_tensor
from ..tracing.source import code_kind
from . import retraces
from .host_random import HostGenerators

WHOLE_ARRAY = 1 << 16
_SAMPLE = 4096
_LARGE_CONTAINER = 1000
_MISSING = object()
_IDENTITY_TYPES = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type,
                   types.MethodWrapperType, types.WrapperDescriptorType)
_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), np.generic)


class Guards:
    """The read values of one trace; `changed()` names the first that differs now, or None."""

    def __init__(self, checks):
        self.checks = tuple(checks)

    def changed(self):
        for check in self.checks:
            if not check.holds():
                return check.describe()
        return None

    def __len__(self):
        return len(self.checks)


@contextlib.contextmanager
def watching(f, holders=(), subject=None):
    """Run the body (a trace of `f`, whose arguments hold `holders`) noting the user's functions that
    run; yields a list that holds the `Guards` once the body is done. A trace that drew random numbers
    from a host generator never replays (`host_random`; the warning names `subject`: a model's forward,
    or `f`)."""
    seen = _Seen()
    seen.host.add_from(_closure_values(f), f"closure of {getattr(f, '__qualname__', f)}")
    for holder in holders:
        for path, part in [("", holder), *tree.holder_of(holder).named_parts(holder)]:
            seen.host.add_from(vars(part) if hasattr(part, "__dict__") else {}, f"attribute of {path or 'model'}")
    previous = sys.gettrace()
    sys.settrace(seen.chained(previous))
    result = []
    try:
        yield result
    finally:
        sys.settrace(previous)
    shown = subject if subject is not None else f
    drawn = seen.host.drawn(shown if isinstance(shown, types.FunctionType) else getattr(shown, "forward", shown))
    never = [_Never(f"{retraces.DRAWS} from {', '.join(drawn)} while traced")] if drawn else []
    result.append(seen.guards(f, holders, never))


class _Seen:
    """Code objects of the user's functions that ran, with their globals; host generators in reach."""

    def __init__(self):
        self.globals_of = {}
        self.host = HostGenerators()
        self.before = {}  # (globals' id, name) or (code, free variable) -> its state when first seen

    def chained(self, previous):
        """The trace function: called at every Python call while tracing, so it does one set lookup
        for code it has seen (most of it Avalon's own)."""
        globals_of, seen, host, before = self.globals_of, set(), self.host, self.before

        def on_call(frame, event, arg):
            code = frame.f_code
            if code not in seen:
                seen.add(code)
                if _kind_of(code.co_filename) == "user":
                    globs = frame.f_globals
                    if not any(g is globs for g in globals_of.values()):
                        host.add_from(globs, f"global of {code.co_filename}")
                    globals_of[code] = globs
                    for name in _global_loads(code):
                        if (id(globs), name) not in before:
                            before[id(globs), name] = _state_key(globs.get(name, _MISSING))
                    if code.co_freevars:  # generators in a closure, seen before the body draws from them
                        free = frame.f_locals
                        values = {n: free.get(n, _MISSING) for n in code.co_freevars}
                        host.add_from(values, f"closure of {code.co_name}")
                        for name, value in values.items():
                            before.setdefault((code, name), _state_key(value))
            return previous(frame, event, arg) if previous is not None else None

        # It looks at the user's code only, so Avalon may switch it off while it records a built-in
        # primitive (tracing/context.py), unless it chains another hook (a debugger, coverage).
        on_call.skips_avalon = previous is None
        return on_call

    def guards(self, f, holders, checks):
        """The Guards of the values the trace read, after `checks` (an entry's own conditions)."""
        checks, done = list(checks), set()
        functions, holders = _functions_of(f), list(holders)
        for code, globs in self.globals_of.items():
            for name in _global_loads(code):
                value = globs.get(name, _MISSING)
                if value is not _MISSING and (id(globs), name) not in done:
                    done.add((id(globs), name))
                    written = name in _written(code) or self._changed((id(globs), name), value)
                    checks.append(_check(value, _GlobalRead(globs, name, code), written))
                    functions.extend(_functions_of(value))
                    holders += [value] if tree.holder_of(value) is not None else []
        seen_cells = set()
        for fn in _closures(functions, set(self.globals_of)):
            for name, cell in zip(fn.__code__.co_freevars, fn.__closure__):
                if id(cell) not in seen_cells:
                    seen_cells.add(id(cell))
                    value = _cell_value(cell)
                    if value is not _MISSING:
                        written = name in _written(fn.__code__) or self._changed((fn.__code__, name), value)
                        checks.append(_check(value, _CellRead(cell, name, fn), written))
                        holders += [value] if tree.holder_of(value) is not None else []
        checks += [_check(value, _ClassRead(cls, name)) for cls, name, value in _class_attributes(holders)]
        return Guards(c for c in checks if c is not None)


    def _changed(self, where, value):
        """Did the trace itself change this value (a log it appends to, a counter)? Then it is the
        code's side effect, not an input: comparing it would make the entry stale after every trace."""
        first = self.before.get(where, _UNKNOWN)
        return first is not _UNKNOWN and first != _state_key(value)


_UNKNOWN = object()


def _state_key(value):
    """What a mutable value holds (a list, a dict, a config object), to tell whether the trace
    changed it; None for values compared by identity or never changed in place."""
    if isinstance(value, (list, dict, set)) and not _large(value) or is_plain_data(value):
        try:
            return tree.static_key(value)
        except Exception:
            return None
    return None


def _class_attributes(holders):
    """(class, name, value) for the plain class attributes (`SCALE = 2.0` in a model's class body, read
    as `self.SCALE`) of the user's classes behind `holders` and their parts."""
    classes = {}
    for holder in holders:
        for part in [holder, *(p for _, p in tree.holder_of(holder).named_parts(holder))]:
            for cls in type(part).__mro__:
                if cls not in classes and is_user_class(cls):
                    classes[cls] = [(name, value) for name, value in vars(cls).items()
                                    if not name.startswith("__") and not hasattr(value, "__get__")
                                    and not isinstance(value, (type, types.ModuleType))]
    return [(cls, name, value) for cls, attributes in classes.items() for name, value in attributes]


def _functions_of(value):
    """The plain functions behind a callable value (a function, a bound method, a partial)."""
    out = []
    while True:
        if isinstance(value, types.MethodType):
            value = value.__func__
        elif hasattr(value, "func") and hasattr(value, "args") and hasattr(value, "keywords"):
            value = value.func  # functools.partial
        else:
            break
    if isinstance(value, types.FunctionType):
        out.append(value)
    return out


def _closures(functions, ran):
    """The closures among `functions` whose code ran, and those reachable through their cells."""
    found, queue = {}, list(functions)
    while queue:
        fn = queue.pop()
        if id(fn) in found or fn.__closure__ is None:
            continue
        found[id(fn)] = fn
        for cell in fn.__closure__:
            queue.extend(_functions_of(_cell_value(cell)))
    return [fn for fn in found.values() if fn.__code__ in ran]


_kinds = {}  # filename -> code_kind(filename)


def _kind_of(filename):
    kind = _kinds.get(filename)
    if kind is None:
        kind = _kinds[filename] = code_kind(filename)
    return kind


_names = {}  # code -> (global names it loads, names it assigns or mutates)
_LOADS = {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF"}
_STORES = {"STORE_GLOBAL", "STORE_NAME", "STORE_DEREF"}


def _global_loads(code):
    return _read_and_written(code)[0]


def _written(code):
    return _read_and_written(code)[1]


def _read_and_written(code):
    """Names `code` loads as globals, and names it writes: assigns (`global n; n += 1`) or mutates on
    a line that starts by loading them (`calls.count += 1`, `log[key] = v`). What the traced code
    writes is its own side effect, not an input: such values are guarded by identity only, or the
    entry would be stale after every trace."""
    names = _names.get(code)
    if names is None:
        loads, written, line_start = [], set(), {}
        for i in dis.get_instructions(code):
            if i.starts_line is not None:
                line_start = {"name": i.argval if i.opname in _LOADS else None}
            if i.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                loads.append(i.argval)
            elif i.opname in _STORES:
                written.add(i.argval)
            elif i.opname in ("STORE_ATTR", "STORE_SUBSCR") and line_start.get("name") is not None:
                written.add(line_start["name"])
        names = _names[code] = (tuple(dict.fromkeys(loads)), frozenset(written))
    return names


def _closure_values(f):
    f = next(iter(_functions_of(f)), None)
    if f is None or f.__closure__ is None:
        return {}
    return {name: _cell_value(cell) for name, cell in zip(f.__code__.co_freevars, f.__closure__)}


def _cell_value(cell):
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell: the variable is not assigned yet
        return _MISSING


class _GlobalRead:
    def __init__(self, globs, name, code):
        self.globs, self.name, self.code = globs, name, code

    def __call__(self):
        return self.globs.get(self.name, _MISSING)

    def describe(self):
        return f"global `{self.name}` (read by {self.code.co_name} in {self.code.co_filename})"


class _CellRead:
    def __init__(self, cell, name, fn):
        self.cell, self.name, self.fn = cell, name, fn

    def __call__(self):
        return _cell_value(self.cell)

    def describe(self):
        return f"closure variable `{self.name}` of {self.fn.__qualname__} ({self.fn.__code__.co_filename})"


class _ClassRead:
    def __init__(self, cls, name):
        self.cls, self.name = cls, name

    def __call__(self):
        return vars(self.cls).get(self.name, _MISSING)

    def describe(self):
        return f"class attribute `{self.cls.__name__}.{self.name}`"


def _check(value, read, written=False):
    """The check that `read()` still gives what the trace saw, or None for values never checked.
    A value the traced code itself writes (`written`) is checked by identity only."""
    if isinstance(value, types.ModuleType):
        return None
    if written:
        return _Same(read, value) if not isinstance(value, _IMMUTABLE) else None
    if is_array(value) and not isinstance(value, np.generic):
        return _SameArray(read, value)
    if isinstance(value, _IDENTITY_TYPES) or tree.holder_of(value) is not None or is_torch_tensor(value) or \
            callable(value) and not is_plain_data(value) or _large(value):
        return _Same(read, value)
    try:
        return _Equal(read, value)
    except Exception:  # no key to compare it by (an odd __eq__ or __hash__): by identity
        return _Same(read, value)


def _large(value):
    """Containers too large to compare at every call (a vocabulary): compared by identity."""
    return isinstance(value, (list, tuple, dict, set, frozenset)) and len(value) > _LARGE_CONTAINER


class _Never:
    """An entry that must not replay (its trace drew host random numbers)."""

    def __init__(self, why):
        self.why = why

    def holds(self):
        return False

    def describe(self):
        return self.why


class _Same:
    """The same object (a function, a class, a model)."""

    def __init__(self, read, value):
        self.read, self.value = read, value

    def holds(self):
        return self.read() is self.value

    def describe(self):
        return f"{self.read.describe()} now refers to another object"


class _Equal:
    """An equal value: numbers and strings, containers and plain data objects, compared by key."""

    def __init__(self, read, value):
        self.read, self.value, self.key = read, value, tree.static_key(value)
        self.immutable = isinstance(value, _IMMUTABLE)

    def holds(self):
        now = self.read()
        if now is self.value and self.immutable:
            return True
        try:
            return now is not _MISSING and tree.static_key(now) == self.key
        except Exception:  # a value whose == is not a truth value: the same object is all we can tell
            return now is self.value

    def describe(self):
        now = self.read()
        shown = "deleted" if now is _MISSING else _short(now)
        return f"{self.read.describe()} changed from {_short(self.value)} to {shown}"


class _SameArray:
    """The same array object, with the same shape, dtype and contents (a sample of a large one)."""

    def __init__(self, read, value):
        self.read, self.value = read, value
        self.shape, self.dtype = value.shape, value.dtype
        self.snapshot = _contents(value).copy()

    def holds(self):
        now = self.read()
        if now is not self.value or now.shape != self.shape or now.dtype != self.dtype:
            return False
        return bool(namespace(now).array_equal(_contents(now), self.snapshot, equal_nan=True))

    def describe(self):
        now = self.read()
        what = "now refers to another object" if now is not self.value else "changed in place"
        return f"{self.read.describe()} (an array) {what}"


def _contents(array):
    """The array's elements, or a fixed sample of a large one (read without copying the whole of a
    non-contiguous array, as reshaping it would)."""
    if array.size <= WHOLE_ARRAY:
        return array.reshape(-1)
    picks = namespace(array).arange(0, array.size, array.size // _SAMPLE)
    return array.flat[picks] if isinstance(array, np.ndarray) else array.ravel()[picks]


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
