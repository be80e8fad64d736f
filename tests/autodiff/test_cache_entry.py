"""What a cached entry keeps alive once compiled: the generated function, its constants and its
workspaces, never the tapes or the values seen while tracing (found by walking the entry's
references, as the garbage collector does)."""
import gc
import types

import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
from avalon.autodiff import cache
from avalon.tape import Node, Tape

SCALE = np.linspace(0.5, 1.5, 8).astype(np.float32)  # a captured global: a constant replay needs


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.bn = nn.BatchNorm1d(8)  # running statistics: state outputs written back

    def forward(self, x):
        big = np.ones((64, 8), dtype=np.float32)  # a temporary made while tracing
        return self.bn(self.fc(x) * SCALE + big[: x.shape[0]])


def reachable(root, stop):
    """(arrays, other objects) reachable from `root`, not descending into `stop` (the user's holders),
    modules, classes, or functions other than generated code (a primitive's globals are its module)."""
    seen, arrays, objects, stack = set(), [], [], [root]
    stop = {id(s) for s in stop}
    while stack:
        o = stack.pop()
        if id(o) in seen or id(o) in stop or isinstance(o, (type, types.ModuleType, types.BuiltinFunctionType)):
            continue
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            arrays.append(o)
        elif isinstance(o, types.FunctionType):
            generated = o.__code__.co_filename.startswith("<avalon replay")
            stack += [*(o.__closure__ or ()), *(o.__defaults__ or ()), *([o.__globals__] if generated else [])]
            continue
        else:
            objects.append(o)
        stack.extend(gc.get_referents(o))
    return arrays, objects


def generated(fn):
    """The generated replay inside `fn` (itself, or the one a workspace pool wraps)."""
    while not fn.__code__.co_filename.startswith("<avalon replay"):
        fn = next(c.cell_contents for c in fn.__closure__ if isinstance(c.cell_contents, types.FunctionType))
    return fn


def owner(a):
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def check_entry_keeps_only_replay_needs(entry, holders):
    # The guards hold what they check (the module globals a trace read, copies of the arrays among
    # them): checked apart below.
    arrays, objects = reachable(entry, [*holders, entry.guards])
    snapshots = [c.snapshot for c in entry.guards.checks if hasattr(c, "snapshot")]
    assert sum(a.nbytes for a in snapshots) == SCALE.nbytes  # the one global array read: SCALE
    assert not [o for o in objects if isinstance(o, (Node, Tape))], "the entry keeps a tape or its nodes"
    env = generated(entry.replay).__globals__
    constants = {id(owner(v)) for v in env.values() if isinstance(v, np.ndarray)}
    buffers = {id(owner(b)) for ws in getattr(entry.replay, "workspaces", ()) for b in ws}
    strays = [(a.shape, a.dtype) for a in arrays if id(owner(a)) not in constants | buffers]
    assert not strays, f"the entry keeps arrays that are neither constants nor workspaces: {strays}"
    kept = sum(owner(a).nbytes for a in arrays if id(owner(a)) in constants)
    assert kept <= SCALE.nbytes + 2 * 16 * 8 * 4  # not the whole of `big`: a folded slice of it is a copy


@pytest.fixture
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_a_grad_entry_keeps_no_traced_values(fresh_cache, rng):
    model, x = Net(), rng.standard_normal((16, 8)).astype(np.float32)
    loss_fn = lambda model, x: (model(x) ** 2).mean()  # noqa: E731
    first, _ = avalon.grad(loss_fn, model, x)
    gc.collect()
    (entry,) = cache._entries.values()
    check_entry_keeps_only_replay_needs(entry, [model])
    before = model.bn.running_mean.copy()
    again, _ = avalon.grad(loss_fn, model, x)  # the entry still replays, and state is still written back
    assert again == first and not np.allclose(model.bn.running_mean, before)


def test_a_call_entry_keeps_no_traced_values(fresh_cache, rng):
    model, x = Net(), rng.standard_normal((16, 8)).astype(np.float32)
    before = model.bn.running_mean.copy()
    model(x)
    gc.collect()
    (entry,) = cache._entries.values()
    check_entry_keeps_only_replay_needs(entry, [model])
    model(x)
    assert not np.allclose(model.bn.running_mean, before)
