"""Running a function on tracers: `record` binds arguments, runs, and collects outputs and state.

Arguments are flattened through `avalon.tree`; each array leaf becomes an `Input` node (named after
the parameter, or by its dotted name inside a holder). The code receives a view of each holder with
tracers bound in (`binding`): the holder itself keeps its arrays. An array attribute that the call
replaced (a running statistic) becomes a *state output*: the replay writes its new value back into
the holder.
"""
import inspect
from dataclasses import dataclass, field

import numpy as np

from .. import tree
from ..backend import is_array
from ..tensor import wrap
from .context import Trace
from .source import user_location
from .tracer import Tracer


@dataclass
class Recording:
    """What one traced call produced: the tape and how to map arrays in and out of it."""

    tape: object
    trace: object
    spec: object  # structure of (args, kwargs), static values included
    leaves: list  # the argument arrays, in Input order
    holders: list
    result: object = None  # f's return value (tracers)
    out_spec: object = None
    out_nodes: list = field(default_factory=list)
    state: list = field(default_factory=list)  # [(holder index, name, node)]; captured holders after arguments'
    written: list = field(default_factory=list)  # [(leaf index, node)]: arguments written in place
    captured: list = field(default_factory=list)  # holders the code used without receiving them

    @property
    def all_holders(self):
        """Argument holders, then captured ones: what `state` indexes."""
        return self.holders + [c.obj for c in self.captured]


def argument_names(f, args, kwargs):
    """Parameter names for positional arguments (`x`, `W`, or `args[2]` for *args)."""
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    star = next((p.name for p in params if p.kind == p.VAR_POSITIONAL), "args")
    return [positional[i] if i < len(positional) else f"{star}[{i - len(positional)}]" for i in range(len(args))]


def record(f, args, kwargs=None, collect=False, then=None, trace=None, names=None):
    """Trace `f(*args, **kwargs)`. `then(recording)` runs inside the trace after f returns (grad uses it
    to append the backward pass) and may return extra output nodes. `trace` is the `Trace` to record
    into (a new one by default; `check` passes its own so the tape survives an error); `names` name
    the positional arguments (by default f's parameter names)."""
    kwargs = kwargs or {}
    trace = trace or Trace(collect)
    leaves, _, holders, spec = tree.flatten((tuple(args), dict(kwargs)))
    # Re-flatten per argument for readable names (`x`, `batch[0]`, `fc1.weight`).
    infos = []
    for name, value in list(zip(names or argument_names(f, args, kwargs), args)) + list(kwargs.items()):
        infos.extend(tree.flatten(value, name)[1])
    recording = Recording(trace.tape, trace, spec, leaves, holders)
    where = user_location(2)  # inputs arrive at the user's call
    with trace.active():
        tracers = [Tracer(trace.input(info.name, leaf, info.role, where), trace)
                   for leaf, info in zip(leaves, infos)]
        trace.writable = _writable(leaves, infos, tracers)
        bound = {}
        for obj in holders:
            for path, part in tree.holder_of(obj).named_parts(obj):
                trace.scope_names[id(part)] = path
        for obj in holders:  # an argument holder is the root scope, as its arrays' names have no prefix
            trace.scope_names.setdefault(id(obj), "")
        bindings = trace.bindings[0]

        def bind_holder(obj, values, roles):
            seen = bindings.bind(obj, values)  # its view: the user's object keeps its arrays
            bound[id(obj)] = values
            trace.name_view(seen, obj)
            return seen

        try:
            targs, tkwargs = tree.unflatten(spec, tracers, holders, bind_holder)
            recording.result = f(*targs, **tkwargs)
            recording.out_nodes, recording.out_spec = _outputs(trace, recording.result)
            extra = then(recording) if then is not None else []
            recording.captured = list(trace.captured)
            for c in recording.captured:
                bound[id(c.obj)] = c.tracers
            recording.state = _state_changes(trace, recording.all_holders, bound)
            inputs = trace.tape.inputs[:len(leaves)]
            recording.written = [(i, trace.written[node]._node) for i, node in enumerate(inputs)
                                 if node in trace.written]
        finally:
            bindings.release()
    trace.tape.outputs = recording.out_nodes + list(extra) + [node for _, _, node in recording.state] + \
        [node for _, node in recording.written]
    return recording


def _writable(leaves, infos, tracers):
    """The data inputs an in-place write may change (its new value is written back into the caller's
    array, as torch's `x.div_(255)` changes it): writeable numpy arrays sharing memory with no other
    argument (a write would have to change that one too)."""
    data = [(i, leaf, t._node) for i, (leaf, info, t) in enumerate(zip(leaves, infos, tracers))
            if info.role == "data" and isinstance(leaf, np.ndarray)]
    return {node for i, leaf, node in data if leaf.flags.writeable and
            not any(j != i and np.may_share_memory(leaf, other) for j, other, _ in data)}


def write_back(entry, holders, leaves, values):
    """After a call (traced or replayed): holder state (`entry.state`) and arguments the code wrote
    into in place (`entry.written`) get their new values, `values` being the call's outputs after its
    results."""
    if entry.state:
        write_state(holders, entry.state, values)
    for (index, _), value in zip(entry.written, values[len(entry.state):]):
        leaves[index][...] = value


def _outputs(trace, result):
    leaves, _, _, spec = tree.flatten(result)
    nodes = [leaf._node if isinstance(leaf, Tracer) else trace.const(leaf) for leaf in leaves]
    return nodes, spec


def _state_changes(trace, holders, bound):
    changes = []
    for index, obj in enumerate(holders):
        before = bound.get(id(obj), {})
        seen = trace.view(obj)  # what the code changed is in the holder it saw
        for name, value, _ in tree.holder_of(seen).named_arrays(seen):
            if value is before.get(name):
                continue
            if isinstance(value, Tracer):
                changes.append((index, name, value._node))
            elif is_array(value):
                changes.append((index, name, trace.const(value)))
    return changes


def write_state(holders, state, values):
    """Store new state values into their holders (in place when the array can take them)."""
    for (index, name, _), value in zip(state, values):
        obj = holders[index]
        spec = tree.holder_of(obj)
        current = dict((n, a) for n, a, _ in spec.named_arrays(obj)).get(name)
        if is_array(current) and getattr(current, "shape", None) == value.shape and \
                current.dtype == value.dtype and getattr(current, "flags", None) is not None \
                and current.flags.writeable:
            current[...] = value
        else:
            spec.assign(obj, {name: wrap(value)})  # what the user finds there is a Tensor
