"""How arguments become tracers and back: one small registry of containers and array holders.

Arguments are trees. Leaves are arrays (traced), or anything else (static: part of the cache key, so
changing a Python scalar or flag retraces). Inner nodes are containers (tuple, list, dict, and any
type given to `register_container`) or *holders*: mutable objects that declare named arrays, such as
`nn.Module` or a user's own class given to `register_holder`. Holders are not rebuilt: tracing binds
tracers into them in place and restores them afterwards.
"""
from dataclasses import dataclass

from .backend import is_array
from .errors import AvalonError


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


_containers = {}
_holders = {}


def register_container(cls, flatten, unflatten):
    """Let values of `cls` carry arrays through `trace` and `grad`.

    `flatten(obj) -> (children, aux)` with hashable `aux`; `unflatten(aux, children) -> obj`.

    >>> register_container(Pair, lambda p: ((p.a, p.b), None), lambda aux, ch: Pair(*ch))
    """
    _containers[cls] = _Container(flatten, unflatten)


def register_holder(cls, named_arrays=None, assign=None, static=None, named_parts=None):
    """Let instances of `cls` (mutable objects that own arrays) be arguments of traced functions.

    By default the arrays are the instance's array attributes (trainable), nested holders give dotted
    names, and the other plain attributes (numbers, strings, flags) are static. `named_parts` lists
    nested holders by dotted name (they become scopes on the tape). `grad` returns a `Grads` for a
    holder, reachable by the same attribute paths. Usable as a class decorator.
    """
    _holders[cls] = _Holder(named_arrays or _attribute_arrays, assign or _assign_attributes,
                            static or _attribute_static, named_parts or _attribute_parts)
    return cls


def _lookup(table, cls):
    for base in cls.__mro__:
        if base in table:
            return table[base]
    return None


def holder_of(obj):
    return _lookup(_holders, type(obj))


def is_static_leaf(x):
    return not is_array(x) and _lookup(_containers, type(x)) is None and holder_of(x) is None and \
        not isinstance(x, (tuple, list, dict))


def _static_key(x):
    try:
        hash(x)
        return x
    except TypeError:
        return ("unhashable", type(x).__qualname__)


def flatten(obj, name=""):
    """(leaves, leaf_info, holders, spec): arrays in order, their `Leaf`s, holder objects, structure.

    `spec` is hashable and includes every static value: it is the structural part of a cache key.
    """
    leaves, infos, holders = [], [], []
    spec = _flatten(obj, name, leaves, infos, holders, role="data")
    return leaves, infos, holders, spec


def _join(prefix, key):
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def _flatten(obj, name, leaves, infos, holders, role):
    if is_array(obj) or _is_tracer(obj):
        leaves.append(obj)
        infos.append(Leaf(name, role))
        return ("leaf",)
    if isinstance(obj, (tuple, list)) and type(obj) in (tuple, list):
        kids = tuple(_flatten(x, _join(name, i), leaves, infos, holders, role) for i, x in enumerate(obj))
        return (type(obj).__name__, kids)
    if isinstance(obj, dict) and type(obj) is dict:
        keys = tuple(obj)
        kids = tuple(_flatten(obj[k], f"{name}[{k!r}]" if name else str(k), leaves, infos, holders, role)
                     for k in keys)
        return ("dict", keys, kids)
    container = _lookup(_containers, type(obj))
    if container is not None:
        children, aux = container.flatten(obj)
        kids = tuple(_flatten(x, _join(name, i), leaves, infos, holders, role) for i, x in enumerate(children))
        return ("container", type(obj), aux, kids)
    holder = holder_of(obj)
    if holder is not None:
        holders.append(obj)
        names = []
        for key, array, array_role in holder.named_arrays(obj):
            leaves.append(array)
            infos.append(Leaf(key, array_role))
            names.append((key, array_role))
        return ("holder", type(obj), tuple(names), _static_key(holder.static(obj)))
    return ("static", _static_key(obj))


def unflatten(spec, leaves, holders, on_holder):
    """Rebuild a tree from `spec`, taking arrays from `leaves` and holder objects from `holders`.

    `on_holder(obj, {name: leaf}, roles)` decides what a holder becomes (bound in place, or a `Grads`).
    """
    leaves, holders = iter(leaves), iter(holders)
    return _unflatten(spec, leaves, holders, on_holder)


def _unflatten(spec, leaves, holders, on_holder):
    kind = spec[0]
    if kind == "leaf":
        return next(leaves)
    if kind in ("tuple", "list"):
        items = [_unflatten(s, leaves, holders, on_holder) for s in spec[1]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {k: _unflatten(s, leaves, holders, on_holder) for k, s in zip(spec[1], spec[2])}
    if kind == "container":
        children = [_unflatten(s, leaves, holders, on_holder) for s in spec[3]]
        return _containers[spec[1]].unflatten(spec[2], children)
    if kind == "holder":
        obj = next(holders)
        values = {key: next(leaves) for key, _ in spec[2]}
        return on_holder(obj, values, dict(spec[2]))
    return None if kind == "static" else _fail(spec)


def _fail(spec):
    raise AvalonError(f"internal: unknown tree node {spec!r}")


def _is_tracer(x):
    # Imported lazily: tracing builds on this module.
    from .tracing.tracer import Tracer

    return isinstance(x, Tracer)


# The default holder: array attributes are trainable, nested holders give dotted names.

_PLAIN = (int, float, complex, str, bool, type(None))


def _attribute_arrays(obj, prefix=""):
    out = []
    for key, value in vars(obj).items():
        if is_array(value) or _is_tracer(value):
            out.append((prefix + key, value, "param"))
        elif holder_of(value) is not None:
            out.extend(_attribute_arrays(value, prefix + key + "."))
    return out


def _attribute_parts(obj, prefix=""):
    out = []
    for key, value in vars(obj).items():
        if holder_of(value) is not None:
            out.append((prefix + key, value))
            out.extend(_attribute_parts(value, prefix + key + "."))
    return out


def _assign_attributes(obj, values):
    for dotted, value in values.items():
        *path, last = dotted.split(".")
        target = obj
        for part in path:
            target = getattr(target, part)
        setattr(target, last, value)


def _attribute_static(obj):
    items = []
    for key, value in vars(obj).items():
        if isinstance(value, _PLAIN) or (isinstance(value, tuple) and all(isinstance(v, _PLAIN) for v in value)):
            items.append((key, value))
        elif holder_of(value) is not None:
            items.append((key, _attribute_static(value)))
    return tuple(items)


class Grads:
    """Gradients of a holder (a Module): `g.fc1.weight`, `g["fc1.weight"]`, and `for name, g in grads`.

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
        shapes = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in self._named.items())
        return f"Grads({shapes})"
