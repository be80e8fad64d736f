"""Containers: Sequential, ModuleList, ModuleDict, ParameterList, with PyTorch's keys (`layers.0.weight`)."""
from collections import OrderedDict

from ...errors import AvalonError
from ..module import Module, Parameter, _as_array

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]


def _index(length, idx, what):
    if not -length <= idx < length:
        raise IndexError(f"index {idx} is out of range for a {what} of length {length}")
    return idx % length


class Sequential(Module):
    """Modules applied one after another: `Sequential(a, b, c)(x) == c(b(a(x)))`.

    Built from modules (named '0', '1', …) or from an OrderedDict of names to modules. Supports
    `len`, indexing, slicing (a new Sequential of the same modules), iteration and `append`.
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input

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

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        """Add `module` at the end (named by its position)."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        """Append each of `modules`."""
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        """Insert `module` before position `index` (later modules are renumbered)."""
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)
        return self


class ModuleList(Module):
    """A list of modules whose parameters belong to the parent (`layers.0.weight`, `layers.1.weight`).

    It has no forward: iterate over it in the parent's forward.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        modules = list(self._modules.values())
        if isinstance(idx, slice):
            return type(self)(modules[idx])
        return modules[_index(len(modules), idx, "ModuleList")]

    def __setitem__(self, idx, module):
        self.add_module(str(_index(len(self), idx, "ModuleList")), module)

    def __delitem__(self, idx):
        modules = list(self._modules.values())
        del modules[idx if isinstance(idx, slice) else _index(len(modules), idx, "ModuleList")]
        self._renumber(modules)

    def _renumber(self, modules):
        self._modules.clear()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def append(self, module):
        """Add `module` at the end."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        """Append each of `modules`."""
        for module in modules:
            self.append(module)
        return self

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
            text = _indent(entries[start][1])
            if end > start:
                lines.append(f"({entries[start][0]}-{entries[end][0]}): {end - start + 1} x {text}")
            else:
                lines.append(f"({entries[start][0]}): {text}")
            start = end + 1
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"


def _indent(text):
    return text.replace("\n", "\n  ")


class ModuleDict(Module):
    """A dict of named modules whose parameters belong to the parent (`heads.cls.weight`)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        """The names."""
        return self._modules.keys()

    def values(self):
        """The modules."""
        return self._modules.values()

    def items(self):
        """(name, module) pairs."""
        return self._modules.items()

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


class ParameterList(Module):
    """A list of parameters, saved under the keys '0', '1', … (indexing returns the plain arrays)."""

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def __getitem__(self, idx):
        values = list(self._parameters.values())
        if isinstance(idx, slice):
            return type(self)(values[idx])
        return values[_index(len(values), idx, "ParameterList")]

    def __setitem__(self, idx, value):
        self.register_parameter(str(_index(len(self), idx, "ParameterList")), _as_parameter(value))

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def __iadd__(self, values):
        return self.extend(values)

    def append(self, value):
        """Add a parameter (a `Parameter` or an array) at the end."""
        self.register_parameter(str(len(self)), _as_parameter(value))
        return self

    def extend(self, values):
        """Append each of `values`."""
        for value in values:
            self.append(value)
        return self

    def forward(self, *args, **kwargs):
        raise AvalonError("ParameterList has no forward(): use its parameters in your module's forward")

    def __repr__(self):
        return _parameters_repr(self)


class ParameterDict(Module):
    """A dict of named parameters, saved under their names (lookups return the plain arrays)."""

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key):
        return self._parameters[key]

    def __setitem__(self, key, value):
        self.register_parameter(key, _as_parameter(value))

    def __delitem__(self, key):
        del self._parameters[key]

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def __contains__(self, key):
        return key in self._parameters

    def keys(self):
        """The names."""
        return self._parameters.keys()

    def values(self):
        """The parameter arrays."""
        return self._parameters.values()

    def items(self):
        """(name, array) pairs."""
        return self._parameters.items()

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


def _as_parameter(value):
    return value if isinstance(value, Parameter) else Parameter(_as_array(value))
