"""The Optimizer base: the three gradient forms, atomic steps, groups, errors and state dicts."""
import numpy as np
import pytest

import avalon
import avalon.optim as optim
from avalon.optim import OptimizerError


class Linear2:
    """A tiny holder (the same mechanism nn.Module uses): gradients come back as a `Grads`."""

    def __init__(self, rng):
        self.w = rng.standard_normal((3, 2))
        self.b = rng.standard_normal(2)


avalon.register_holder(Linear2)


def loss_fn(m, x):
    return ((x @ m.w + m.b) ** 2).sum()


@pytest.fixture
def model(rng):
    return Linear2(rng)


def test_grads_list_and_dict_give_the_same_step(model, rng):
    x = rng.standard_normal((4, 3))
    _, (grads, _) = avalon.grad(loss_fn, model, x)
    results = []
    for form in ("grads", "list", "dict"):
        w, b = model.w.copy(), model.b.copy()
        if form == "dict":
            opt = optim.Adam({"w": w, "b": b}, lr=0.1)
            opt.step({"w": grads.w, "b": grads.b})
        elif form == "list":
            opt = optim.Adam([w, b], lr=0.1)
            opt.step([grads.w, grads.b])
        else:
            holder = Linear2(rng)
            holder.w, holder.b = w, b
            _, (g, _) = avalon.grad(loss_fn, holder, x)
            opt = optim.Adam([holder.w, holder.b], lr=0.1)
            opt.step(g)
        results.append((w, b))
    for w, b in results[1:]:
        np.testing.assert_array_equal(w, results[0][0])
        np.testing.assert_array_equal(b, results[0][1])


def test_step_updates_the_models_own_arrays_in_place(model, rng):
    w, b = model.w, model.b
    before = w.copy()
    opt = optim.SGD([model.w, model.b], lr=0.1)
    _, (grads, _) = avalon.grad(loss_fn, model, rng.standard_normal((4, 3)))
    opt.step(grads)
    assert model.w is w and model.b is b
    np.testing.assert_allclose(model.w, before - 0.1 * grads.w)


def test_named_parameters_allow_a_dict_of_gradients(model):
    opt = optim.SGD([("w", model.w), ("b", model.b)], lr=1.0)
    assert opt.param_groups[0]["param_names"] == ["w", "b"]
    b_before = model.b.copy()
    opt.step({"w": np.ones_like(model.w)})  # a parameter without a gradient is left alone
    np.testing.assert_array_equal(model.b, b_before)
    with pytest.raises(OptimizerError, match=r"unknown parameters \['v'\]"):
        opt.step({"v": np.ones(3)})


def test_dict_gradients_without_names_are_refused_with_the_fix(model):
    opt = optim.SGD([model.w, model.b], lr=1.0)
    with pytest.raises(OptimizerError, match="named_parameters"):
        opt.step({"w": np.ones_like(model.w)})


def test_a_failed_step_changes_no_parameter_and_no_state(model):
    opt = optim.Adam([model.w, model.b], lr=0.1)
    opt.step([np.ones_like(model.w), np.ones_like(model.b)])
    w, b, state = model.w.copy(), model.b.copy(), opt.state_dict()
    with pytest.raises(OptimizerError) as info:
        opt.step([np.ones_like(model.w), np.ones(3)])  # second gradient has the wrong shape
    message = str(info.value)
    assert "shape (3,)" in message and "(2,)" in message and "test_optimizer_base.py" in message
    np.testing.assert_array_equal(model.w, w)
    np.testing.assert_array_equal(model.b, b)
    after = opt.state_dict()
    for i in (0, 1):
        assert after["state"][i]["step"] == state["state"][i]["step"] == 1.0
        np.testing.assert_array_equal(after["state"][i]["exp_avg"], state["state"][i]["exp_avg"])


def test_nan_gradients_are_not_an_error(model):
    opt = optim.SGD([model.w], lr=0.1)
    opt.step([np.full_like(model.w, np.nan)])
    assert np.isnan(model.w).all()


def test_gradients_of_another_model_are_refused(model, rng):
    other = Linear2(rng)
    _, (grads, _) = avalon.grad(loss_fn, other, rng.standard_normal((4, 3)))
    opt = optim.SGD([model.w, model.b], lr=0.1)
    with pytest.raises(OptimizerError, match="identity"):
        opt.step(grads)


def test_the_whole_grad_tuple_is_refused_with_the_fix(model, rng):
    grads = avalon.grad(loss_fn, model, rng.standard_normal((4, 3)))[1]
    opt = optim.SGD([model.w, model.b], lr=0.1)
    with pytest.raises(OptimizerError, match=r"grads\[0\]"):
        opt.step(grads)


@pytest.mark.parametrize("bad,message", [
    ([np.ones((3, 2))], "1 gradients for 2 parameters"),
    ([np.ones((3, 2)), "x"], "not an array"),
    ([np.ones((3, 2)), np.ones(2, dtype=np.int64)], "not a floating dtype"),
    (3.0, "gradients of type float"),
])
def test_bad_gradients_raise(model, bad, message):
    opt = optim.SGD([model.w, model.b], lr=0.1)
    with pytest.raises(OptimizerError, match=message):
        opt.step(bad)


@pytest.mark.parametrize("make,message", [
    (lambda p: optim.SGD(p, lr=-1), "invalid lr"),
    (lambda p: optim.SGD(p, momentum=-0.1), "invalid momentum"),
    (lambda p: optim.SGD(p, nesterov=True), "Nesterov"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.9)), "beta parameter at index 0"),
    (lambda p: optim.Adadelta(p, rho=1.5), "invalid rho"),
    (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda p: optim.SGD(p[0], lr=0.1), "one array"),
    (lambda p: optim.SGD(set(), lr=0.1), "empty"),
    (lambda p: optim.SGD([{"params": p[:1]}, {"params": p}], lr=0.1), "more than one parameter group"),
    (lambda p: optim.SGD([{"params": p, "lrr": 0.1}]), "no option 'lrr'"),
    (lambda p: optim.SGD([{"params": p[:1], "lr": -2.0}], lr=0.1), "invalid lr"),
    (lambda p: optim.SGD([np.arange(3)], lr=0.1), "floating"),
])
def test_bad_construction_raises(model, make, message):
    with pytest.raises(OptimizerError, match=message):
        make([model.w, model.b])


def test_groups_take_defaults_and_add_param_group(model):
    opt = optim.SGD([model.w], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": model.b, "lr": 0.5})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9
    assert "Parameter Group 1" in repr(opt) and "lr: 0.5" in repr(opt)


def test_state_is_indexed_by_the_parameter_array(model):
    opt = optim.Adam([model.w, model.b])
    opt.step([np.ones_like(model.w), np.ones_like(model.b)])
    assert model.w in opt.state and len(opt.state) == 2
    assert opt.state[model.w]["exp_avg"].shape == model.w.shape


def test_state_dict_round_trip_resumes_identically(rng):
    params = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(6)]
    a = [p.copy() for p in params]
    opt_a = optim.RMSprop(a, lr=0.01, momentum=0.9, centered=True)
    for g in grads[:3]:
        opt_a.step(g)
    b = [p.copy() for p in a]
    opt_b = optim.RMSprop(b)
    opt_b.load_state_dict(opt_a.state_dict())
    assert opt_b.param_groups[0]["momentum"] == 0.9
    for g in grads[3:]:
        opt_a.step(g)
        opt_b.step(g)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_state_dict_is_a_copy(model):
    opt = optim.Adam([model.w, model.b])
    opt.step([np.ones_like(model.w), np.ones_like(model.b)])
    saved = opt.state_dict()
    opt.step([np.ones_like(model.w), np.ones_like(model.b)])
    assert saved["state"][0]["step"] == 1.0
    assert not np.shares_memory(saved["state"][0]["exp_avg"], opt.state[model.w]["exp_avg"])


def _mutations():
    def groups(sd):
        sd["param_groups"].append(dict(sd["param_groups"][0]))

    def sizes(sd):
        sd["param_groups"][0]["params"] = [0]

    def shape(sd):
        sd["state"][1]["exp_avg"] = np.zeros(5)

    def foreign(sd):
        sd["state"][0]["momentum_buffer"] = np.zeros((3, 2))

    def index(sd):
        sd["state"][7] = {}

    def option(sd):
        sd["param_groups"][0]["lr"] = -1.0

    def keys(sd):
        del sd["state"]

    return [(groups, "parameter groups"), (sizes, "1 parameters in the state dict"), (shape, "shape"),
            (foreign, "another kind of optimiser"), (index, "parameter 7"), (option, "invalid lr"),
            (keys, "exactly the keys")]


@pytest.mark.parametrize("mutate,message", _mutations(), ids=lambda v: getattr(v, "__name__", ""))
def test_a_mismatched_state_dict_raises_and_changes_nothing(model, mutate, message):
    opt = optim.Adam([model.w, model.b], lr=0.1)
    opt.step([np.ones_like(model.w), np.ones_like(model.b)])
    saved = opt.state_dict()
    mutate(saved)
    before = opt.state_dict()
    with pytest.raises(OptimizerError, match=message):
        opt.load_state_dict(saved)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    np.testing.assert_array_equal(after["state"][1]["exp_avg"], before["state"][1]["exp_avg"])
