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


@pytest.mark.parametrize("cls, options", OPTIMISERS, ids=lambda x: getattr(x, "__name__", ""))
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


def test_only_steps_that_can_fail_pay_for_saving(rng, monkeypatch):
    saves = []
    real = optim.optimizer.StepUndo.save
    monkeypatch.setattr(optim.optimizer.StepUndo, "save", lambda self, *a: saves.append(1) or real(self, *a))
    opt = optim.RMSprop(_params(rng), lr=0.01)
    opt.step(_grads(rng))  # the first step's state is allocated before any write (a Reserve): not saved
    opt.step(_grads(rng))  # Avalon's own rule over existing state and scratch cannot fail: not saved
    opt.param_groups[0]["momentum"] = 0.9  # the next step creates momentum buffers: reserved first
    opt.step(_grads(rng))
    assert not saves and set(opt.state[opt.param_groups[0]["params"][0]]) >= {"momentum_buffer"}

    class Mine(optim.SGD):  # an update rule Avalon does not know always runs under StepUndo
        def _update(self, param, grad, state, group, temps):
            super()._update(param, grad, state, group, temps)

    mine = Mine(_params(rng), lr=0.1, momentum=0.9)
    mine.step(_grads(rng))
    mine.step(_grads(rng))
    assert len(saves) == 2 * len(SHAPES)


@pytest.mark.parametrize("cls, options", OPTIMISERS, ids=lambda x: getattr(x, "__name__", ""))
def test_a_memory_error_while_reserving_a_first_steps_state_changes_nothing(cls, options, rng, monkeypatch):
    # Avalon's own rules allocate the state a step creates before writing anything (no undo copies):
    # running out of memory at any of those allocations leaves everything as it was.
    reserving = optim._inplace.Reserve.add
    for k in range(1, len(SHAPES) + 1):
        params = _params(rng)
        opt = cls(params, **options)
        grads = _grads(rng)
        before = _snapshot(opt, params)
        calls = {"n": 0}

        def add(self, param, count):
            calls["n"] += 1
            if calls["n"] == k:
                raise MemoryError("injected")
            reserving(self, param, count)

        with monkeypatch.context() as patch:
            patch.setattr(optim._inplace.Reserve, "add", add)
            with pytest.raises(MemoryError):
                opt.step(grads)
        _assert_same(before, _snapshot(opt, params))
        opt.step(grads)  # and a step after it is the first step a fresh optimiser takes
        twin = cls([p.copy() for p in before[0]], **options)
        twin.step(grads)
        for p, q in zip(params, twin.param_groups[0]["params"]):
            np.testing.assert_array_equal(p, q, strict=True)


def test_a_ctrl_c_during_the_updates_is_held_until_the_step_is_complete():
    import os
    import signal

    done = []
    with pytest.raises(KeyboardInterrupt):
        with optim.optimizer._interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("after the signal")  # still runs: the interrupt waits for the block's end
    assert done == ["after the signal"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


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


def test_a_complex_gradient_of_a_real_parameter_is_refused_before_any_update(rng):
    params = _params(rng)
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    grads = _grads(rng)
    grads[2] = grads[2] + 1j
    before = _snapshot(opt, params)
    with pytest.raises(OptimizerError, match="is complex") as info:
        opt.step(grads)
    assert "drop the imaginary part" in str(info.value)
    _assert_same(before, _snapshot(opt, params))


def test_nan_gradients_are_not_errors_and_propagate_as_in_torch(rng):
    params = _params(rng)
    grads = _grads(rng)
    grads[1][0] = np.nan
    opt = optim.SGD(params, lr=0.1)
    opt.step(grads)
    assert np.isnan(params[1][0]) and np.isfinite(params[1][1:]).all() and np.isfinite(params[0]).all()


# Schedulers


def _sgd(lr=0.1):
    return optim.SGD([{"params": [np.zeros(2)]}, {"params": [np.zeros(3)], "lr": 0.02}], lr=lr, momentum=0.9)


def _groups(opt):
    return copy.deepcopy([{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups])


BAD_ARGUMENTS = [  # (class, arguments, what the message says); PyTorch's behaviour in the comment
    ("ExponentialLR", dict(gamma=-1), "gamma is -1; it must be a finite number >= 0"),  # torch: lr -0.1, -0.1 ...
    ("ExponentialLR", dict(gamma=math.nan), "gamma is nan"),  # torch: lr nan
    ("StepLR", dict(step_size=0), "step_size is 0; it must be an integer >= 1"),  # torch: ZeroDivisionError
    ("StepLR", dict(step_size=2, gamma=-0.5), "gamma is -0.5"),  # torch: negative lr at epoch 2
    ("MultiStepLR", dict(milestones=[2], gamma=-1.0), "gamma is -1.0"),
    ("CosineAnnealingLR", dict(T_max=0), "T_max is 0; it must be a finite number > 0"),  # torch: ZeroDivisionError
    ("CosineAnnealingLR", dict(T_max=5, eta_min=-1.0), "eta_min is -1.0"),  # torch: negative lr
    ("CosineAnnealingWarmRestarts", dict(T_0=2, eta_min=-1.0), "eta_min is -1.0"),  # torch: negative lr
    ("LinearLR", dict(total_iters=-1), "total_iters is -1"),
    ("LinearLR", dict(start_factor=0.0), "Starting multiplicative factor"),  # torch's message, as torch
    ("OneCycleLR", dict(max_lr=1.0, total_steps=10, pct_start=0.1), "leaves a phase"),  # torch: ZeroDivisionError
    ("OneCycleLR", dict(max_lr=1.0, total_steps=10, pct_start=1.0), "leaves a phase"),  # torch: at step 10
    ("OneCycleLR", dict(max_lr=1.0, total_steps=10, div_factor=0), "div_factor is 0"),  # torch: ZeroDivisionError
    ("OneCycleLR", dict(max_lr=-1.0, total_steps=10), "max_lr is -1.0"),  # torch: negative lrs
    ("ReduceLROnPlateau", dict(min_lr=-1.0), "min_lr is -1.0"),
    ("ReduceLROnPlateau", dict(factor=-0.5), "factor is -0.5"),
    ("LambdaLR", dict(lr_lambda=0.5), "lr_lambda must be a function"),
    # refused at the first step, which construction takes: torch sets lr -0.1
    ("LambdaLR", dict(lr_lambda=lambda epoch: -1.0), "computed the learning rate -0.1 for parameter group 0"),
]


@pytest.mark.parametrize("name, arguments, message", BAD_ARGUMENTS, ids=[f"{n}-{i}" for i, (n, _, _) in
                                                                          enumerate(BAD_ARGUMENTS)])
def test_scheduler_arguments_that_would_break_a_step_are_refused_up_front(name, arguments, message):
    opt = _sgd()
    before = _groups(opt)
    with pytest.raises(OptimizerError, match=message.replace("(", r"\(")) as info:
        getattr(sched, name)(opt, **arguments)
    assert __file__ in str(info.value) or "PyTorch" in str(info.value) or "fix:" in str(info.value)
    assert _groups(opt) == before  # nothing written into the optimiser (no initial_lr, no momentum)


def test_negative_gamma_torch_applies_it_we_refuse():
    ref = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    theirs = torch.optim.lr_scheduler.ExponentialLR(ref, gamma=-1)
    ref.step()
    theirs.step()
    assert ref.param_groups[0]["lr"] == pytest.approx(-0.1)  # silently a gradient *ascent*
    with pytest.raises(OptimizerError, match="gamma is -1"):
        sched.ExponentialLR(_sgd(), gamma=-1)


def test_a_step_computing_a_negative_lr_is_refused_and_changes_nothing():
    opt = _sgd()
    scheduler = sched.LambdaLR(opt, lambda epoch: 1.0 - 0.4 * epoch)  # negative from epoch 3
    scheduler.step()
    scheduler.step()
    before, attributes = _groups(opt), copy.deepcopy(scheduler.state_dict())
    with pytest.raises(OptimizerError) as info:
        scheduler.step()
    message = str(info.value)
    assert "computed the learning rate" in message and "group 0" in message and "PyTorch applies it" in message
    assert "unchanged" in message and __file__ in message
    assert _groups(opt) == before and scheduler.state_dict() == attributes


@pytest.mark.parametrize("name, arguments, step_args", [
    ("StepLR", dict(step_size=2), ()),
    ("ExponentialLR", dict(gamma=0.9), ()),
    ("CosineAnnealingLR", dict(T_max=4), ()),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2), ()),
    ("LinearLR", dict(), ()),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=20), ()),  # its steps also move the momentum
    ("ReduceLROnPlateau", dict(patience=0), (1.0,)),
])
def test_a_failure_at_any_point_of_a_scheduler_step_changes_nothing(name, arguments, step_args, monkeypatch):
    opt = _sgd()
    scheduler = getattr(sched, name)(opt, **arguments)
    for _ in range(3):
        scheduler.step(*step_args)
    for point in ("get_lr", "_set_lrs", "_reduce_lr", "_is_better"):
        if not hasattr(scheduler, point):
            continue
        before, attributes = _groups(opt), copy.deepcopy(scheduler.__dict__.copy() | {"optimizer": None})
        real = getattr(type(scheduler), point)

        def fail(self, *args, real=real):
            real(self, *args)  # the worst moment: after it did its work
            raise Injected(point)

        with monkeypatch.context() as patch:
            patch.setattr(type(scheduler), point, fail)
            try:
                scheduler.step(*step_args)
            except Injected:
                pass
            else:
                continue  # (this step did not reach that point)
        assert _groups(opt) == before, point
        assert copy.deepcopy(scheduler.__dict__.copy() | {"optimizer": None}) == attributes, point


def test_a_bad_metric_is_an_optimizer_error():
    scheduler = sched.ReduceLROnPlateau(_sgd())
    with pytest.raises(OptimizerError, match="as the metric"):
        scheduler.step("low")
    assert scheduler.last_epoch == 0


# Loading state dicts


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 2)
        self.norm = nn.BatchNorm1d(2)


def _arrays(model):
    return {key: np.array(value, copy=True) for key, value in model.state_dict().items()}


def _assert_arrays(before, model):
    after = model.state_dict()
    assert list(before) == list(after)
    for key, value in before.items():
        np.testing.assert_array_equal(value, after[key], strict=False, err_msg=key)
        assert value.dtype == after[key].dtype


@pytest.mark.parametrize("bad", ["strings", "object", "not-an-array", "shape"])
def test_an_unloadable_entry_anywhere_leaves_every_other_one_untouched(bad):
    model, source = Net(), Net()
    before = _arrays(model)
    good = {k: np.array(v, copy=True) + 1 for k, v in source.state_dict().items()}
    for position, key in enumerate(good):  # the bad entry at each position in turn, the last included
        state = dict(good)
        shape = np.shape(good[key])
        state[key] = {"strings": np.full(shape, "a"), "object": np.full(shape, object(), dtype=object),
                      "not-an-array": "weights", "shape": np.zeros((7,), np.float32)}[bad]
        with pytest.raises(avalon.AvalonError) as info:
            model.load_state_dict(state)
        message = str(info.value)
        assert "nothing was changed" in message and key in message and "fix:" in message, position
        _assert_arrays(before, model)


@pytest.mark.parametrize("argument, hint", [("model.pt", "avalon.load(path)"), (Net(), "state_dict()"),
                                            ([("fc1.weight", np.zeros((4, 3)))], "dict of dotted names")])
def test_a_non_mapping_argument_says_what_to_pass(argument, hint):
    model = Net()
    before = _arrays(model)
    with pytest.raises(avalon.AvalonError, match="not a state dict") as info:
        model.load_state_dict(argument)
    assert hint in str(info.value)
    _assert_arrays(before, model)


def test_bfloat16_torch_weights_load_by_casting_as_torch_does():
    model, ref = Net(), torch.nn.Linear(3, 4)
    weights = {k: torch.from_numpy(np.array(v, copy=True)).to(torch.bfloat16) for k, v in model.state_dict().items()
               if k.startswith("fc1.")}
    model.load_state_dict(weights, strict=False)
    ref.load_state_dict({k[4:]: v for k, v in weights.items()})
    np.testing.assert_array_equal(model.fc1.weight, ref.weight.detach().numpy())
    assert model.fc1.weight.dtype == np.float32


def test_swapped_entries_load_as_given(rng):
    model = Net()
    model.norm.weight[...] = rng.standard_normal(2)
    model.norm.bias[...] = rng.standard_normal(2)
    weight, bias = np.array(model.norm.weight, copy=True), np.array(model.norm.bias, copy=True)
    # the values are the module's own arrays, swapped: each must be read before the other is written
    model.load_state_dict({"norm.weight": model.norm.bias, "norm.bias": model.norm.weight}, strict=False)
    np.testing.assert_array_equal(model.norm.weight, bias)
    np.testing.assert_array_equal(model.norm.bias, weight)


def test_avalon_load_of_a_checkpoint_with_a_bad_entry_changes_nothing(tmp_path):
    model, source = Net(), Net()
    state = {k: np.array(v, copy=True) for k, v in source.state_dict().items()}
    state["fc2.bias"] = np.zeros(3, np.float32)  # the wrong shape, last
    avalon.save(state, tmp_path / "ckpt.safetensors")
    before = _arrays(model)
    with pytest.raises(avalon.AvalonError, match="size mismatch for fc2.bias"):
        model.load_state_dict(avalon.load(tmp_path / "ckpt.safetensors"))
    _assert_arrays(before, model)


def test_optimizer_load_state_dict_with_a_bad_last_entry_changes_nothing(rng):
    params = _params(rng)
    opt = optim.Adam(params, lr=0.1)
    opt.step(_grads(rng))
    saved = opt.state_dict()
    opt.step(_grads(rng))
    before = _snapshot(opt, params)
    for index in saved["state"]:  # the bad entry at each parameter in turn
        for bad in (np.full(SHAPES[index], "x"), "not a number"):
            broken = copy.deepcopy(saved)
            broken["param_groups"][0]["lr"] = 0.5
            broken["state"][index]["exp_avg"] = bad
            with pytest.raises(OptimizerError, match=f"parameter {index}") as info:
                opt.load_state_dict(broken)
            assert "fix:" in str(info.value)
            _assert_same(before, _snapshot(opt, params))
    with pytest.raises(OptimizerError, match="exactly the keys"):
        opt.load_state_dict("optimizer.pt")
    _assert_same(before, _snapshot(opt, params))


def test_scheduler_load_state_dict_checks_everything_before_loading_anything():
    opt = _sgd()
    warmup = sched.LinearLR(opt, start_factor=0.5, total_iters=2)
    decay = sched.ExponentialLR(opt, gamma=0.9)
    sequence = sched.SequentialLR(opt, [warmup, decay], milestones=[2])
    for _ in range(3):
        sequence.step()
    saved = sequence.state_dict()
    sequence.step()
    before = [copy.deepcopy(s.state_dict()) for s in (sequence, warmup, decay)]
    broken = copy.deepcopy(saved)
    broken["_schedulers"][1]["not_an_attribute"] = 1  # the last part is bad
    with pytest.raises(OptimizerError, match="unknown keys"):
        sequence.load_state_dict(broken)
    assert [s.state_dict() for s in (sequence, warmup, decay)] == before
    with pytest.raises(OptimizerError, match="not a state dict") as info:
        decay.load_state_dict("scheduler.pt")
    assert "fix:" in str(info.value)
    sequence.load_state_dict(saved)  # the good one loads
    assert sequence.last_epoch == saved["last_epoch"]


# fit: every argument checked before the model or the optimiser changes


def _fit_setup():
    from avalon.data import DataLoader, TensorDataset

    model = nn.Sequential(nn.Linear(2, 3))
    x, y = np.ones((8, 2), np.float32), np.zeros(8, np.int64)
    return model, optim.SGD(model.parameters(), lr=0.1), DataLoader(TensorDataset(x, y), batch_size=4)


@pytest.mark.parametrize("change, message", [
    (dict(epochs=2.5), "epochs is 2.5"),
    (dict(loss_fn="mse"), "loss_fn is a str"),
    (dict(optimizer="sgd"), "optimizer is a str"),
    (dict(train_loader=3), "train_loader is a int"),
    (dict(metrics={"acc": 1.0}), "no val_loader"),
    (dict(metrics={"acc": 1.0}, val_loader=[]), "metric 'acc' is a float"),
    (dict(scheduler=0.5), "scheduler is a float"),
])
def test_fit_refuses_bad_arguments_before_training(change, message):
    model, opt, loader = _fit_setup()
    model.eval()
    before = _arrays(model)
    arguments = dict(model=model, loss_fn=lambda m, x, y: avalon.nn.functional.cross_entropy(m(x), y),
                     train_loader=loader, optimizer=opt, epochs=2, progress=False)
    arguments.update(change)
    with pytest.raises(avalon.AvalonError, match=message) as info:
        avalon.fit(**arguments)
    assert "fix:" in str(info.value)
    _assert_arrays(before, model)
    assert not model.training and len(opt.state) == 0  # not even the training flag changed
