"""erf: scipy-backed and fallback forwards against math.erf, and its rule."""
import math

import numpy as np
import pytest

import avalon
from avalon.ops import special


def _points():
    dense = np.linspace(-7.0, 7.0, 4001)
    near_cut = special._CUT + np.array([-1e-9, 0.0, 1e-9])
    return np.concatenate([dense, near_cut, -near_cut, [0.0, 1e-300, -1e-12, 3e-8, 30.0, -30.0]])


def test_fallback_matches_math_erf_to_float64_precision():
    x = _points()
    expected = np.array([math.erf(v) for v in x])
    got = special.erf_fallback(x)
    relative = np.abs(got - expected) / np.maximum(np.abs(expected), np.finfo(np.float64).tiny)
    assert relative.max() < 2e-15, x[np.argmax(relative)]


def test_fallback_keeps_float32():
    x = np.linspace(-4, 4, 101, dtype=np.float32)
    got = special.erf_fallback(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [math.erf(v) for v in x.astype(np.float64)], rtol=1e-6, atol=1e-7)


def test_primitive_matches_math_erf():
    x = _points()
    np.testing.assert_allclose(special.erf(x), [math.erf(v) for v in x], rtol=2e-15, atol=0)


def test_primitive_without_scipy_uses_the_fallback(monkeypatch):
    monkeypatch.setattr(special, "_fast_erf", lambda xp: None)
    x = np.linspace(-3, 3, 13)
    np.testing.assert_array_equal(special.erf(x), special.erf_fallback(x))


def test_erf_rule_gradcheck_and_second_derivative():
    x = np.linspace(-2.5, 2.5, 11)
    assert avalon.gradcheck(lambda x: special.erf(x).sum(), x)
    first = lambda x: avalon.grad(lambda x: special.erf(x).sum(), x)[1][0].sum()  # noqa: E731
    assert avalon.gradcheck(first, x)


def test_erf_against_torch():
    torch = pytest.importorskip("torch")
    x = np.linspace(-3, 3, 25, dtype=np.float32)
    value, (g,) = avalon.grad(lambda x: (special.erf(x) * np.arange(25, dtype=np.float32)).sum(), x)
    t = torch.tensor(x, requires_grad=True)
    (torch.erf(t) * torch.arange(25, dtype=torch.float32)).sum().backward()
    np.testing.assert_allclose(special.erf(x), torch.erf(t).detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-5, atol=1e-6)
