"""The compile cache: what retraces and what replays (Python side effects count the traces)."""
import numpy as np
import pytest

import avalon


class Counter:
    def __init__(self):
        self.traces = 0


def counted(body):
    """body(*args) wrapped so that each trace (and only a trace) bumps `.calls.traces`."""
    calls = Counter()

    def f(*args, **kwargs):
        calls.traces += 1  # a Python side effect: runs only while tracing
        return body(*args, **kwargs)

    f.calls = calls
    return f


def test_same_signature_replays_without_tracing(rng):
    f = counted(lambda W, x: np.tanh(x @ W).sum())
    W, x = rng.standard_normal((3, 2)), rng.standard_normal((4, 3))
    values = [avalon.grad(f, W, x * k)[0] for k in (1.0, 2.0, 3.0)]
    assert f.calls.traces == 1
    np.testing.assert_allclose(values, [np.tanh(x * k @ W).sum() for k in (1.0, 2.0, 3.0)])


def test_changing_a_shape_or_dtype_retraces(rng):
    f = counted(lambda x: (x ** 2).sum())
    avalon.grad(f, rng.standard_normal(3))
    avalon.grad(f, rng.standard_normal(4))
    assert f.calls.traces == 2
    avalon.grad(f, rng.standard_normal(4).astype(np.float32))
    assert f.calls.traces == 3
    avalon.grad(f, rng.standard_normal(3))
    assert f.calls.traces == 3


def test_static_values_are_in_the_key(rng):
    f = counted(lambda x, scale, mode, flag: ((x * scale) if flag else x).sum() * (2.0 if mode == "double" else 1.0))
    x = rng.standard_normal(3)
    value, _ = avalon.grad(f, x, 2.0, "double", True)
    assert np.isclose(value, 4 * x.sum()) and f.calls.traces == 1
    avalon.grad(f, x, 2.0, "double", True)
    assert f.calls.traces == 1
    value, _ = avalon.grad(f, x, 3.0, "double", True)
    assert np.isclose(value, 6 * x.sum()) and f.calls.traces == 2
    value, _ = avalon.grad(f, x, 3.0, "single", True)
    assert np.isclose(value, 3 * x.sum()) and f.calls.traces == 3
    value, _ = avalon.grad(f, x, 3.0, "single", False)
    assert np.isclose(value, x.sum()) and f.calls.traces == 4


def test_equal_numbers_of_different_types_are_different_keys(rng):
    f = counted(lambda x, k: (x * k).sum())
    x = np.arange(3)  # integer: x * 2 stays integer, x * 2.0 does not
    avalon.jit(f)(x, 2)
    out = avalon.jit(f)(x, 2.0)
    assert f.calls.traces == 2 and out.dtype == np.float64


def test_unhashable_static_values_are_keyed_by_value(rng):
    f = counted(lambda x, where: x[where].sum())
    x = rng.standard_normal(5)
    assert np.isclose(avalon.grad(f, x, slice(0, 2))[0], x[:2].sum())
    assert np.isclose(avalon.grad(f, x, slice(1, 4))[0], x[1:4].sum())
    assert np.isclose(avalon.grad(f, x, slice(1, 4))[0], x[1:4].sum())
    assert f.calls.traces == 2


@avalon.register_holder
class Affine:
    def __init__(self, rng):
        self.weight = rng.standard_normal((2, 3))
        self.scale = 1.0
        self.activation = "tanh"
        self.sizes = [2, 3]

    def __call__(self, x):
        h = x @ self.weight.T * self.scale
        return np.tanh(h) if self.activation == "tanh" else np.sin(h)


def test_changing_a_holders_non_array_attribute_retraces(rng):
    f = counted(lambda model, x: model(x).sum())
    model, x = Affine(rng), rng.standard_normal((4, 3))
    avalon.grad(f, model, x)
    avalon.grad(f, model, x)
    assert f.calls.traces == 1
    model.scale = 2.0
    value, _ = avalon.grad(f, model, x)
    assert f.calls.traces == 2 and np.isclose(value, np.tanh(2 * x @ model.weight.T).sum())
    model.activation = "sin"
    value, _ = avalon.grad(f, model, x)
    assert f.calls.traces == 3 and np.isclose(value, np.sin(2 * x @ model.weight.T).sum())
    model.sizes.append(4)  # a list attribute, changed in place
    avalon.grad(f, model, x)
    assert f.calls.traces == 4
    model.weight = rng.standard_normal((2, 3))  # a new array of the same shape: a replay
    value, _ = avalon.grad(f, model, x)
    assert f.calls.traces == 4 and np.isclose(value, np.sin(2 * x @ model.weight.T).sum())


def test_jit_traces_once_per_signature(rng):
    calls = Counter()

    @avalon.jit
    def predict(W, x, activation="tanh"):
        calls.traces += 1
        h = x @ W
        return np.tanh(h) if activation == "tanh" else np.maximum(h, 0.0)

    W, x = rng.standard_normal((3, 2)), rng.standard_normal((4, 3))
    np.testing.assert_allclose(predict(W, x), np.tanh(x @ W))
    np.testing.assert_allclose(predict(W, x + 1), np.tanh((x + 1) @ W))
    assert calls.traces == 1
    np.testing.assert_allclose(predict(W, x, activation="relu"), np.maximum(x @ W, 0))
    assert calls.traces == 2
    np.testing.assert_allclose(predict(W, x[:2]), np.tanh(x[:2] @ W))
    assert calls.traces == 3
    assert predict.__name__ == "predict"


def test_jit_returns_structures_and_statics(rng):
    f = avalon.jit(lambda x: {"double": x * 2, "pair": (x + 1, "label")})
    x = rng.standard_normal(3)
    for _ in range(2):
        out = f(x)
        np.testing.assert_allclose(out["double"], 2 * x)
        np.testing.assert_allclose(out["pair"][0], x + 1)
        assert out["pair"][1] == "label"


def test_jit_outputs_are_fresh(rng):
    f = avalon.jit(lambda x: (x.reshape(3), np.ones(3)))  # a view of the input, and a constant
    x = rng.standard_normal((1, 3))
    for _ in range(2):
        view, ones = f(x)
        assert not np.shares_memory(view, x)
        ones[:] = 5.0
    np.testing.assert_array_equal(f(x)[1], np.ones(3))


def test_unhashable_callables_are_cached_by_identity(rng):
    class Loss:
        __hash__ = None  # e.g. a dataclass with eq=True

        def __init__(self):
            self.traces = 0

        def __call__(self, x):
            self.traces += 1
            return (x * x).sum()

        def method(self, x):
            self.traces += 1
            return (x * 3).sum()

    loss, x = Loss(), rng.standard_normal(3)
    for _ in range(3):
        avalon.grad(loss, x)
        avalon.grad(loss.method, x)  # a new bound-method object each time
    assert loss.traces == 2
    other = Loss()
    avalon.grad(other, x)
    assert other.traces == 1


def test_clear_cache_forces_a_trace(rng):
    f = counted(lambda x: x.sum())
    x = rng.standard_normal(2)
    avalon.grad(f, x)
    avalon.clear_cache()
    avalon.grad(f, x)
    assert f.calls.traces == 2


def test_an_error_while_tracing_caches_nothing(rng):
    f = counted(lambda x: x * 2)
    x = rng.standard_normal(3)
    for _ in range(2):
        with pytest.raises(avalon.GradientError):
            avalon.grad(f, x)
    assert f.calls.traces == 2


def test_jit_with_array_keyword_arguments(rng):
    f = counted(lambda x, *, bias, scale=1.0: np.tanh(x + bias) * scale)
    jitted = avalon.jit(f)
    x, b = rng.standard_normal(3), rng.standard_normal(3)
    np.testing.assert_allclose(jitted(x, bias=b), np.tanh(x + b))
    np.testing.assert_allclose(jitted(x, bias=2 * b), np.tanh(x + 2 * b))
    np.testing.assert_allclose(jitted(x, bias=b, scale=3.0), 3 * np.tanh(x + b))
    assert f.calls.traces == 2
