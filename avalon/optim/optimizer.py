"""`Optimizer`: parameter groups, per-parameter state, torch-layout state dicts, and an atomic `step(grads)`.

Avalon's gradients are returned, not stored on the parameters, so `step` takes them as an argument:

>>> loss, grads = avalon.grad(loss_fn, model, x, y)
>>> opt.step(grads[0])          # a Grads (matched to parameters by identity)
>>> opt.step([gW, gb])          # or arrays in parameter order, or a dict name -> array

A step first matches and checks every gradient (and converts it to its parameter's dtype) and checks
that every parameter and state array it will write is writeable; only then does it update the parameter
arrays the model owns, and the optimiser's state, in place. What can still fail after the checks (an
exception inside an update rule, a MemoryError) is undone: each parameter and its state are saved just
before their update (`StepUndo`) and put back, so a step that fails changes nothing. Saving costs one
read and write of each array per step, so it is done only where a failure is possible: Avalon's own
update rules, once every state array and scratch buffer exists, write through preallocated arrays with
`out=` and cannot fail, and a Ctrl-C arriving during them is held until the step is complete; a step
of theirs that creates state (the first) allocates it before writing anything (`Reserve`), and update
rules written elsewhere (a subclass's own `_update`) run under `StepUndo`. `atomic_steps = False` (on a
class or an optimiser) never saves.

Subclasses implement `_update(param, grad, state, group, temps)`, which writes into `param` and the
arrays of `state` with numpy's `out=` and in-place operators, using the scratch arrays `temps` for
intermediate values, so that a step allocates nothing after the first. In-place updates need `out=`:
optimisers take numpy and cupy arrays.
"""
import copy
import contextlib
import signal
import threading

import numpy as np

from ..backend import device_of, is_array, is_numpy_like, namespace
from ..errors import AvalonError, _where
from ..kernels.onednn import gemm
from ..tracing import user_location
from ..tree import Grads
from ._inplace import Reserve, Scratch, effective_grad, needs_space, own_grad, root
from ._undo import StepUndo


class OptimizerError(AvalonError, ValueError):
    """An optimiser was built, stepped or loaded with something it cannot use."""

    def __init__(self, what, why=None, fix=None):
        lines = [what, *_where(user_location())]
        if why:
            lines.append(f"  why: {why}")
        if fix:
            lines.append(f"  fix: {fix}")
        super().__init__("\n".join(lines))


class ParamState:
    """Per-parameter state, keyed by the parameter array itself (arrays are not hashable, so by identity).

    >>> opt.state[model.fc.weight]["exp_avg"]
    """

    def __init__(self):
        self._entries = {}  # id(param) -> (param, state dict)

    def __getitem__(self, param):
        return self._entries[id(param)][1]

    def get(self, param, default=None):
        """The state of `param`, or `default` before its first step."""
        entry = self._entries.get(id(param))
        return default if entry is None else entry[1]

    def __setitem__(self, param, state):
        self._entries[id(param)] = (param, state)

    def __contains__(self, param):
        return id(param) in self._entries

    def discard(self, param):
        """Forget the state of `param` (a failed first step undoing what it created)."""
        self._entries.pop(id(param), None)

    def replace(self, entries):
        """Swap in a whole new table {id(param): (param, state)} (loading a state dict)."""
        self._entries = dict(entries)

    def __len__(self):
        return len(self._entries)

    def __iter__(self):
        return (param for param, _ in self._entries.values())

    def items(self):
        """[(parameter array, state dict)] for every parameter that has state."""
        return list(self._entries.values())

    def __repr__(self):
        return f"ParamState({len(self)} parameters)"


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()

# Keys a scheduler or the user may add to a group; every other option must be one of the defaults.
_GROUP_EXTRAS = ("params", "param_names", "initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")


class Optimizer:
    """Base class of the optimisers: `param_groups`, `state`, `defaults`, `step(grads)`, state dicts.

    `params` is an iterable of arrays, of (name, array) pairs (`model.named_parameters()`), of
    parameter-group dicts (`{"params": [...], "lr": 0.1}`, options per group), or a dict
    name -> array. Names let `step` take a dict of gradients.

    >>> opt = avalon.optim.SGD([{"params": model.fc1.parameters()},
    ...                         {"params": model.fc2.parameters(), "lr": 1e-3}], lr=1e-2, momentum=0.9)
    """

    # The state keys this optimiser keeps per parameter (checked when loading a state dict).
    _state_keys = ()
    # The options that must be >= 0, checked in this order whenever a group is added or loaded.
    _nonnegative = ("lr",)
    # How many scratch arrays shaped like a parameter `_update` needs.
    _temporaries = 1
    # Save what each update changes so that a step failing half-way is undone (see the module docstring).
    atomic_steps = True

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = ParamState()
        self._scratch = Scratch()
        self.param_groups = []
        if is_array(params):
            raise OptimizerError(f"{type(self).__name__} was given one array as `params`",
                                 "params is a collection of arrays", "wrap it in a list: [array]")
        if isinstance(params, dict) and "params" not in params:
            params = list(params.items())
        if callable(getattr(params, "parameters", None)):
            raise OptimizerError(f"{type(self).__name__} was given the model ({type(params).__name__}) as `params`",
                                 "an optimiser updates a collection of arrays", "pass model.parameters()")
        if not hasattr(params, "__iter__"):
            raise OptimizerError(f"{type(self).__name__} was given a {type(params).__name__} as `params`",
                                 "params is a collection of arrays", "pass model.parameters()")
        groups = list(params)
        if not groups:
            raise OptimizerError(f"{type(self).__name__} got an empty parameter list",
                                 fix="pass model.parameters() of a model that has parameters")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a group of parameters with its own options (missing options take the defaults).

        >>> opt.add_param_group({"params": head.parameters(), "lr": 1e-4})
        """
        if not isinstance(param_group, dict):
            raise OptimizerError(f"a parameter group must be a dict, got {type(param_group).__name__}",
                                 fix='pass {"params": [arrays...], "lr": ...}')
        group = dict(param_group)
        params, names = _split_names(group.get("params"))
        group["params"] = params
        if names is not None:
            group["param_names"] = names
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise OptimizerError(f"parameter group has no value for the required option {key!r}")
            group.setdefault(key, default)
        unknown = sorted(k for k in group if k not in self.defaults and k not in _GROUP_EXTRAS)
        if unknown:
            raise OptimizerError(f"{type(self).__name__} has no option {', '.join(map(repr, unknown))}",
                                 fix=f"options are {sorted(self.defaults)}")
        self._validate(group)
        ids = {id(p) for p in params}
        if len(ids) != len(params):
            raise OptimizerError("a parameter group lists the same array twice", fix="list each parameter once")
        for other in self.param_groups:
            if ids & {id(p) for p in other["params"]}:
                raise OptimizerError("some parameters appear in more than one parameter group",
                                     fix="put each parameter in exactly one group")
            if ("param_names" in other) != ("param_names" in group):
                raise OptimizerError("all parameter groups must be given with names or all without",
                                     fix="use named_parameters() for every group, or parameters() for every group")
        self.param_groups.append(group)

    def _validate(self, group):
        """Raise an OptimizerError when a group's options are out of range: the `_nonnegative` ones and,
        where the optimiser has them, `betas` (subclasses with other constraints extend this)."""
        for key in self._nonnegative:
            try:  # a number or a 0-d array (a tensor lr), not a string that Python would compare
                valid = not isinstance(group[key], (bool, str)) and bool(group[key] >= 0.0)
            except (TypeError, ValueError):
                valid = False
            if not valid:
                raise OptimizerError(f"invalid {key}: {group[key]!r} (must be a number >= 0.0)",
                                     fix=f"pass {key} as a number >= 0 (e.g. {key}=0.01)")
        if "betas" in self.defaults:
            _betas(group)

    # stepping

    def step(self, grads=None):
        """Update every parameter that has a gradient, in place.

        `grads` is a `Grads` (from `avalon.grad`: matched to parameters by identity), a list or tuple
        of arrays in parameter order (None skips a parameter), or a dict name -> array (the optimiser
        must have been built from named parameters). Parameters without a gradient are left alone,
        as in PyTorch. Bad gradients (wrong shape, not arrays, on another device) and read-only
        parameters raise an OptimizerError before anything changes; NaN and inf in gradients are not
        errors (they propagate, as in PyTorch). A step interrupted by any exception is undone.
        """
        if grads is None:  # torch's opt.step() after loss.backward()
            raise OptimizerError(f"{type(self).__name__}.step() needs the gradients: Avalon does not store them "
                                 "on the parameters", "gradients are functional (avalon.grad returns them)",
                                 "loss, grads = avalon.grad(loss_fn, model, x, y); opt.step(grads[0])")
        work = self._match(grads)
        self._check_writeable(work)
        roots = {id(root(param)) for _, param, _ in work}
        work = [(group, param, own_grad(param, grad, roots)) for group, param, grad in work]
        undo = reserve = None
        if self.atomic_steps and not self._cannot_fail(work):
            reserve = self._reserve(work)
            undo = self._undo() if reserve is None else None
        if undo is not None:
            undo.begin(work, self.state)
        try:
            with np.errstate(all="ignore"), _interrupts_held(), gemm.holding_numpy_blas(), \
                    reserve.handing_out() if reserve is not None else contextlib.nullcontext():
                for group, param, grad in work:
                    state = self.state.get(param, {})
                    if undo is not None:
                        undo.save(param, state, self.state)
                    spaces = self._scratch.take(param, self._scratch_count(param, grad, group))
                    grad_space = spaces.pop() if len(spaces) > self._temporaries else None
                    self._update(param, effective_grad(param, grad, group, grad_space), state, group, spaces)
                    if state:  # stateless updates (SGD without momentum) keep no entry, as in PyTorch
                        self.state[param] = state
        except BaseException:
            if undo is not None:
                undo.restore(self.state)
            raise
        if undo is not None:
            undo.end()
        self._flags_at_last_step = self._buffer_flags()
        if undo is not None and self._cannot_fail(work):  # the next steps are not saved: nor is the
            del self._step_undo  # memory for their copies kept (a model's size, the first step's)

    def _cannot_fail(self, work):
        """True when this step's updates cannot raise: the update rule is Avalon's own (not a subclass's
        or a patched one), every parameter already has its state, and the scratch memory is allocated."""
        if not self._built_in_update():
            return False
        if any(self.state.get(param) is None and self._keeps_state(group) for group, param, _ in work):
            return False
        if self._buffer_flags() != self.__dict__.get("_flags_at_last_step"):
            return False  # a state array may be created in this step (amsgrad or momentum turned on)
        for group, param, grad in work:  # grows the scratch buffers now, where a MemoryError changes nothing
            self._scratch.take(param, self._scratch_count(param, grad, group))
        return True

    def _built_in_update(self):
        update = type(self)._update
        return getattr(update, "__module__", "").rsplit(".", 1)[0] == __package__ and \
            update.__qualname__.split(".")[0] in _BUILT_IN

    def _reserve(self, work):
        """For Avalon's own update rules, a step that creates state made unable to fail without saving
        anything: the state arrays its updates will create and the scratch memory, allocated now, where a
        MemoryError changes nothing (a `Reserve`; None for other rules, which run under `StepUndo`).
        Saving would keep a copy of every parameter during the step: a model's size more memory."""
        if not self._built_in_update():
            return None
        reserve = Reserve()
        for group, param, grad in work:
            self._scratch.take(param, self._scratch_count(param, grad, group))
            reserve.add(param, self._new_state_arrays(param, group))
        return reserve

    def _new_state_arrays(self, param, group):
        """How many state arrays the next update of `param` creates, counted by running the update rule
        on one-element stand-ins (the options decide which arrays a rule keeps, not the values)."""
        xp, one = namespace(param), (1,) * param.ndim
        before = self.state.get(param, {})
        state = {k: xp.zeros(one, dtype=v.dtype) if is_array(v) else v for k, v in before.items()}
        arrays = sum(is_array(v) for v in state.values())
        stand_in = xp.zeros(one, dtype=param.dtype)
        temps = [xp.zeros(one, dtype=param.dtype) for _ in range(self._temporaries)]
        with np.errstate(all="ignore"):
            self._update(stand_in, xp.zeros(one, dtype=param.dtype), state, group, temps)
        return sum(is_array(v) for v in state.values()) - arrays

    def _scratch_count(self, param, grad, group):
        """How many scratch arrays shaped like `param` its update takes: `_temporaries`, and one more
        where the gradient the rule sees is not `grad` itself (`needs_space`)."""
        return self._temporaries + needs_space(param, grad, group)

    def _buffer_flags(self):
        """The options that decide which state arrays an update creates, per group."""
        return [(g.get("amsgrad"), g.get("centered"), g.get("momentum", 0) > 0) for g in self.param_groups]

    def _keeps_state(self, group):
        """Whether an update with these options keeps per-parameter state (only plain SGD does not)."""
        return bool(self._state_keys) and not (self._state_keys == ("momentum_buffer",) and
                                               group.get("momentum", 0) == 0)

    def _undo(self):
        undo = self.__dict__.get("_step_undo")
        if undo is None:  # made at the first step: subclasses may build their state without __init__
            undo = self._step_undo = StepUndo()
        return undo

    def _check_writeable(self, work):
        """Raise an OptimizerError, before anything is written, for a parameter or state array the step
        would have to write but cannot (a broadcast view, a read-only memory map, a frozen copy)."""
        for _, param, _ in work:
            arrays = [("", param)] + [(f" (its optimiser state {k!r})", v)
                                      for k, v in self.state.get(param, {}).items() if is_array(v)]
            for what, array in arrays:
                flags = getattr(array, "flags", None)
                if flags is not None and not getattr(flags, "writeable", True):
                    raise OptimizerError(
                        f"{self._name_of(param)}{what} is read-only, so step() cannot update it in place "
                        "(nothing was changed)",
                        "it is a broadcast view (np.broadcast_to), a read-only memory map or an array marked "
                        "read-only; optimisers write into the arrays the model owns",
                        "give the model a writeable copy (np.array(value), or model.load_state_dict(...), "
                        "which copies into the model's own arrays) and build the optimiser after that")

    def zero_grad(self, set_to_none=True):
        """Nothing to clear: `avalon.grad` returns fresh gradients at every call instead of
        accumulating them on the parameters, and `step` takes them as its argument. Exists so that
        ported PyTorch training loops (`opt.zero_grad(); ...; opt.step(...)`) run unchanged; it
        changes neither the parameters nor the optimiser's state."""

    def _update(self, param, grad, state, group, temps):
        """Update `param` and the arrays of `state` in place from `grad` (read only), using the scratch
        arrays `temps` (`_temporaries` of them, shaped like `param`) for intermediate values."""
        raise NotImplementedError

    def _match(self, grads):
        """[(group, param, grad)] for every parameter with a gradient, all checked."""
        if isinstance(grads, Grads):
            work = [(g, p, grads.of(p)) for g in self.param_groups for p in g["params"]]
            work = [w for w in work if w[2] is not None]
            if not work and len(grads):
                raise OptimizerError(
                    "none of the optimiser's parameters have a gradient in these Grads",
                    "Grads match parameters by identity, and these gradients belong to other arrays",
                    "pass the gradients of the model the optimiser was built from, and build the optimiser "
                    "after anything that replaces the model's arrays (model.to(...))")
        elif isinstance(grads, (list, tuple)):
            work = self._match_sequence(grads)
        elif isinstance(grads, dict):
            work = self._match_names(grads)
        else:
            raise OptimizerError(f"step() cannot use gradients of type {type(grads).__name__}",
                                 fix="pass grads[0] from `loss, grads = avalon.grad(loss_fn, model, x, y)`, "
                                     "a list of arrays in parameter order, or a dict name -> array")
        for _, param, grad in work:
            self._check_grad(param, grad)
        return work

    def _match_sequence(self, grads):
        pairs = [(g, p) for g in self.param_groups for p in g["params"]]
        if any(isinstance(x, (Grads, list, tuple, dict)) for x in grads):
            raise OptimizerError("step() was given a sequence of gradient containers",
                                 "avalon.grad returns one gradient per argument of the loss function",
                                 "pass the model's entry: opt.step(grads[0])")
        if len(grads) != len(pairs):
            raise OptimizerError(f"step() got {len(grads)} gradients for {len(pairs)} parameters",
                                 fix="pass one gradient (or None) per parameter, in parameter order")
        return [(g, p, x) for (g, p), x in zip(pairs, grads) if x is not None]

    def _match_names(self, grads):
        if any("param_names" not in g for g in self.param_groups):
            raise OptimizerError("step() got a dict of gradients but the parameters have no names",
                                 fix="build the optimiser from model.named_parameters() (or a dict name -> "
                                     "array), or pass grads[0] from avalon.grad")
        work, known = [], set()
        for group in self.param_groups:
            for name, param in zip(group["param_names"], group["params"]):
                known.add(name)
                if grads.get(name) is not None:
                    work.append((group, param, grads[name]))
        unknown = sorted(set(grads) - known)
        if unknown:
            raise OptimizerError(f"step() got gradients for unknown parameters {unknown}",
                                 fix=f"names are {sorted(known)}")
        return work

    def _check_grad(self, param, grad):
        if not is_array(grad):
            raise OptimizerError(f"the gradient of {self._name_of(param)} is a {type(grad).__name__}, "
                                 "not an array", "step() runs outside traced code, on computed gradients",
                                 "pass the arrays avalon.grad returned")
        if tuple(grad.shape) != tuple(param.shape):
            raise OptimizerError(f"the gradient of {self._name_of(param)} has shape {tuple(grad.shape)} but the "
                                 f"parameter has shape {tuple(param.shape)}",
                                 fix="pass gradients in the same order and of the same shapes as the parameters")
        if not np.issubdtype(np.dtype(grad.dtype), np.inexact):
            raise OptimizerError(f"the gradient of {self._name_of(param)} has dtype {grad.dtype}, "
                                 "not a floating dtype")
        if np.iscomplexobj(grad) and not np.iscomplexobj(param):
            raise OptimizerError(f"the gradient of {self._name_of(param)} is complex ({grad.dtype}) but the "
                                 f"parameter is real ({param.dtype})", "casting would drop the imaginary part",
                                 "differentiate a real loss of real parameters")
        if device_of(grad) != device_of(param):
            raise OptimizerError(f"the gradient of {self._name_of(param)} is on {device_of(grad)} but the "
                                 f"parameter on {device_of(param)}",
                                 fix="compute the gradients with the model on the device its parameters are on")

    def _name_of(self, param):
        for i, group in enumerate(self.param_groups):
            for j, p in enumerate(group["params"]):
                if p is param:
                    if "param_names" in group:
                        return repr(group["param_names"][j])
                    return f"parameter {j} of group {i} (shape {tuple(param.shape)})"
        return "a parameter"

    # state dicts

    def state_dict(self):
        """The optimiser's state in PyTorch's layout, as copies.

        `{'state': {index: {'step': ..., 'exp_avg': array, ...}}, 'param_groups': [{options..., 'params':
        [indices]}]}`; parameters are numbered in group order. Save it with `avalon.save`.
        """
        index, groups = {}, []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {index[id(p)]: {k: _copy_value(v) for k, v in s.items()} for p, s in self.state.items()
                 if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore options and state saved by `state_dict` (also PyTorch's, with tensors converted).

        Everything is checked first (number and sizes of groups, state shapes, option values): on a
        mismatch an OptimizerError is raised and nothing changes.
        """
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise OptimizerError("an optimiser state dict has exactly the keys 'state' and 'param_groups'",
                                 fix="pass what optimizer.state_dict() returned")
        saved_groups = state_dict["param_groups"]
        if not isinstance(saved_groups, (list, tuple)) or len(saved_groups) != len(self.param_groups):
            count = len(saved_groups) if isinstance(saved_groups, (list, tuple)) else "no"
            raise OptimizerError(f"the state dict has {count} parameter groups, the optimiser "
                                 f"{len(self.param_groups)}", fix="load it into an optimiser built the same way")
        id_map, new_groups = {}, []
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if not isinstance(saved, dict) or not isinstance(saved.get("params"), (list, tuple)):
                raise OptimizerError(f"parameter group {i} of the state dict has no 'params' list")
            if len(saved["params"]) != len(group["params"]):
                raise OptimizerError(f"parameter group {i} has {len(saved['params'])} parameters in the state "
                                     f"dict and {len(group['params'])} in the optimiser",
                                     fix="load it into an optimiser over the same parameters")
            id_map.update(zip(saved["params"], group["params"]))
            new_group = {k: _option(_plain(v)) for k, v in saved.items() if k != "params"}
            new_group["params"] = group["params"]
            if "param_names" in group:
                new_group.setdefault("param_names", group["param_names"])
            for key, default in self.defaults.items():
                new_group.setdefault(key, group.get(key, default))
            for key in [k for k in new_group if k not in self.defaults and k not in _GROUP_EXTRAS]:
                del new_group[key]  # PyTorch-only flags (foreach, fused, capturable, differentiable)
            self._validate(new_group)
            new_groups.append(new_group)
        saved_state = state_dict["state"]
        if not isinstance(saved_state, dict):
            raise OptimizerError("the 'state' of an optimiser state dict must be a dict index -> state")
        new_state = {}
        for key, entry in saved_state.items():
            param = id_map.get(key)
            if param is None:
                raise OptimizerError(f"the state dict has state for parameter {key!r}, which no group lists")
            new_state[id(param)] = (param, self._load_entry(param, key, entry))
        self.param_groups[:] = new_groups
        self.state.replace(new_state)
        self._flags_at_last_step = None  # the loaded state may lack arrays the next step creates

    def _load_entry(self, param, key, entry):
        if not isinstance(entry, dict):
            raise OptimizerError(f"the state of parameter {key} must be a dict")
        unknown = sorted(set(entry) - set(self._state_keys))
        if unknown:
            raise OptimizerError(f"the state of parameter {key} has keys {unknown} that "
                                 f"{type(self).__name__} does not keep",
                                 "the state dict was saved by another kind of optimiser",
                                 f"load it into the optimiser that saved it ({type(self).__name__} keeps "
                                 f"{list(self._state_keys)})")
        xp, out = namespace(param), {}
        for name, value in entry.items():
            value = _plain(value)
            if is_array(value) and np.ndim(value) > 0:
                if tuple(value.shape) != tuple(param.shape):
                    raise OptimizerError(f"the state {name!r} of parameter {key} has shape {tuple(value.shape)}, "
                                         f"the parameter {tuple(param.shape)}",
                                         fix="load it into an optimiser over parameters of the same shapes")
                try:
                    value = xp.asarray(value, dtype=param.dtype).copy()
                except (TypeError, ValueError) as e:
                    raise OptimizerError(f"the state {name!r} of parameter {key} has dtype {value.dtype}, which "
                                         f"cannot be cast to the parameter's {param.dtype} ({e}); nothing was "
                                         "changed", fix="pass what optimizer.state_dict() returned") from None
            elif is_array(value):
                value = value.item()
            if value is not None and not is_array(value) and not isinstance(value, (int, float)):
                raise OptimizerError(f"the state {name!r} of parameter {key} is a {type(value).__name__}, "
                                     "not a number or an array", fix="pass what optimizer.state_dict() returned")
            out[name] = value
        return out

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k not in ("params", "param_names")):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


# Avalon's optimisers, whose update rules cannot fail once their state and scratch exist.
_BUILT_IN = frozenset({"SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta"})


@contextlib.contextmanager
def _interrupts_held():
    """Hold a Ctrl-C (SIGINT) until the block is done, then raise it: an update interrupted half-way would
    leave some parameters stepped and others not. Only the main thread receives signals; elsewhere, and
    when the program has its own SIGINT handler, this does nothing."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    received = []
    signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if received:
            raise KeyboardInterrupt


def _split_names(params):
    """(arrays, names or None) from arrays, (name, array) pairs or one array."""
    if params is None:
        raise OptimizerError("a parameter group needs a 'params' entry")
    if is_array(params):
        params = [params]
    elif isinstance(params, (set, frozenset)):
        raise OptimizerError("parameters were given as a set, whose order changes between runs",
                             fix="pass a list (model.parameters() is ordered)")
    elif isinstance(params, dict):
        params = list(params.items())
    params = list(params)
    named = [isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in params]
    if any(named) and not all(named):
        raise OptimizerError("some parameters have names and some do not", fix="name all or none")
    names = [p[0] for p in params] if params and all(named) else None
    arrays = [p[1] for p in params] if names is not None else params
    for p in arrays:
        if not is_array(p):
            hint = "pass model.parameters()" if hasattr(p, "parameters") else "pass arrays"
            raise OptimizerError(f"optimisers update arrays, but one of the parameters is a {type(p).__name__}",
                                 fix=hint)
        if not is_numpy_like(namespace(p)):
            raise OptimizerError(f"a parameter is a {type(p).__module__}.{type(p).__name__}; optimisers update "
                                 "numpy and cupy arrays", "steps are written in place with numpy's `out=`",
                                 "optimise numpy (or cupy) arrays")
        if not np.issubdtype(np.dtype(p.dtype), np.inexact):
            raise OptimizerError(f"a parameter has dtype {p.dtype}; only floating arrays can be optimised")
    return arrays, names


def _plain(value):
    """Torch tensors (state dicts saved by PyTorch) become numpy arrays; everything else is copied."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    return copy.deepcopy(value)


def _option(value):
    return value.item() if is_array(value) and np.ndim(value) == 0 else value


def _copy_value(value):
    return value.copy() if is_array(value) else copy.deepcopy(value)


def _betas(group):
    betas = group["betas"]
    if len(betas) != 2:
        raise OptimizerError(f"betas must be a pair, got {betas!r}", fix="pass betas=(0.9, 0.999)")
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise OptimizerError(f"invalid beta parameter at index {i}: {beta} (must be in [0, 1))",
                                 fix="pass betas=(0.9, 0.999), each in [0, 1)")
