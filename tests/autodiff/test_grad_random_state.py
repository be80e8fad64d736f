"""Randomness and state under cached replay behave exactly like running the Python code again."""
import numpy as np

import avalon

P = 0.5


def dropout_loss(x, w):
    mask = avalon.rand(*x.shape) > P
    return (np.where(mask, x * w, 0.0) / (1 - P)).sum()


def test_dropout_mask_is_fresh_at_every_replay(rng):
    x, w = rng.standard_normal(64), rng.standard_normal(64)
    grads = [avalon.grad(dropout_loss, x, w)[1][1] for _ in range(4)]
    masks = [g != 0 for g in grads]  # d/dw = x * mask / (1 - p)
    assert all(0 < m.sum() < 64 for m in masks)
    assert all(not np.array_equal(masks[i], masks[j]) for i in range(4) for j in range(i + 1, 4))


def test_replay_draws_what_an_uncompiled_run_draws(rng):
    x, w = rng.standard_normal(16), rng.standard_normal(16)

    def eager(seed):
        avalon.manual_seed(seed)
        mask = avalon.rand(*x.shape) > P  # outside traced code: plain numpy
        return (np.where(mask, x * w, 0.0) / (1 - P)).sum(), np.where(mask, x, 0.0) / (1 - P)

    for seed in (1, 2, 1):  # the first call traces, the others replay
        avalon.manual_seed(seed)
        value, (_, gw) = avalon.grad(dropout_loss, x, w)
        expected_value, expected_gw = eager(seed)
        np.testing.assert_allclose(value, expected_value)
        np.testing.assert_allclose(gw, expected_gw)


def test_generator_state_after_a_replay_matches_an_uncompiled_run(rng):
    x = rng.standard_normal(4)

    def f(x):
        avalon.randn(3)  # drawn, never used: dead code, but the draw still happens
        return (x * avalon.rand(4)).sum()

    avalon.grad(f, x)  # trace
    avalon.manual_seed(7)
    value, (gx,) = avalon.grad(f, x)
    after_replay = avalon.rand(5)
    avalon.manual_seed(7)
    avalon.randn(3)
    u = avalon.rand(4)
    np.testing.assert_allclose(gx, u)
    np.testing.assert_allclose(value, (x * u).sum())
    np.testing.assert_array_equal(after_replay, avalon.rand(5))


def test_jit_draws_fresh_numbers_too(rng):
    noisy = avalon.jit(lambda x: x + avalon.randn(*x.shape))
    x = np.zeros(8)
    a, b = noisy(x), noisy(x)
    assert not np.array_equal(a, b)
    avalon.manual_seed(3)
    c = noisy(x)
    avalon.manual_seed(3)
    np.testing.assert_array_equal(c, avalon.randn(8).astype(np.float64))


@avalon.register_holder
class RunningMean:
    def __init__(self, n):
        self.running_mean = np.zeros(n)
        self.weight = np.ones(n)
        self.traces = 0

    def __call__(self, x):
        self.running_mean = 0.9 * self.running_mean + 0.1 * x.mean(0)
        return ((x - self.running_mean) * self.weight).sum()


def test_state_updates_at_every_replay_like_a_python_loop(rng):
    model = RunningMean(3)
    state = model.running_mean
    reference = np.zeros(3)
    traces = []

    def loss(model, x):
        traces.append(1)
        return model(x)

    for step in range(5):
        x = rng.standard_normal((4, 3)) + step
        reference = 0.9 * reference + 0.1 * x.mean(0)
        value, (g, _) = avalon.grad(loss, model, x)
        np.testing.assert_allclose(model.running_mean, reference)
        np.testing.assert_allclose(value, ((x - reference) * 1.0).sum())
        np.testing.assert_allclose(g.weight, (x - reference).sum(0))
        assert model.running_mean is state  # updated in place
    assert len(traces) == 1


def test_state_updates_under_jit(rng):
    model = RunningMean(2)
    state = model.running_mean
    step = avalon.jit(lambda model, x: model(x))
    reference = np.zeros(2)
    for _ in range(3):
        x = rng.standard_normal((5, 2))
        reference = 0.9 * reference + 0.1 * x.mean(0)
        step(model, x)
    np.testing.assert_allclose(model.running_mean, reference)
    assert model.running_mean is state


def test_state_and_dropout_together_in_float32(rng):
    @avalon.register_holder
    class Layer:
        def __init__(self):
            self.weight = np.full(6, 0.5, np.float32)
            self.mean = np.zeros(6, np.float32)

        def __call__(self, x):
            self.mean = self.mean * np.float32(0.9) + x.mean(0) * np.float32(0.1)
            keep = avalon.rand(*x.shape) > P
            return np.where(keep, x * self.weight, np.float32(0)).sum()

    layer = Layer()
    x = rng.standard_normal((3, 6)).astype(np.float32)
    reference = np.zeros(6, np.float32)
    for seed in range(3):
        avalon.manual_seed(seed)
        value, (g, gx) = avalon.grad(lambda m, x: m(x), layer, x)
        reference = reference * np.float32(0.9) + x.mean(0) * np.float32(0.1)
        avalon.manual_seed(seed)
        keep = avalon.rand(3, 6) > P
        np.testing.assert_allclose(gx, np.where(keep, np.float32(0.5), 0), rtol=1e-6)
        assert g.weight.dtype == np.float32 and gx.dtype == np.float32 and layer.mean.dtype == np.float32
        np.testing.assert_allclose(layer.mean, reference, rtol=1e-6)


def test_a_jitted_function_called_inside_traced_code_draws_at_every_replay():
    noise = avalon.jit(lambda shape_source: avalon.rand(*shape_source.shape))
    zeros = np.zeros(5)
    loss = lambda x: (x * noise(zeros)).sum()  # noqa: E731 - called on a plain array, inside a trace
    x = np.ones(5)
    draws = [avalon.grad(loss, x)[1][0] for _ in range(3)]
    assert not np.array_equal(draws[1], draws[2])
    avalon.manual_seed(11)
    replayed = avalon.grad(loss, x)[1][0]
    avalon.manual_seed(11)
    np.testing.assert_array_equal(replayed, avalon.rand(5).astype(np.float64))
