"""The catalogue, training: optimisers built over the wrong things, `fit` with a loss or arguments it
cannot use, and resuming from a checkpoint of another model or optimiser. Each refusal names the user's
line and the fix, and the model, its training flag and the optimiser's state are as they were."""
import numpy as np
import pytest
import torch

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
import avalon.optim as optim
from avalon.data import DataLoader, TensorDataset
from avalon.io import CorruptCheckpointError
from avalon.optim import OptimizerError
from refusals import arrays_of, assert_refused, assert_torch_refuses, assert_unchanged

MODEL = nn.Linear(2, 2)
T_MODEL = torch.nn.Linear(2, 2)

# optimisers: (avalon call, torch call or None, words)
OPTIMISERS = {
    "SGD over the model itself": (lambda: optim.SGD(MODEL, lr=0.1), lambda: torch.optim.SGD(T_MODEL, lr=0.1),
                                  "pass model.parameters()"),
    "SGD over a number": (lambda: optim.SGD(5, lr=0.1), lambda: torch.optim.SGD(5, lr=0.1), "a int"),
    "SGD over one array": (lambda: optim.SGD(MODEL.weight, lr=0.1), lambda: torch.optim.SGD(T_MODEL.weight, lr=0.1),
                           "one array"),
    "SGD over nothing": (lambda: optim.SGD([], lr=0.1), lambda: torch.optim.SGD([], lr=0.1), "empty parameter list"),
    "SGD with a negative lr": (lambda: optim.SGD(MODEL.parameters(), lr=-1),
                               lambda: torch.optim.SGD(T_MODEL.parameters(), lr=-1), "invalid lr"),
    "SGD with lr as a string": (lambda: optim.SGD(MODEL.parameters(), lr="0.1"),
                                lambda: torch.optim.SGD(T_MODEL.parameters(), lr="0.1"), "invalid lr: '0.1'"),
    "SGD with negative momentum": (lambda: optim.SGD(MODEL.parameters(), lr=0.1, momentum=-0.5),
                                   lambda: torch.optim.SGD(T_MODEL.parameters(), lr=0.1, momentum=-0.5),
                                   "invalid momentum"),
    "SGD with negative weight decay": (lambda: optim.SGD(MODEL.parameters(), lr=0.1, weight_decay=-1),
                                       lambda: torch.optim.SGD(T_MODEL.parameters(), lr=0.1, weight_decay=-1),
                                       "invalid weight_decay"),
    "SGD nesterov without momentum": (lambda: optim.SGD(MODEL.parameters(), lr=0.1, nesterov=True),
                                      lambda: torch.optim.SGD(T_MODEL.parameters(), lr=0.1, nesterov=True), "Nesterov"),
    "SGD listing a parameter twice": (lambda: optim.SGD([MODEL.weight, MODEL.weight], lr=0.1), None, "twice"),
    "Adam with a beta of 1.5": (lambda: optim.Adam(MODEL.parameters(), betas=(1.5, 0.9)),
                                lambda: torch.optim.Adam(T_MODEL.parameters(), betas=(1.5, 0.9)), "beta"),
    "Adam with one beta": (lambda: optim.Adam(MODEL.parameters(), betas=(0.9,)),
                           lambda: torch.optim.Adam(T_MODEL.parameters(), betas=(0.9,)), "pair"),
    "Adam with a negative eps": (lambda: optim.Adam(MODEL.parameters(), eps=-1),
                                 lambda: torch.optim.Adam(T_MODEL.parameters(), eps=-1), "invalid eps"),
    "a group sharing a parameter with another": (
        lambda: optim.SGD(MODEL.parameters(), lr=0.1).add_param_group({"params": [MODEL.weight]}),
        lambda: torch.optim.SGD(T_MODEL.parameters(), lr=0.1).add_param_group({"params": [T_MODEL.weight]}),
        "more than one parameter group"),
    "a scheduler over a string": (lambda: optim.lr_scheduler.StepLR("opt", step_size=1),
                                  lambda: torch.optim.lr_scheduler.StepLR("opt", step_size=1), "not an avalon Optimizer"),
}


@pytest.mark.parametrize("case", OPTIMISERS, ids=list(OPTIMISERS))
def test_an_optimiser_built_over_the_wrong_thing_is_refused(case):
    ours, theirs, fragment = OPTIMISERS[case]
    before = arrays_of(MODEL)
    assert_refused(ours, OptimizerError, fragment)
    assert_unchanged(before, MODEL)
    assert_torch_refuses(theirs)


# fit: a model in eval mode, one loader, an optimiser with state; a case changes one argument


def _setup():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    model.eval()
    x = np.random.default_rng(0).standard_normal((8, 2)).astype(np.float32)
    loader = DataLoader(TensorDataset(x, np.zeros(8, np.int64)), batch_size=4)
    opt = optim.Adam(model.parameters(), lr=0.1)
    return model, opt, loader


def _ce(m, x, y):
    return F.cross_entropy(m(x), y)


FIT = {
    "epochs -1": (dict(epochs=-1), avalon.AvalonError, "epochs is -1"),
    "epochs a string": (dict(epochs="3"), avalon.AvalonError, "epochs is '3'"),
    "metrics a list": (dict(metrics=[lambda out, y: 1.0], val_loader=[]), avalon.AvalonError, "metrics is a list"),
    "val_loader a number": (dict(val_loader=3), avalon.AvalonError, "val_loader is a int"),
    "model not a Module": (dict(model=lambda x: x), avalon.AvalonError, "not a Module"),
    "an optimiser of another model": ("other optimiser", avalon.AvalonError, "none of the model's parameters"),
    "a loss returning the outputs": (dict(loss_fn=lambda m, x, y: m(x)), avalon.GradientError, "not a scalar"),
    "a loss returning None": (dict(loss_fn=lambda m, x, y: None), avalon.GradientError, "returned None"),
    "a loss returning a float": (dict(loss_fn=lambda m, x, y: 1.0), avalon.GradientError, "a float"),
    "a loss returning (loss, accuracy)": (dict(loss_fn=lambda m, x, y: (_ce(m, x, y), 0.5)), avalon.GradientError,
                                          "a tuple"),
    "a loss taking (model, batch)": (dict(loss_fn=lambda m, batch: m(batch[0]).sum()), avalon.GradientError,
                                     "cannot take the 3 argument"),
    "a loader of single arrays": ("single arrays", avalon.AvalonError, "(x, y) batches"),
}


@pytest.mark.parametrize("case", FIT, ids=list(FIT))
def test_fit_refuses_a_bad_loss_or_argument_and_leaves_model_mode_and_optimiser_as_they_were(case):
    change, kind, fragment = FIT[case]
    model, opt, loader = _setup()
    if change == "other optimiser":
        change = dict(optimizer=optim.SGD(nn.Linear(2, 3).parameters(), lr=0.1))
    elif change == "single arrays":
        change = dict(train_loader=DataLoader(TensorDataset(np.ones((4, 2), np.float32)), batch_size=2))
    arguments = dict(model=model, loss_fn=_ce, train_loader=loader, optimizer=opt, epochs=2, progress=False)
    arguments.update(change)
    before = arrays_of(model)
    with pytest.raises(kind) as info:
        avalon.fit(**arguments)
    message = str(info.value)
    assert f"{__file__}:" in message and "fix:" in message, message
    assert fragment in message, message
    assert_unchanged(before, model)
    assert not model.training  # the mode the caller left it in
    assert len(opt.state) == 0


def test_fit_names_the_fit_line_when_the_loss_fails_in_the_first_step():
    model, opt, loader = _setup()
    line = test_fit_names_the_fit_line_when_the_loss_fails_in_the_first_step.__code__.co_firstlineno + 4
    with pytest.raises(avalon.GradientError) as info:
        avalon.fit(model, lambda m, x, y: None, loader, opt, epochs=1, progress=False)
    assert f"{__file__}:{line}" in str(info.value)


# resuming from a checkpoint of something else


def test_resuming_a_model_from_another_architectures_checkpoint_changes_nothing(tmp_path):
    path = str(tmp_path / "other.safetensors")
    avalon.save(nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 2)), path)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    before = arrays_of(model)
    state = avalon.load(path)
    error = assert_refused(lambda: model.load_state_dict(state), avalon.AvalonError, "0.weight", "nothing was changed")
    assert "shape" in str(error)
    assert_unchanged(before, model)


def test_resuming_adam_from_an_sgd_checkpoint_changes_nothing(tmp_path):
    model = nn.Linear(2, 2)
    sgd = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _, (g,) = avalon.grad(lambda m: m(np.ones((1, 2), np.float32)).sum(), model)
    sgd.step(g)
    path = str(tmp_path / "sgd.safetensors")
    avalon.save(sgd, path)
    adam = optim.Adam(model.parameters(), lr=0.01)
    adam.step(g)
    before = {k: np.array(v, copy=True) for k, v in adam.state[model.weight].items()}
    groups = [dict(g) for g in adam.param_groups]
    with pytest.raises(OptimizerError) as info:
        adam.load_state_dict(avalon.load(path))
    assert "fix:" in str(info.value)
    for key, value in adam.state[model.weight].items():
        np.testing.assert_array_equal(value, before[key])
    assert [dict(g) for g in adam.param_groups] == groups


def test_resuming_from_a_truncated_checkpoint_names_the_file_and_changes_nothing(tmp_path):
    model = nn.Linear(2, 2)
    path = tmp_path / "model.safetensors"
    avalon.save(model, str(path))
    path.write_bytes(path.read_bytes()[:-5])  # a save cut short (the atomic save never leaves this; a copy might)
    before = arrays_of(model)
    with pytest.raises(CorruptCheckpointError) as info:
        model.load_state_dict(avalon.load(str(path)))
    assert str(path) in str(info.value)
    assert_unchanged(before, model)


def test_opt_step_without_gradients_says_how_avalon_gives_them():
    model = nn.Linear(2, 2)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = arrays_of(model)
    assert_refused(lambda: opt.step(), OptimizerError, "needs the gradients", "avalon.grad(")
    assert_unchanged(before, model)
    assert len(opt.state) == 0


# (avalon call, torch call or None where torch applies it, words)
CLIPPING_AND_SEEDS = {
    "clip_grad_norm_ with a negative max_norm": (lambda: nn.utils.clip_grad_norm_([np.ones(2, np.float32)], -1.0),
                                                 None, "max_norm=-1.0"),
    "clip_grad_value_ with a negative clip_value": (lambda: nn.utils.clip_grad_value_([np.ones(2, np.float32)], -0.5),
                                                    None, "clip_value=-0.5"),
    "manual_seed of a string": (lambda: avalon.manual_seed("seed"), lambda: torch.manual_seed("seed"), "seed='seed'"),
    "manual_seed of a float": (lambda: avalon.manual_seed(1.5), None, "seed=1.5"),
}


@pytest.mark.parametrize("case", CLIPPING_AND_SEEDS, ids=list(CLIPPING_AND_SEEDS))
def test_clipping_bounds_and_seeds_that_make_no_sense_are_refused(case):
    ours, theirs, fragment = CLIPPING_AND_SEEDS[case]
    grads = [np.ones(2, np.float32)]
    assert_refused(ours, avalon.ArgumentError, fragment)
    np.testing.assert_array_equal(grads[0], np.ones(2, np.float32))
    assert_torch_refuses(theirs)


def test_torch_applies_a_negative_max_norm_and_flips_the_gradients_we_refuse_it():
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.full((2,), 4.0)
    torch.nn.utils.clip_grad_norm_([p], -1.0)
    assert (p.grad < 0).all()  # silently reversed: the reason for the refusal above


def _opt():
    return optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)


# schedulers (those test_atomic_state.py does not already list): (avalon call, torch call, words)
SCHEDULERS = {
    "CosineAnnealingWarmRestarts T_0 0": (lambda: optim.lr_scheduler.CosineAnnealingWarmRestarts(_opt(), T_0=0),
                                          lambda: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
                                              torch.optim.SGD(T_MODEL.parameters(), lr=0.1), T_0=0), "T_0"),
    "CosineAnnealingWarmRestarts T_mult 0.5": (
        lambda: optim.lr_scheduler.CosineAnnealingWarmRestarts(_opt(), T_0=2, T_mult=0.5),
        lambda: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(torch.optim.SGD(T_MODEL.parameters(), lr=0.1),
                                                                     T_0=2, T_mult=0.5), "T_mult"),
    "OneCycleLR total_steps 0": (lambda: optim.lr_scheduler.OneCycleLR(_opt(), max_lr=0.1, total_steps=0),
                                 lambda: torch.optim.lr_scheduler.OneCycleLR(
                                     torch.optim.SGD(T_MODEL.parameters(), lr=0.1, momentum=0.9), max_lr=0.1,
                                     total_steps=0), "total_steps"),
    "OneCycleLR without a length": (lambda: optim.lr_scheduler.OneCycleLR(_opt(), max_lr=0.1),
                                    lambda: torch.optim.lr_scheduler.OneCycleLR(
                                        torch.optim.SGD(T_MODEL.parameters(), lr=0.1, momentum=0.9), max_lr=0.1),
                                    "needs total_steps"),
    "OneCycleLR pct_start 2": (lambda: optim.lr_scheduler.OneCycleLR(_opt(), max_lr=0.1, total_steps=10, pct_start=2),
                               lambda: torch.optim.lr_scheduler.OneCycleLR(
                                   torch.optim.SGD(T_MODEL.parameters(), lr=0.1, momentum=0.9), max_lr=0.1,
                                   total_steps=10, pct_start=2), "pct_start"),
    "OneCycleLR anneal_strategy 'exp'": (
        lambda: optim.lr_scheduler.OneCycleLR(_opt(), max_lr=0.1, total_steps=10, anneal_strategy="exp"),
        lambda: torch.optim.lr_scheduler.OneCycleLR(torch.optim.SGD(T_MODEL.parameters(), lr=0.1, momentum=0.9),
                                                    max_lr=0.1, total_steps=10, anneal_strategy="exp"),
        "anneal_strategy"),
    "SequentialLR of nothing": (lambda: optim.lr_scheduler.SequentialLR(_opt(), [], milestones=[]), None,
                                "at least one scheduler"),
    "ReduceLROnPlateau stepped with a string": (lambda: optim.lr_scheduler.ReduceLROnPlateau(_opt()).step("loss"),
                                                lambda: torch.optim.lr_scheduler.ReduceLROnPlateau(
                                                    torch.optim.SGD(T_MODEL.parameters(), lr=0.1)).step("loss"),
                                                "metric"),
}


@pytest.mark.parametrize("case", SCHEDULERS, ids=list(SCHEDULERS))
def test_a_scheduler_built_or_stepped_with_arguments_it_cannot_use_is_refused(case):
    ours, theirs, fragment = SCHEDULERS[case]
    assert_refused(ours, OptimizerError, fragment)
    assert_torch_refuses(theirs)
