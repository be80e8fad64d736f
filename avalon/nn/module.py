"""`Module` and `Parameter`: PyTorch's model-building blocks, holding plain arrays.

A Module owns named parameters (trainable), buffers (state such as running statistics) and
submodules, with PyTorch's dotted names (`layers.0.weight`) and `state_dict` keys. It is registered
as a *holder* (`avalon.tree.register_holder`), so a model is an ordinary argument of
`avalon.grad(loss_fn, model, x, y)`: its parameters are traced and its gradients come back as a
`Grads` object (`grads[0].fc1.weight`). Calling a model on plain arrays (`model(x)`) traces its
`forward` once and replays the compiled tape afterwards; the training flag and the plain attributes of
every submodule are part of the cache key, so `model.eval()` traces again.

>>> class MLP(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)
...     def forward(self, x):
...         return self.fc2(F.relu(self.fc1(x)))
"""
import inspect
import os
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from .. import tree
from ..autodiff import cache
from ..backend import is_array, to_device
from ..arguments import ArgumentError
from ..errors import AvalonError
from ..tracing import current, scope
from ..tensor import Tensor, is_torch_tensor, plain, wrap
from ..tracing.binding import HOOKING, hooked_view
from ..tracing.tracer import Tracer
from .errors import array_input, input_error, user_location
from .hooks import ModuleHooks, call_with_hooks
from .loading import copy_into, prepared, root


class Parameter(Tensor):
    """A Tensor that is a trainable parameter of the Module it is assigned to (torch's nn.Parameter).

    `self.weight = nn.Parameter(avalon.zeros(3, 4))` registers it in `self._parameters`; it shares
    memory with the data it was made from. `requires_grad=False` (or `p.requires_grad_(False)` later)
    freezes it: it stays in `parameters()` and the `state_dict`, and `avalon.grad` gives it no
    gradient. Arithmetic on a Parameter gives plain Tensors, as in torch.
    """

    requires_grad = True

    def __new__(cls, data=None, requires_grad=True):
        array = plain(_as_array(np.empty(0, np.float32) if data is None else data))
        if not isinstance(array, np.ndarray):
            return array  # a cupy array stays itself
        param = np.ndarray.view(array, cls)
        if not requires_grad:
            param.requires_grad = False
        return param

    def __array_wrap__(self, array, context=None, return_scalar=False):
        # ufunc results are new values, not parameters
        if return_scalar:
            return array[()]
        return np.ndarray.view(array, Tensor)

    def __repr__(self):
        return "Parameter containing:\n" + np.array2string(plain(self)) + \
            ("" if self.requires_grad else ", requires_grad=False")


def _as_array(value):
    """numpy/cupy arrays (and Tensors) stay as they are; torch tensors become Tensors without a copy."""
    if is_array(value) or isinstance(value, Tracer):
        return value
    if is_torch_tensor(value):
        return wrap(plain(value))
    raise ArgumentError(f"expected an array, got {type(value).__name__}",
                        fix="register an array (np.asarray(value)), or keep plain values as ordinary attributes")


def _as_parameter(value):
    """A parameter's array as the module keeps it: a Parameter (a Tensor); tracers (while tracing)
    and cupy arrays as they are."""
    value = _as_array(value)
    if isinstance(value, Parameter) or not isinstance(value, np.ndarray):
        return value
    return Parameter(value)  # trainable, as torch's Parameter(t) whatever t's own flag


def _as_buffer(value):
    value = _as_array(value)
    return wrap(value) if isinstance(value, np.ndarray) else value


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of every layer and model (PyTorch's `nn.Module`): subclass it, call
    `super().__init__()`, assign parameters, buffers and submodules as attributes, define `forward`.
    Hooks (`register_forward_hook` …) are in `avalon.nn.hooks`."""

    # Avalon's own layers refuse a first input that is not an array (a list, None, a number) at the
    # user's line; those that pass it on (Identity, Sequential) or check it themselves say False
    _array_first = True

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        self.training = True

    # attributes

    def __setattr__(self, name, value):
        if HOOKING[0] and hooked_view(self) is not None:  # a hook while tracing: it sets the view's
            return setattr(hooked_view(self), name, value)
        parameters = self.__dict__.get("_parameters")
        if isinstance(value, (Parameter, Module)) and parameters is None:
            raise AvalonError(f"cannot assign {name!r} before Module.__init__() ran: call "
                              "`super().__init__()` first in your module's __init__")
        if isinstance(value, Parameter):
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self.add_module(name, value)
        elif parameters is not None and name in parameters:
            self._parameters[name] = None if value is None else _as_parameter(value)
        elif parameters is not None and name in self._buffers:
            self._buffers[name] = None if value is None else _as_buffer(value)
        elif parameters is not None and name in self._modules and value is None:
            self._modules[name] = None
        else:
            if parameters is not None:
                for table in (parameters, self._buffers, self._modules):
                    table.pop(name, None)
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Only called when ordinary lookup fails: parameters, buffers and submodules live in dicts.
        if HOOKING[0] and hooked_view(self) is not None:  # a hook while tracing: it reads the view's
            return getattr(hooked_view(self), name)
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def __delattr__(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                return
        object.__delattr__(self, name)

    def _claim(self, name, table):
        """Make `name` belong to `table` alone (keeping its place there when it is already in it)."""
        if "_parameters" not in self.__dict__:
            raise AvalonError("call `super().__init__()` before registering parameters, buffers or modules")
        if not isinstance(name, str) or "." in name or name == "" or name in _INTERNAL:
            raise ArgumentError(f"invalid name {name!r}: a non-empty string without '.'",
                                fix="use a name like 'layer1' (dots separate the levels of state_dict keys)")
        for other in (self._parameters, self._buffers, self._modules):
            if other is not table:
                other.pop(name, None)
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)

    def register_parameter(self, name, param):
        """Add a parameter (a `Parameter`, an array, or None for an absent optional one like `bias`)."""
        self._claim(name, self._parameters)
        self._parameters[name] = None if param is None else _as_parameter(param)

    def register_buffer(self, name, tensor, persistent=True):
        """Add a buffer: state that is not trained (running statistics). Persistent buffers are saved
        in the `state_dict`; all buffers are traced, and a forward that assigns a new value to one
        (`self.running_mean = ...`) has it written back at every call."""
        self._claim(name, self._buffers)
        self._buffers[name] = None if tensor is None else _as_buffer(tensor)
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        """Add a submodule under `name` (what attribute assignment does)."""
        if module is not None and not isinstance(module, Module):
            raise ArgumentError(f"{type(module).__name__} is not a Module",
                                fix="pass layers (nn.Linear(…), nn.ReLU() …), not their classes or other values")
        self._claim(name, self._modules)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target):
        """The submodule at dotted path `target` ('' is the module itself)."""
        module = self
        for part in target.split(".") if target else []:
            if part not in module._modules:
                raise AvalonError(f"{type(module).__name__} has no submodule {part!r} (in {target!r})")
            module = module._modules[part]
        return module

    # forward

    def forward(self, *args, **kwargs):
        """The computation; every subclass defines it."""
        raise AvalonError(f"{type(self).__name__} has no forward(): define it in the subclass")

    # Hook registration (avalon.nn.hooks) as Module's own members: its only base is object, as torch's.
    register_forward_pre_hook = ModuleHooks.register_forward_pre_hook
    register_forward_hook = ModuleHooks.register_forward_hook
    register_full_backward_pre_hook = ModuleHooks.register_full_backward_pre_hook
    register_full_backward_hook = ModuleHooks.register_full_backward_hook

    def __call__(self, *args, **kwargs):
        if current() is not None:
            return _run_module(self, *args, **kwargs)
        return cache.call(_run_module, (self,) + args, kwargs, subject=self)

    # traversal (PyTorch's order: pre-order over modules, own entries first, duplicates once)

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(dotted name, module) for this module and every submodule, pre-order."""
        memo = set() if memo is None else memo
        found, stack = [], [(prefix, self)]
        while stack:  # iterative: called on every model call, and deep models nest far
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in memo:
                    continue
                memo.add(id(module))
            found.append((name, module))
            children = [(f"{name}.{key}" if name else key, child)
                        for key, child in module._modules.items() if child is not None]
            stack.extend(reversed(children))
        return iter(found)

    def modules(self):
        """This module and every submodule."""
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """(name, module) of the direct submodules."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        """The direct submodules."""
        for _, module in self.named_children():
            yield module

    def _named_members(self, table, prefix, recurse):
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, array) of every parameter; a parameter shared by two layers appears once."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        """Every parameter array (what an optimiser is given)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        """(dotted name, array) of every buffer."""
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        """Every buffer array."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # modes

    def train(self, mode=True):
        """Set training mode (dropout active, batch statistics) on this module and all submodules."""
        if not isinstance(mode, bool):
            raise AvalonError(f"train(mode) expects a bool, got {type(mode).__name__}")
        for module in self.modules():
            module.training = mode
        return self

    def eval(self):
        """Set evaluation mode (the same as `train(False)`)."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter: frozen ones get no gradient from `avalon.grad`
        and optimisers leave them alone (fine-tuning a head on a frozen backbone)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Nothing to clear: `avalon.grad` returns gradients instead of accumulating them on
        parameters. Exists so ported training loops run unchanged."""

    def compile(self, *args, **kwargs):
        """No-op (torch's in-place compile): calls of a model on arrays are compiled already."""

    def share_memory(self):
        """No-op: numpy arrays are already shared with the processes that fork from this one."""
        return self

    def get_parameter(self, target):
        """The parameter at dotted path `target` (`'layer1.0.conv1.weight'`)."""
        return self._member(target, "_parameters", "parameter")

    def get_buffer(self, target):
        """The buffer at dotted path `target` (`'bn1.running_mean'`)."""
        return self._member(target, "_buffers", "buffer")

    def _member(self, target, table, kind):
        prefix, _, name = target.rpartition(".")
        owner = self.get_submodule(prefix)
        entries = getattr(owner, table)
        if name not in entries:
            raise AvalonError(f"{type(owner).__name__} has no {kind} {name!r} (in {target!r})")
        return entries[name]

    def set_submodule(self, target, module):
        """Replace the submodule at dotted path `target` with `module`."""
        prefix, _, name = target.rpartition(".")
        self.get_submodule(prefix).add_module(name, module)

    def apply(self, fn):
        """Call `fn(module)` on every submodule (children first) and then on this module."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def to(self, *args, **kwargs):
        """Move every array to a device ('cpu', 'cuda', 'cuda:1') and/or cast floating ones to a
        dtype: `model.to('cuda')`, `model.to(np.float64)`, `model.to(device, dtype)`."""
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        if kwargs:
            raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, str) or type(a).__name__ == "device":
                device = str(a)
            else:
                dtype = a

        def convert(array, kept_as):
            before = new = plain(array)
            if dtype is not None and np.issubdtype(new.dtype, np.floating):
                new = new.astype(dtype, copy=False)
            new = to_device(new, device) if device is not None else new
            if new is before:
                return array  # nothing to change: the very object stays (an optimiser holds it)
            return kept_as(Parameter(new, array.requires_grad) if isinstance(array, Parameter) else new)

        converted = {}  # shared (tied) arrays stay shared
        for module in self.modules():
            for table, kept_as in ((module._parameters, _as_parameter), (module._buffers, _as_buffer)):
                for name, array in table.items():
                    if array is not None:
                        if id(array) not in converted:
                            converted[id(array)] = convert(array, kept_as)
                        table[name] = converted[id(array)]
        return self

    def float(self):
        """Cast floating parameters and buffers to float32."""
        return self.to(np.float32)

    def half(self):
        """Cast floating parameters and buffers to float16."""
        return self.to(np.float16)

    def type(self, dst_type):
        """Cast floating parameters and buffers to `dst_type`."""
        return self.to(dst_type)

    def double(self):
        """Cast floating parameters and buffers to float64."""
        return self.to(np.float64)

    def cpu(self):
        """Move every array to the CPU (numpy)."""
        return self.to("cpu")

    def cuda(self, device=None):
        """Move every array to the GPU (cupy)."""
        return self.to("cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else str(device))

    # state dict

    def _state_entries(self, prefix=""):
        """(key, owner, table, name) for every saved array, in PyTorch's state_dict order."""
        entries = []
        for name, array in self._parameters.items():
            if array is not None:
                entries.append((prefix + name, self._parameters, name))
        for name, array in self._buffers.items():
            if array is not None and name not in self._non_persistent:
                entries.append((prefix + name, self._buffers, name))
        for name, module in self._modules.items():
            if module is not None:
                entries.extend(module._state_entries(prefix + name + "."))
        return entries

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """OrderedDict of dotted key → array (parameters and persistent buffers), PyTorch's keys.

        The arrays are the module's own (not copies), as PyTorch's tensors share storage; `keep_vars`
        is accepted for source compatibility and changes nothing.
        """
        out = OrderedDict() if destination is None else destination
        for key, table, name in self._state_entries(prefix):
            out[key] = table[name]
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (numpy, cupy or torch tensors) into this module's parameters and buffers.

        Values are copied in place, cast to each array's dtype (bfloat16 torch tensors too, as torch
        casts them), so optimisers holding the arrays see the new values. Everything is converted and
        checked before the first write: with a missing or unexpected key (when `strict`), a shape
        mismatch, or a value that is not an array or cannot be cast, an `AvalonError` names the keys
        and nothing is changed. Returns `(missing_keys, unexpected_keys)`.
        """
        if not isinstance(state_dict, Mapping):
            hint = ("load the file first: model.load_state_dict(avalon.load(path))"
                    if isinstance(state_dict, (str, bytes, os.PathLike)) else
                    "pass other_model.state_dict()" if isinstance(state_dict, Module) else
                    "pass a dict of dotted names to arrays, as model.state_dict() returns")
            raise AvalonError(f"{type(self).__name__}.load_state_dict got a {type(state_dict).__name__} "
                              f"({state_dict!r:.60}), not a state dict\n  at {user_location()}\n  fix: {hint}")
        entries = {key: (table, name) for key, table, name in self._state_entries()}
        missing = [k for k in entries if k not in state_dict]
        unexpected = [k for k in state_dict if k not in entries]
        values, problems = {}, []
        for key in entries:
            if key in state_dict:
                table, name = entries[key]
                value, problem = prepared(key, table[name], state_dict[key])
                if problem:
                    problems.append(problem)
                values[key] = value
        if strict and missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {', '.join(map(str, unexpected))}")  # an int key too
        if problems:
            where = user_location()  # the user's load_state_dict line
            raise AvalonError(f"cannot load the state_dict into {type(self).__name__} (nothing was "
                              "changed):\n  " + "\n  ".join(problems) + (f"\n  at {where}" if where else "") +
                              "\n  fix: load a checkpoint of the same architecture, or pass strict=False "
                              "to skip missing and unexpected keys")
        # a value sharing memory with another of the module's arrays (entries swapped, tied weights) is
        # copied first: writing in order would otherwise read arrays already overwritten
        owners = {id(root(table[name])): key for key, (table, name) in entries.items()}
        for key, value in values.items():
            if owners.get(id(root(value)), key) != key:
                values[key] = value.copy()
        for key, value in values.items():
            table, name = entries[key]
            if not copy_into(table[name], value):  # read-only: a copy takes its place
                keep = _as_parameter if isinstance(table[name], Parameter) else _as_buffer
                table[name] = keep(value.copy())
        return IncompatibleKeys(missing, unexpected)

    # printing

    def extra_repr(self):
        """The constructor arguments shown in the repr (`in_features=4, out_features=3, bias=True`)."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        children = [f"({name}): " + _indent(repr(module), 2) for name, module in self._modules.items()]
        if not children and len(lines) <= 1:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(lines + children)
        return f"{type(self).__name__}(\n  {body}\n)"

    def layer_name(self):
        """One-line description used in error messages: `Linear(in_features=4, out_features=3, bias=True)`."""
        return f"{type(self).__name__}({self.extra_repr()})"


def _indent(text, spaces):
    lines = text.split("\n")
    return "\n".join(lines[:1] + [" " * spaces + line for line in lines[1:]])


def shape_error(layer, expected, actual, why=""):
    """A `ShapeError` naming the layer, the expected and actual input shape and the user's line.

    `expected` is a readable pattern such as "(*, 4)" or "(N, 3, H, W)".
    """
    return input_error(layer.layer_name(), expected, actual, why)


def _run_module(module, *args, **kwargs):
    trace = current()
    if trace is not None:
        module = trace.view(module)  # traced code runs on this thread's view of the module: its tracers
    with scope(module):
        hooks = module.__dict__.get("_hooks")  # present only while the module has hooks
        if args and module._array_first and type(module).__module__.startswith("avalon.nn.modules."):
            array_input(module.layer_name(), args[0], floating=False)  # Avalon's layers compute on arrays
        try:
            return call_with_hooks(module, hooks, args, kwargs) if hooks else module.forward(*args, **kwargs)
        except TypeError as error:
            _refuse_arguments(module, args, kwargs, error)
            raise


def _refuse_arguments(module, args, kwargs, error):
    """An ArgumentError at the user's call when `forward` cannot take these arguments (Python's TypeError
    would name forward's binding, not the call); any other TypeError is left as it is."""
    try:
        inspect.signature(module.forward).bind(*args, **kwargs)
    except TypeError:
        raise ArgumentError(f"{module.layer_name()} cannot be called with {len(args)} positional argument(s)"
                            f"{' and ' + ', '.join(kwargs) if kwargs else ''}: {error}",
                            fix=f"call it as forward{inspect.signature(module.forward)} takes") from None
    except ValueError:  # no signature to compare with
        pass


# The Module as a holder of named arrays (see avalon.tree).

def _named_arrays(module):
    """Parameters, then buffers, then arrays kept in plain attributes (`self.src_mask = mask`, made in
    forward and reused): those are traced like buffers, read afresh at every call, and a forward that
    assigns one has it written back at every replay, as torch would leave it."""
    params, buffers, seen_params, seen_buffers = [], [], set(), set()
    for prefix, m in module.named_modules():
        for name, array in m._parameters.items():
            if array is not None and id(array) not in seen_params:
                seen_params.add(id(array))
                # A frozen parameter is traced as a buffer (no gradient); roles are part of the
                # cache key, so freezing one retraces.
                role = "param" if getattr(array, "requires_grad", True) else "buffer"
                params.append((f"{prefix}.{name}" if prefix else name, array, role))
        for name, array in m._buffers.items():
            if array is not None and id(array) not in seen_buffers:
                seen_buffers.add(id(array))
                buffers.append((f"{prefix}.{name}" if prefix else name, array, "buffer"))
        for name, value in m.__dict__.items():
            if (is_array(value) or isinstance(value, Tracer)) and id(value) not in seen_buffers:
                seen_buffers.add(id(value))
                buffers.append((f"{prefix}.{name}" if prefix else name, value, "buffer"))
    return params + buffers


def _view(module, view_of):
    """A copy of `module` with tables of its own (submodules: their views), sharing every value."""
    copy = object.__new__(type(module))
    copy.__dict__.update(module.__dict__)
    copy.__dict__.update(_parameters=OrderedDict(module._parameters), _buffers=OrderedDict(module._buffers),
                         _modules=OrderedDict((name, None if m is None else view_of(m))
                                              for name, m in module._modules.items()))
    return copy


def _locations(module):
    """id(array) → every (table, name) holding it: shared (tied) weights are set together."""
    where = {}
    for _, m in module.named_modules():
        for table in (m._parameters, m._buffers):
            for name, array in table.items():
                if array is not None:
                    where.setdefault(id(array), []).append((table, name))
    return where


def _assign(module, values):
    where, owners = _locations(module), {}
    for dotted in values:
        prefix, _, name = dotted.rpartition(".")
        owner = module.get_submodule(prefix)
        table = owner._parameters if name in owner._parameters else owner._buffers \
            if name in owner._buffers else owner.__dict__  # an array in a plain attribute
        owners[dotted] = (table, name, table.get(name))
    for dotted, value in values.items():
        table, name, old = owners[dotted]
        for t, n in where.get(id(old), [(table, name)]):
            t[n] = value


_INTERNAL = {"_parameters", "_buffers", "_modules", "_non_persistent"}


class _Static:
    """The static part of a module's cache key, hashed once (it is compared on every call)."""

    __slots__ = ("items", "_hash")

    def __init__(self, items):
        self.items = items
        self._hash = hash(items)

    def __eq__(self, other):
        return isinstance(other, _Static) and self._hash == other._hash and self.items == other.items

    def __hash__(self):
        return self._hash


def _static(module):
    # Attribute order is stable: assigning an existing attribute keeps its place in vars().
    return _Static(tuple((name, type(m), tuple(sorted(m._non_persistent)),
                          tuple((k, tree.static_key(v)) for k, v in vars(m).items()
                                if k not in _INTERNAL and not is_array(v) and not isinstance(v, Tracer)))
                         for name, m in module.named_modules()))


tree.register_holder(Module, named_arrays=_named_arrays, assign=_assign, static=_static,
                     named_parts=lambda module: list(module.named_modules())[1:], view=_view)
