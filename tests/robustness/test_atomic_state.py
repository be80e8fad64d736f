"""Operations that change user state either complete or change nothing: a failure injected at each point
of an optimiser step, a scheduler step, an optimiser's or a module's load_state_dict leaves every array
and counter bit-for-bit as it was, and the error says what, where, why and the fix."""
import copy
import math

import numpy as np
import pytest
import torch

import avalon
import avalon.nn as nn
import avalon.optim as optim
from avalon.optim import OptimizerError
from avalon.optim import lr_scheduler as sched

# Every optimiser, with options that give it state and exercise its branches (the first step creates
# state; the second updates state that exists).
OPTIMISERS = [
    (optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    (optim.SGD, dict(lr=0.1)),  # stateless
    (optim.Adam, dict(lr=0.01, amsgrad=True)),
    (optim.AdamW, dict(lr=0.01)),
    (optim.Adamax, dict(lr=0.01)),
    (optim.NAdam, dict(lr=0.01)),
    (optim.RAdam, dict(lr=0.01)),
    (optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
    (optim.Adagrad, dict(lr=0.01)),
    (optim.Adadelta, dict(lr=1.0)),
]
SHAPES = [(3, 2), (2,), (4, 3), (3,)]


class Injected(Exception):
    pass


def _params(rng):
    return [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]


def _grads(rng):
    return [rng.standard_normal(shape).astype(np.float32) for shape in SHAPES]


def _snapshot(opt, params):
    """Everything a step may change, as deep copies: the parameters, the state table, the groups."""
    state = {i: copy.deepcopy(opt.state.get(p)) for i, p in enumerate(params)}
    return [p.copy() for p in params], state, len(opt.state), copy.deepcopy(
        [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups])


def _assert_same(before, after):
    (params0, state0, count0, groups0), (params1, state1, count1, groups1) = before, after
    for a, b in zip(params0, params1):
        np.testing.assert_array_equal(a, b, strict=True)
    assert count0 == count1 and groups0 == groups1
    for i in state0:
        if state0[i] is None:
            assert state1[i] is None
            continue
        assert set(state0[i]) == set(state1[i])
        for key, value in state0[i].items():
            np.testing.assert_array_equal(np.asarray(value), np.asarray(state1[i][key]), strict=True)


def _fail_at(monkeypatch, opt, k):
    """Make the k-th `_update` of the next step raise after doing its work (the worst moment)."""
    calls = {"n": 0}
    real = type(opt)._update

    def update(self, *args):
        real(self, *args)
        calls["n"] += 1
        if calls["n"] == k:
            raise Injected(f"injected at update {k}")

    monkeypatch.setattr(type(opt), "_update", update)


@pytest.mark.parametrize("first_step", [True, False], ids=["first-step", "later-step"])
@pytest.mark.parametrize("cls, options", OPTIMISERS, ids=lambda x: getattr(x, "__name__", ""))
def test_a_step_failing_at_any_parameter_changes_nothing(cls, options, first_step, rng, monkeypatch):
    for k in range(1, len(SHAPES) + 1):
        params = _params(rng)
        opt = cls(params, **options)
        if not first_step:
            opt.step(_grads(rng))
        grads = _grads(rng)
        before = _snapshot(opt, params)
        with monkeypatch.context() as patch:
            _fail_at(patch, opt, k)
            with pytest.raises(Injected):
                opt.step(grads)
        _assert_same(before, _snapshot(opt, params))
        # and the optimiser still works: the same step now gives what a fresh copy gives
        twin = cls([p.copy() for p in before[0]], **options)
        if not first_step:
            twin.load_state_dict(opt.state_dict())
        opt.step(grads)
        twin.step(grads)
        for p, q in zip(params, twin.param_groups[0]["params"]):
            np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("cls, options", OPTIMISERS[:3], ids=lambda x: getattr(x, "__name__", ""))
def test_without_atomic_steps_the_update_is_the_same(cls, options, rng):
    params = _params(rng)
    plain, atomic = cls([p.copy() for p in params], **options), cls([p.copy() for p in params], **options)
    plain.atomic_steps = False
    for _ in range(3):
        grads = _grads(rng)
        plain.step(grads)
        atomic.step(grads)
    for p, q in zip(plain.param_groups[0]["params"], atomic.param_groups[0]["params"]):
        np.testing.assert_array_equal(p, q, strict=True)


@pytest.mark.parametrize("make_readonly", ["broadcast", "flag", "memmap"])
def test_a_read_only_parameter_is_refused_before_any_update(make_readonly, rng, tmp_path):
    params = _params(rng)
    if make_readonly == "broadcast":
        params[3] = np.broadcast_to(np.float32(0.5), (3,))
    elif make_readonly == "flag":
        params[3].flags.writeable = False
    else:
        path = tmp_path / "w.npy"
        np.save(path, params[3])
        params[3] = np.load(path, mmap_mode="r")
    named = dict(zip(["fc.weight", "fc.bias", "out.weight", "out.bias"], params))
    opt = optim.Adam(named, lr=0.1)
    before = _snapshot(opt, params)
    with pytest.raises(OptimizerError) as info:
        opt.step(dict(zip(named, _grads(rng))))
    message = str(info.value)
    assert "'out.bias' is read-only" in message and "nothing was changed" in message
    assert "why:" in message and "fix:" in message and "np.array" in message
    assert __file__ in message  # where: the user's line
    _assert_same(before, _snapshot(opt, params))


def test_nan_gradients_are_not_errors_and_propagate_as_in_torch(rng):
    params = _params(rng)
    grads = _grads(rng)
    grads[1][0] = np.nan
    opt = optim.SGD(params, lr=0.1)
    opt.step(grads)
    assert np.isnan(params[1][0]) and np.isfinite(params[1][1:]).all() and np.isfinite(params[0]).all()
