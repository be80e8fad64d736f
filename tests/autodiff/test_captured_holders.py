"""A model the traced function uses without receiving it (captured by a closure) is read afresh at
every replay: optimiser steps and state updates reach the replay, and mode changes retrace."""
import numpy as np

import avalon
import avalon.nn as nn
import avalon.nn.functional as F


def make_model():
    avalon.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def data():
    rng = np.random.default_rng(1)
    return rng.standard_normal((8, 3), dtype=np.float32), rng.standard_normal((8, 2), dtype=np.float32)


def test_captured_parameters_are_inputs_named_like_the_model():
    model = make_model()
    x, y = data()
    tape = avalon.trace(lambda x, y: F.mse_loss(model(x), y), x, y)
    params = [n for n in tape.inputs if n.role == "param"]
    assert [n.name for n in params] == [name for name, _ in model.named_parameters()]
    assert {n.name for n in tape.inputs if n.role == "buffer"} >= {"1.running_mean", "1.running_var"}


def test_replay_sees_in_place_parameter_updates():
    model = make_model()
    x, y = data()
    loss = lambda x, y: F.mse_loss(model(x), y)  # noqa: E731
    avalon.grad(loss, x, y)
    model[0].weight[...] *= 0.5  # what an optimiser's step does
    replayed, (gx, _) = avalon.grad(loss, x, y)
    avalon.clear_cache()
    fresh, (gx_fresh, _) = avalon.grad(loss, x, y)
    np.testing.assert_allclose(replayed, fresh, rtol=1e-6)
    np.testing.assert_allclose(gx, gx_fresh, rtol=1e-5, atol=1e-7)


def test_running_statistics_update_at_every_replay_and_no_tracer_is_left_behind():
    model = make_model()
    x, y = data()
    loss = lambda x, y: F.mse_loss(model(x), y)  # noqa: E731
    bn = model[1]
    buffer = bn.running_mean
    for _ in range(3):
        avalon.grad(loss, x, y)
    assert bn.running_mean is buffer and isinstance(buffer, np.ndarray)
    h = x @ model[0].weight.T + model[0].bias
    expected = np.zeros(4, np.float32)
    for _ in range(3):
        expected = 0.9 * expected + 0.1 * h.mean(0)
    np.testing.assert_allclose(buffer, expected, rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked) == 3


def test_a_mode_change_of_a_captured_model_retraces():
    model = make_model()
    x, y = data()
    predict = avalon.jit(lambda x: model(x))
    train_out = predict(x)
    model.eval()
    eval_out = predict(x)
    np.testing.assert_allclose(eval_out, model(x), rtol=1e-6)
    assert not np.allclose(train_out, eval_out)
