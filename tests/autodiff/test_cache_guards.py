"""Guards on cached entries (issue #10): Python values a trace read besides its arguments — globals,
closure variables, fields of config objects reachable from a model — are checked before each
replay; a change retraces (the result is as if the code ran again), no change replays. Each case is
checked against plain numpy, computed afresh."""
import dataclasses
import gc
import types
import warnings

import numpy as np
import pytest

import avalon
import avalon.nn as nn
from avalon.autodiff import cache, guards

beta = 0.5
SCALE = np.float32(1.0) * np.ones(3, np.float32)
BIG = np.ones(guards.WHOLE_ARRAY * 4, np.float32)
activation = np.tanh
calls = 0


@pytest.fixture(autouse=True)
def fresh_cache():
    avalon.clear_cache()
    yield
    avalon.clear_cache()


@pytest.fixture
def data(rng):
    return rng.standard_normal((3, 2)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)


def weighted_loss(W, x):
    return (np.tanh(x @ W) * beta).sum()


def test_a_global_that_changes_retraces_and_the_value_follows(data):
    global beta
    W, x = data
    try:
        for b in (0.5, 2.0, 2.0, -1.0):
            beta = b
            value, (gW, _) = avalon.grad(weighted_loss, W, x)
            np.testing.assert_allclose(value, (np.tanh(x @ W) * b).sum(), rtol=1e-5)
            np.testing.assert_allclose(gW, x.T @ ((1 - np.tanh(x @ W) ** 2) * b), rtol=1e-5, atol=1e-6)
        reasons = [e.reason for e in avalon.explain_cache(weighted_loss).events]
        assert reasons[0] == "first call"
        assert len(reasons) == 3  # 0.5, then 2.0, then -1.0: the second 2.0 replayed
        assert "global `beta`" in reasons[1] and "0.5 to 2.0" in reasons[1] and __file__ in reasons[1]
    finally:
        beta = 0.5


def test_an_equal_value_in_a_new_object_replays(data):
    global beta
    W, x = data
    traces = []

    def f(W, x):
        traces.append(1)  # runs only while tracing
        return weighted_loss(W, x)

    try:
        avalon.grad(f, W, x)
        beta = float("0.5")  # a new float object, the same value
        avalon.grad(f, W, x)
        assert len(traces) == 1
    finally:
        beta = 0.5


def schedule(temperature):
    def loss(W, x):
        return (x @ W).sum() / temperature[0]
    return loss


def test_a_closure_variable_that_changes_retraces(data):
    W, x = data
    temperature = [1.0]
    loss = schedule(temperature)
    for t in (1.0, 4.0, 4.0, 0.5):
        temperature[0] = t
        value, (gW, _) = avalon.grad(loss, W, x)
        np.testing.assert_allclose(value, (x @ W).sum() / t, rtol=1e-5)
        np.testing.assert_allclose(gW, np.broadcast_to(x.sum(0)[:, None], W.shape) / t, rtol=1e-5)
    reasons = [e.reason for e in avalon.explain_cache(loss).events]
    assert len(reasons) == 3 and "closure variable `temperature`" in reasons[1]


def test_a_rebound_closure_cell_retraces(data):
    W, x = data
    scale = 1.0

    def loss(W, x):
        return (x @ W).sum() * scale

    first = avalon.grad(loss, W, x)[0]
    scale = 3.0  # noqa: F841 - read by loss through its cell
    np.testing.assert_allclose(avalon.grad(loss, W, x)[0], 3 * first, rtol=1e-5)


def helper(x):
    return activation(x)  # a global read by a function the traced code calls


def test_globals_of_called_functions_are_guarded_too(data):
    global activation
    W, x = data
    f = avalon.jit(lambda W, x: helper(x @ W))
    try:
        np.testing.assert_allclose(f(W, x), np.tanh(x @ W), rtol=1e-5)
        activation = np.sin  # a function swapped: another object, so it retraces
        np.testing.assert_allclose(f(W, x), np.sin(x @ W), rtol=1e-5)
        assert "global `activation`" in avalon.explain_cache(f).events[-1].reason  # f is a jit wrapper
    finally:
        activation = np.tanh


def test_a_global_array_changed_in_place_retraces(data):
    W, x = data
    f = avalon.jit(lambda x: x[:, :3] * SCALE)
    before = SCALE.copy()
    try:
        np.testing.assert_allclose(f(x), x * before)
        SCALE[1] = 5.0
        np.testing.assert_allclose(f(x), x * SCALE)
        assert "`SCALE`" in avalon.explain_cache().events[-1].reason
        assert "changed in place" in avalon.explain_cache().events[-1].reason
    finally:
        SCALE[...] = before


def test_a_large_global_array_rewritten_retraces():
    f = avalon.jit(lambda x: x + BIG)
    x = np.zeros_like(BIG)
    try:
        np.testing.assert_allclose(f(x), BIG)
        BIG[...] *= 3  # a whole-array update changes the sample the guard compares
        np.testing.assert_allclose(f(x), BIG)
    finally:
        BIG[...] = 1


class Scaled(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.config = config

    def forward(self, x):
        return self.fc(x) * self.config.scale + self.config.inner.shift


@dataclasses.dataclass
class Inner:
    shift: float = 0.0


@dataclasses.dataclass
class DataConfig:
    scale: float
    inner: Inner


class PlainConfig:
    def __init__(self):
        self.scale = 1.0
        self.inner = types.SimpleNamespace(shift=0.0)


@pytest.mark.parametrize("make", [lambda: types.SimpleNamespace(scale=1.0, inner=types.SimpleNamespace(shift=0.0)),
                                  lambda: DataConfig(1.0, Inner()), PlainConfig],
                         ids=["namespace", "dataclass", "user-class"])
def test_a_config_field_reachable_from_a_model_retraces(make, data):
    _, x = data
    model = Scaled(make())
    plain = model.fc(x)  # eager: the reference, computed afresh
    np.testing.assert_allclose(model(x), plain, rtol=1e-5)
    model.config.scale = 3.0
    np.testing.assert_allclose(model(x), 3 * plain, rtol=1e-5)
    model.config.inner.shift = 1.0  # two levels down
    np.testing.assert_allclose(model(x), 3 * plain + 1, rtol=1e-5)
    loss = lambda m, x: m(x).sum()  # noqa: E731
    value, (g, _) = avalon.grad(loss, model, x)
    model.config.scale = -2.0
    value2, (g2, _) = avalon.grad(loss, model, x)
    np.testing.assert_allclose(g2.fc.weight, -2 / 3 * g.fc.weight, rtol=1e-5)
    reasons = [e.reason for e in avalon.explain_cache(model).events]
    assert "`config.scale` 1.0 before, 3.0 now" in reasons[1]
    assert "`config.inner.shift`" in reasons[2]


def test_a_model_in_a_global_rebound_to_another_retraces(data):
    global shared_model
    _, x = data
    shared_model = nn.Linear(3, 2)
    f = avalon.jit(lambda x: shared_model(x))
    np.testing.assert_allclose(f(x), shared_model(x), rtol=1e-6)
    shared_model = nn.Linear(3, 2)
    np.testing.assert_allclose(f(x), x @ shared_model.weight.T + shared_model.bias, rtol=1e-5)


def counting(W, x):
    global calls
    calls += 1  # the traced code's own side effect: not an input, it must not make entries stale
    return (x @ W).sum()


def test_values_the_traced_code_writes_do_not_make_it_stale(data):
    global calls
    W, x = data
    counter = types.SimpleNamespace(n=0)

    def f(W, x):
        counter.n += 1
        return counting(W, x)

    calls = 0
    for _ in range(3):
        avalon.grad(f, W, x)
        avalon.grad(f, W, x[:2])  # two entries: one's trace must not make the other stale
    assert counter.n == 2 and calls == 2


def test_explain_cache_names_new_shapes_and_static_values(data):
    W, x = data
    f = lambda W, x, k: (x @ W).sum() * k  # noqa: E731
    avalon.grad(f, W, x, 2)
    avalon.grad(f, W, x[:2], 2)
    avalon.grad(f, W, x[:2], 3)
    report = avalon.explain_cache(f)
    reasons = [e.reason for e in report.events]
    assert reasons[0] == "first call"
    assert "argument array #1: shape (4, 3) float32 before, (2, 3) float32 now" in reasons[1]
    assert "static values changed" in reasons[2] and "2 before, 3 now" in reasons[2]
    assert repr(report).startswith("explain_cache(") and "3 trace(s)" in repr(report)


def test_a_fresh_lambda_per_call_warns_once_and_frees_its_entries(data):
    W, x = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(12):
            avalon.grad(lambda W, x: (x @ W).sum() * 2, W, x)  # the fix: define it once, outside the loop
    retrace_warnings = [w for w in caught if issubclass(w.category, avalon.RetraceWarning)]
    assert len(retrace_warnings) == 1
    message = str(retrace_warnings[0].message)
    assert "new function object" in message and "outside the loop" in message
    assert retrace_warnings[0].filename == __file__  # points at the user's line
    gc.collect()
    assert len(cache._entries) == 0  # each lambda's entry went with it


def test_a_global_changing_every_step_warns_with_its_name(data):
    global beta
    W, x = data
    try:
        with pytest.warns(avalon.RetraceWarning, match="global `beta`.*np.asarray"):
            for epoch in range(10):
                beta = float(epoch)
                avalon.grad(weighted_loss, W, x)
    finally:
        beta = 0.5


class ClassScaled(nn.Module):
    SCALE = 1.0  # a class attribute read as self.SCALE

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x) * self.SCALE


def test_a_class_attribute_of_a_model_that_changes_retraces(data):
    _, x = data
    model = ClassScaled()
    plain = model.fc(x)
    try:
        np.testing.assert_allclose(model(x), plain, rtol=1e-5)
        ClassScaled.SCALE = 4.0
        np.testing.assert_allclose(model(x), 4 * plain, rtol=1e-5)
        value, (g, _) = avalon.grad(lambda m, x: m(x).sum(), model, x)
        np.testing.assert_allclose(value, 4 * plain.sum(), rtol=1e-5)
        assert "class attribute `ClassScaled.SCALE`" in avalon.explain_cache(model).events[-1].reason
    finally:
        ClassScaled.SCALE = 1.0


def test_explain_cache_names_a_model_that_grew_or_froze_a_weight(data):
    _, x = data
    loss = lambda m, x: m(x).sum()  # noqa: E731
    small, large = nn.Sequential(nn.Linear(3, 3)), nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    avalon.grad(loss, small, x)
    avalon.grad(loss, large, x)
    small[0].weight.requires_grad_(False)
    avalon.grad(loss, small, x)
    reasons = [e.reason for e in avalon.explain_cache(loss).events]
    assert "('1.weight', 'param') added" in reasons[1]
    assert "`0.weight` 'param' before, 'buffer' now" in reasons[2]


log = []


def logging_loss(W, x):
    log.append(x.shape)  # a side effect of the trace: a log it appends to, not an input
    return (x @ W).sum()


def test_a_log_the_traced_code_appends_to_does_not_make_entries_stale(data):
    W, x = data
    log.clear()
    for _ in range(3):
        avalon.grad(logging_loss, W, x)
        avalon.grad(logging_loss, W, x[:2])
    assert log == [(4, 3), (2, 3)]
