"""Containers: Sequential, ModuleList, ModuleDict, ParameterList, with PyTorch's keys (`layers.0.weight`)."""
from collections import OrderedDict

from ...errors import AvalonError
from ..module import Module, _as_parameter, _indent

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]


def _index(length, idx, what):
    if not -length <= idx < length:
        raise IndexError(f"index {idx} is out of range for a {what} of length {length}")
    return idx % length


class _Numbered(Module):
    """Entries named by their position ('0', '1', …) in one of the Module's own tables, so that they
    get PyTorch's state_dict keys; Sequential, ModuleList and ParameterList differ only in the table
    (`_store`) and in how an entry is added (`_put`)."""

    _store = "_modules"

    def _entries(self):
        return self.__dict__[self._store]

    def _put(self, name, module):
        self.add_module(name, module)

    def __len__(self):
        return len(self._entries())

    def __iter__(self):
        return iter(self._entries().values())

    def append(self, value):
        """Add `value` (a module; for ParameterList a `Parameter` or an array) at the end, named by its position."""
        self._put(str(len(self)), value)
        return self

    def extend(self, values):
        """Append each of `values`."""
        for value in values:
            self.append(value)
        return self

    def _renumber(self, values):
        self._entries().clear()
        for value in values:
            self.append(value)


class _Listed(_Numbered):
    """List indexing for ModuleList and ParameterList: a slice is a new container of the same entries."""

    def __getitem__(self, idx):
        values = list(self._entries().values())
        if isinstance(idx, slice):
            return type(self)(values[idx])
        return values[_index(len(values), idx, self._kind)]

    def __setitem__(self, idx, value):
        self._put(str(_index(len(self), idx, self._kind)), value)

    def __iadd__(self, values):
        return self.extend(values)


class Sequential(_Numbered):
    """Modules applied one after another: `Sequential(a, b, c)(x) == c(b(a(x)))`.

    Built from modules (named '0', '1', …) or from an OrderedDict of names to modules. Supports
    `len`, indexing, slicing (a new Sequential of the same modules), iteration and `append`.
    """

    _array_first = False  # its first layer checks the input

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            self.extend(args)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input

    # Entries keep their names (an OrderedDict's, or positions left with gaps by `del`), so unlike
    # ModuleList a slice keeps the names and assignment replaces the entry under its own name.
    def __getitem__(self, idx):
        items = list(self._modules.items())
        if isinstance(idx, slice):
            return type(self)(OrderedDict(items[idx]))
        return items[_index(len(items), idx, "Sequential")][1]

    def __setitem__(self, idx, module):
        key = list(self._modules)[_index(len(self), idx, "Sequential")]
        self.add_module(key, module)

    def __delitem__(self, idx):
        keys = list(self._modules)
        for key in (keys[idx] if isinstance(idx, slice) else [keys[_index(len(keys), idx, "Sequential")]]):
            del self._modules[key]

    def insert(self, index, module):
        """Insert `module` before position `index` (later modules are renumbered)."""
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._renumber(modules)
        return self


class ModuleList(_Listed):
    """A list of modules whose parameters belong to the parent (`layers.0.weight`, `layers.1.weight`).

    It has no forward: iterate over it in the parent's forward.
    """

    _kind = "ModuleList"

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __delitem__(self, idx):
        modules = list(self._modules.values())
        del modules[idx if isinstance(idx, slice) else _index(len(modules), idx, self._kind)]
        self._renumber(modules)

    def insert(self, index, module):
        """Insert `module` before position `index`."""
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._renumber(modules)

    def forward(self, *args, **kwargs):
        raise AvalonError("ModuleList has no forward(): iterate over it in your module's forward")

    def __repr__(self):
        # Runs of identical layers are shown once, as PyTorch does: "(0-2): 3 x Linear(...)".
        entries = [(name, repr(module)) for name, module in self._modules.items()]
        if not entries:
            return "ModuleList()"
        lines, start = [], 0
        while start < len(entries):
            end = start
            while end + 1 < len(entries) and entries[end + 1][1] == entries[start][1]:
                end += 1
            text = _indent(entries[start][1], 2)
            if end > start:
                lines.append(f"({entries[start][0]}-{entries[end][0]}): {end - start + 1} x {text}")
            else:
                lines.append(f"({entries[start][0]}): {text}")
            start = end + 1
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"


class _Named(Module):
    """The mapping side of ModuleDict and ParameterDict: a view of one of the Module's own tables
    (`_store`), so that the names are the state_dict keys."""

    _store = "_modules"

    def _entries(self):
        return self.__dict__[self._store]

    def __getitem__(self, key):
        return self._entries()[key]

    def __delitem__(self, key):
        del self._entries()[key]

    def __len__(self):
        return len(self._entries())

    def __iter__(self):
        return iter(self._entries())

    def __contains__(self, key):
        return key in self._entries()

    def keys(self):
        """The names."""
        return self._entries().keys()

    def values(self):
        """The modules, or the parameter arrays."""
        return self._entries().values()

    def items(self):
        """(name, value) pairs."""
        return self._entries().items()


class ModuleDict(_Named):
    """A dict of named modules whose parameters belong to the parent (`heads.cls.weight`)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def update(self, modules):
        """Add the (name, module) pairs of a mapping or an iterable of pairs."""
        for key, module in (modules.items() if hasattr(modules, "items") else modules):
            self.add_module(key, module)

    def pop(self, key):
        """Remove `key` and return its module."""
        return self._modules.pop(key)

    def clear(self):
        """Remove every module."""
        self._modules.clear()

    def forward(self, *args, **kwargs):
        raise AvalonError("ModuleDict has no forward(): look modules up by name in your module's forward")


class ParameterList(_Listed):
    """A list of parameters, saved under the keys '0', '1', … (indexing returns the plain arrays)."""

    _store = "_parameters"
    _kind = "ParameterList"

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def _put(self, name, value):
        self.register_parameter(name, _as_parameter(value))

    def forward(self, *args, **kwargs):
        raise AvalonError("ParameterList has no forward(): use its parameters in your module's forward")

    def __repr__(self):
        return _parameters_repr(self)


class ParameterDict(_Named):
    """A dict of named parameters, saved under their names (lookups return the plain arrays)."""

    _store = "_parameters"

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __setitem__(self, key, value):
        self.register_parameter(key, _as_parameter(value))

    def update(self, parameters):
        """Add the (name, parameter) pairs of a mapping or an iterable of pairs. A plain dict is added
        in sorted key order, as PyTorch does; an OrderedDict or ParameterDict keeps its order."""
        if isinstance(parameters, (OrderedDict, ParameterDict)):
            pairs = parameters.items()
        elif hasattr(parameters, "items"):
            pairs = sorted(parameters.items())
        else:
            pairs = parameters
        for key, value in pairs:
            self[key] = value

    def forward(self, *args, **kwargs):
        raise AvalonError("ParameterDict has no forward(): look parameters up by name in your module's forward")

    def __repr__(self):
        return _parameters_repr(self)


def _parameters_repr(container):
    # PyTorch indents these entries by four spaces
    lines = [f"    ({name}): Parameter containing: [{p.dtype} of size {'x'.join(map(str, p.shape))}]"
             for name, p in container._parameters.items()]
    name = type(container).__name__
    return f"{name}(\n" + "\n".join(lines) + "\n)" if lines else f"{name}()"
