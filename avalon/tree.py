"""How arguments become tracers and back: one small registry of containers and array holders.

Arguments are trees. Leaves are arrays (traced), or anything else (static: part of the cache key, so
changing a Python scalar or flag retraces). Inner nodes are containers (tuple, list, dict, and any
type given to `register_container`; named tuples too) or *holders*: mutable objects that declare named arrays, such as
`nn.Module` or a user's own class given to `register_holder`. Tracing gives the traced code a *view*
of each holder (`avalon.tracing.binding`): a copy of its structure holding tracers, so the user's
object never holds one where another thread could see it.
"""
import threading
from dataclasses import dataclass

import numpy as np

from .backend import is_array
from .errors import AvalonError
from .plain_data import fields, is_plain_data
from .standin import as_traced
from .tensor import is_torch_tensor, is_torch_tensor_type, plain


@dataclass(frozen=True)
class Leaf:
    """Where a leaf array came from: its dotted name and its role ('data', 'param', 'buffer')."""

    name: str
    role: str = "data"


@dataclass(frozen=True)
class _Container:
    flatten: object
    unflatten: object


@dataclass(frozen=True)
class _Holder:
    named_arrays: object  # obj -> [(name, array, role)]
    assign: object  # (obj, {name: value}) -> None
    static: object  # obj -> hashable
    named_parts: object  # obj -> [(dotted name, sub-holder)]: module scopes on the tape
    view: object  # (obj, view_of) -> a copy to bind other arrays into, or None: bound in place


_containers = {}
_holders = {}


def register_container(cls, flatten, unflatten):
    """Let values of `cls` carry arrays through `trace` and `grad`.

    `flatten(obj) -> (children, aux)` with hashable `aux`; `unflatten(aux, children) -> obj`.

    >>> register_container(Pair, lambda p: ((p.a, p.b), None), lambda aux, ch: Pair(*ch))
    """
    _containers[cls] = _Container(flatten, unflatten)
    _kinds.clear()


def register_holder(cls, named_arrays=None, assign=None, static=None, named_parts=None, view=None):
    """Let instances of `cls` (mutable objects that own arrays) be arguments of traced functions.

    By default the arrays are the instance's array attributes (trainable); nested holders, and lists,
    tuples and dicts of arrays or holders, give dotted names (`fc1.weight`, `layers.0.bias`); every
    other attribute (numbers, strings, flags) is static: changing it retraces. `named_parts` lists
    nested holders by dotted name (they become scopes on the tape). `grad` returns a `Grads` for a
    holder, reachable by the same attribute paths. Usable as a class decorator.

    `view(obj, view_of)` returns a copy of `obj` that `assign` can bind tracers into without changing
    `obj` (`view_of(part)` gives a nested holder's copy). A class with its own `assign` and no `view`
    is bound in place while traced: such traces take `IN_PLACE`, one lock, so they run one at a time
    and a call flattening such an object waits for them.
    """
    if view is None and assign is None:
        view = _attribute_view
    _holders[cls] = _Holder(named_arrays or _attribute_arrays, assign or _assign_attributes,
                            static or _attribute_static, named_parts or _attribute_parts, view)
    _kinds.clear()
    return cls


def _lookup(table, cls):
    for base in cls.__mro__:
        if base in table:
            return table[base]
    return None


def holder_of(obj):
    return _lookup(_holders, type(obj))


# Held while holders without a view are bound in place (see register_holder); reentrant, as a trace
# flattens the holders it has bound.
IN_PLACE = threading.RLock()


def named_arrays(obj, holder=None):
    """[(dotted name, array, role)] of the holder `obj`: its own arrays, never another thread's
    tracers (a holder bound in place is read when its binding is undone)."""
    holder = holder or holder_of(obj)
    if holder.view is not None:
        return holder.named_arrays(obj)
    with IN_PLACE:
        return list(holder.named_arrays(obj))


_kinds = {}  # type -> how `flatten` treats its instances; cleared whenever a type is registered


def _kind(cls):
    kind = _kinds.get(cls)
    if kind is None:
        if cls is np.ndarray or issubclass(cls, np.generic) or getattr(cls, "_avalon_tracer", False):
            kind = "leaf"
        elif issubclass(cls, np.ndarray) or is_torch_tensor_type(cls):
            kind = "array"  # a Tensor (or a torch tensor): traced and replayed as its plain array
        elif hasattr(cls, "__array_namespace__"):
            kind = "leaf"
        elif cls is tuple or cls is list:
            kind = "sequence"
        elif issubclass(cls, tuple) and hasattr(cls, "_fields"):
            kind = "namedtuple"
        elif cls is dict:
            kind = "dict"
        elif _lookup(_containers, cls) is not None:
            kind = "container"
        elif _lookup(_holders, cls) is not None:
            kind = "holder"
        else:
            kind = "static"
        _kinds[cls] = kind
    return kind


class ByIdentity:
    """A key part equal only to the very same object, which it keeps alive (so its id cannot be
    reused by another object while the key exists)."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self):
        return id(self.obj)

    def __eq__(self, other):
        return isinstance(other, ByIdentity) and other.obj is self.obj


_STATIC_DEPTH = 6  # containers and plain data objects nested deeper are keyed by identity


def static_key(x, depth=0):
    """A hashable key for a static value: equal keys mean traced code sees the same value.

    The type is part of the key (1, 1.0 and True trace differently); containers and plain data
    objects (a config object, a dataclass, a namespace: `avalon.plain_data`) are keyed by their items
    or fields, arrays by identity (they are constants of the traced code), other unhashable values
    by repr.
    """
    if depth > _STATIC_DEPTH:
        return ("deep", ByIdentity(x))
    if isinstance(x, (tuple, list)):
        return (type(x),) + tuple(static_key(v, depth + 1) for v in x)
    if isinstance(x, dict):
        return (dict,) + tuple((k, static_key(v, depth + 1)) for k, v in x.items())
    if is_array(x):
        return ("array", ByIdentity(x))
    if is_plain_data(x):
        return (type(x), "fields") + tuple((k, static_key(v, depth + 1)) for k, v in fields(x).items())
    if isinstance(x, slice):  # unhashable before Python 3.12
        return (slice, static_key(x.start), static_key(x.stop), static_key(x.step))
    try:
        hash(x)
    except TypeError:
        return ("unhashable", type(x), repr(x))
    return (type(x), x)


def flatten(obj, name="", names=True):
    """(leaves, leaf_info, holders, spec): arrays in order, their `Leaf`s, holder objects, structure.

    `spec` is hashable and includes every static value: it is the structural part of a cache key.
    With `names=False` (the cache's hot path) no `Leaf`s are made and `leaf_info` is None.
    """
    leaves, holders = [], []
    infos = [] if names else None
    spec = _flatten(obj, name, leaves, infos, holders)
    return leaves, infos, holders, spec


def _join(prefix, key):
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


_LEAF = ("leaf",)


def _flatten(obj, name, leaves, infos, holders):
    kind = _kinds.get(type(obj)) or _kind(type(obj))
    if kind == "leaf" or kind == "array":
        leaves.append(obj if kind == "leaf" else plain(as_traced(obj)))  # a hook's Standin: its tracer
        if infos is not None:
            infos.append(Leaf(name))
        return _LEAF
    if kind in ("sequence", "namedtuple", "container"):
        children, aux = (obj, None) if kind != "container" else _lookup(_containers, type(obj)).flatten(obj)
        if infos is None:
            kids = tuple([_flatten(x, "", leaves, None, holders) for x in children])
        else:
            kids = tuple([_flatten(x, _join(name, i), leaves, infos, holders) for i, x in enumerate(children)])
        if kind == "sequence":
            return (type(obj).__name__, kids)
        return ("namedtuple", type(obj), kids) if kind == "namedtuple" else ("container", type(obj), aux, kids)
    if kind == "dict":
        keys = tuple(obj)
        kids = tuple([_flatten(obj[k], (f"{name}[{k!r}]" if name else str(k)) if infos is not None else "",
                               leaves, infos, holders) for k in keys])
        return ("dict", keys, kids)
    if kind == "holder":
        holder = holder_of(obj)
        holders.append(obj)
        names = []
        for key, array, array_role in named_arrays(obj, holder):
            leaves.append(plain(array))
            if infos is not None:
                infos.append(Leaf(key, array_role))
            names.append((key, array_role))
        return ("holder", type(obj), tuple(names), static_key(holder.static(obj)))
    return ("static", static_key(obj), _Static(obj))


def unflatten(spec, leaves, holders, on_holder, statics=True):
    """Rebuild a tree from `spec`, taking arrays from `leaves` and holder objects from `holders`.

    `on_holder(obj, {name: leaf}, roles)` decides what a holder becomes (bound in place, or a `Grads`).
    Static values come back as they were, or as None with `statics=False` (a gradient tree).
    """
    return _unflatten(spec, iter(leaves), iter(holders), on_holder, statics)


def _unflatten(spec, leaves, holders, on_holder, statics):
    # A module-level recursion, not a closure calling itself: that closure would be a reference cycle
    # holding `leaves` (a step's gradient arrays) until the cyclic collector happened to run.
    kind = spec[0]
    if kind == "leaf":
        return next(leaves)
    if kind in ("tuple", "list"):
        items = [_unflatten(s, leaves, holders, on_holder, statics) for s in spec[1]]
        return tuple(items) if kind == "tuple" else items
    if kind == "namedtuple":
        return spec[1](*(_unflatten(s, leaves, holders, on_holder, statics) for s in spec[2]))
    if kind == "dict":
        return {k: _unflatten(s, leaves, holders, on_holder, statics) for k, s in zip(spec[1], spec[2])}
    if kind == "container":
        return _containers[spec[1]].unflatten(spec[2], [_unflatten(s, leaves, holders, on_holder, statics)
                                                        for s in spec[3]])
    if kind == "holder":
        obj = next(holders)
        values = {key: next(leaves) for key, _ in spec[2]}
        return on_holder(obj, values, dict(spec[2]))
    if kind == "static":
        return spec[2].value if statics else None
    return _fail(spec)


class _Static:
    """A static value riding in a spec so `unflatten` can give it back. Invisible to hashing and
    equality: the `static_key` beside it is what keys the cache."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __hash__(self):
        return 0

    def __eq__(self, other):
        return isinstance(other, _Static)


def _fail(spec):
    raise AvalonError(f"internal: unknown tree node {spec!r}")


def _is_tracer(x):
    # Tracers are marked on their class (tracing builds on this module, so it cannot import Tracer).
    return getattr(type(x), "_avalon_tracer", False)


# The default holder: array attributes are trainable; nested holders, and lists, tuples and str-keyed
# dicts of arrays or holders, give dotted names (`fc1.weight`, `layers.0.bias`, as torch); every other
# attribute is static. A nested holder of another kind (an nn.Module) names and assigns its own arrays.

def _walk(value, name):
    """(kind, dotted name, value) for `value` and what it holds: 'array', 'holder' or 'static'."""
    if is_array(value) or _is_tracer(value) or is_torch_tensor(value):
        yield "array", name, value
    elif holder_of(value) is not None:
        yield "holder", name, value
    elif type(value) in (list, tuple) or type(value) is dict and all(isinstance(k, str) for k in value):
        yield "static", name, (type(value), len(value))
        for key, item in (value.items() if type(value) is dict else enumerate(value)):
            yield from _walk(item, f"{name}.{key}")
    else:
        yield "static", name, value


def _walk_attributes(obj):
    for key, value in vars(obj).items():
        yield from _walk(value, key)


def _attribute_arrays(obj):
    out = []
    for kind, name, value in _walk_attributes(obj):
        if kind == "array":
            out.append((name, value, "param"))
        elif kind == "holder":
            out.extend((f"{name}.{key}", array, role) for key, array, role in holder_of(value).named_arrays(value))
    return out


def _attribute_parts(obj):
    out = []
    for kind, name, value in _walk_attributes(obj):
        if kind == "holder":
            out.append((name, value))
            out.extend((f"{name}.{key}", part) for key, part in holder_of(value).named_parts(value))
    return out


def _attribute_static(obj):
    # Changing any of these retraces.
    items = []
    for kind, name, value in _walk_attributes(obj):
        if kind == "static":
            items.append((name, static_key(value)))
        elif kind == "holder":
            items.append((name, type(value), static_key(holder_of(value).static(value))))
    return tuple(items)


def _attribute_view(obj, view_of):
    """A copy of `obj` sharing its attribute values, except nested holders (their views) and the
    lists, tuples and dicts on the way to an array or a holder (copies, which `assign` may change)."""
    copy = object.__new__(type(obj))
    copy.__dict__.update({key: _view_value(value, view_of) for key, value in vars(obj).items()})
    return copy


def _view_value(value, view_of):
    if holder_of(value) is not None:
        return view_of(value)
    if type(value) in (list, tuple) or type(value) is dict and all(isinstance(k, str) for k in value):
        items = list(value.items() if type(value) is dict else enumerate(value))
        viewed = {key: _view_value(item, view_of) for key, item in items}
        if all(viewed[key] is item and not (is_array(item) or _is_tracer(item) or is_torch_tensor(item))
               for key, item in items):
            return value  # holds nothing that is bound: stays shared, as the user's code expects
        return viewed if type(value) is dict else type(value)(viewed.values())
    return value


def _assign_attributes(obj, values):
    for dotted, value in values.items():
        _set_member(obj, dotted.split("."), value)


def _set_member(target, parts, value):
    """Set the member named by `parts` below `target` (an object, list, tuple or dict); return the
    target, rebuilt when it is a tuple. A nested holder of another kind assigns its own arrays."""
    head, rest = parts[0], parts[1:]
    if type(target) in (list, tuple):
        key = int(head)
        child = target[key]
    elif type(target) is dict:
        key = head
        child = target[key]
    else:
        key = head
        child = getattr(target, head)
    if not rest:
        new = value
    elif holder_of(child) is not None and holder_of(child).assign is not _assign_attributes:
        holder_of(child).assign(child, {".".join(rest): value})
        new = child
    else:
        new = _set_member(child, rest, value)
    if type(target) is tuple:
        return tuple(new if i == key else item for i, item in enumerate(target))
    if type(target) in (list, dict):
        target[key] = new
    else:
        setattr(target, key, new)
    return target


class Grads:
    """Gradients of a holder (a Module): `g.fc1.weight`, `g["fc1.weight"]`, `g.layers[0].bias`, and
    `for name, g in grads`.

    Only trainable arrays have gradients; the order is the holder's own (as `named_parameters`).
    `grads.of(array)` finds the gradient of a parameter array itself (optimisers match by identity).
    """

    def __init__(self, named, sources=None):
        object.__setattr__(self, "_named", dict(named))
        object.__setattr__(self, "_sources", dict(sources or {}))

    def of(self, array):
        """The gradient of the parameter `array` (the very array object the holder had), or None."""
        for name, source in self._sources.items():
            if source is array:
                return self._named.get(name)
        return None

    def __setitem__(self, name, value):
        if name not in self._named:
            raise KeyError(f"no gradient named {name!r}")
        self._named[name] = value

    def __getitem__(self, name):
        if isinstance(name, int):  # `g.layers[0]`: the gradients under `layers.0`
            return getattr(self, str(name))
        return self._named[name]

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr in self._named:
            return self._named[attr]
        prefix = attr + "."
        sub = {k[len(prefix):]: v for k, v in self._named.items() if k.startswith(prefix)}
        if not sub:
            raise AttributeError(f"no gradient named {attr!r}; names are {list(self._named)}")
        return Grads(sub, {k[len(prefix):]: v for k, v in self._sources.items() if k.startswith(prefix)})

    def __iter__(self):
        return iter(self._named.items())

    def __len__(self):
        return len(self._named)

    def __contains__(self, name):
        return name in self._named

    def keys(self):
        return self._named.keys()

    def values(self):
        return self._named.values()

    def items(self):
        return self._named.items()

    def __repr__(self):
        shapes = ", ".join(f"{k}: {None if v is None else tuple(v.shape)}" for k, v in self._named.items())
        return f"Grads({shapes})"
