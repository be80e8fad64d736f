"""User primitives and rules end to end, and gradcheck catching a wrong rule."""
import inspect

import numpy as np
import pytest

import avalon


@avalon.primitive
def softsign(x):
    return x / (1 + np.abs(x))


@avalon.rule(softsign)
def softsign_vjp(g, out, x):
    return (g / (1 + np.abs(x)) ** 2,)


@avalon.primitive
def squared_wrong(x):
    return x ** 2


@avalon.rule(squared_wrong)
def squared_wrong_vjp(g, out, x):
    return (3 * x * g,)  # deliberately wrong: should be 2 * x * g


@avalon.primitive
def no_rule_here(x):
    return x * 2


def test_custom_primitive_is_one_call_on_the_tape(rng):
    x = rng.standard_normal(4)
    tape = avalon.trace(lambda x: softsign(np.tanh(x)).sum(), x)
    names = [n.prim.name for n in tape.calls]
    assert names == ["tanh", "softsign", "sum"]
    assert "softsign(" in str(tape)


def test_custom_primitive_gradient_passes_gradcheck(rng):
    x = rng.standard_normal((2, 3))
    f = lambda x: (softsign(x * 2.0) ** 2).sum()
    result = avalon.gradcheck(f, x)
    assert result, str(result)
    _, (gx,) = avalon.grad(f, x)
    s = (2 * x) / (1 + np.abs(2 * x))
    np.testing.assert_allclose(gx, 2 * s * 2 / (1 + np.abs(2 * x)) ** 2)


def test_custom_primitive_outside_tracing_just_computes(rng):
    x = rng.standard_normal(3)
    np.testing.assert_allclose(softsign(x), x / (1 + np.abs(x)))


def test_custom_rule_is_differentiated_again(rng):
    x = rng.standard_normal(3)
    second = lambda x: avalon.grad(lambda y: softsign(y).sum(), x)[1][0].sum()
    assert avalon.gradcheck(second, x)


def test_gradcheck_fails_for_a_wrong_rule_and_names_the_worst_element(rng):
    x = np.array([0.5, -2.0, 1.0])
    result = avalon.gradcheck(lambda x: squared_wrong(x).sum(), x)
    assert not result
    assert result.ok is False
    # the error is |3x - 2x| = |x|: largest at index 1
    assert "x[1]" in result.worst and "analytic -6" in result.worst and "numeric -4" in result.worst
    assert result.max_abs_error == pytest.approx(2.0, rel=1e-6)
    assert "MISMATCH" in str(result)


def test_gradcheck_names_holder_arrays_and_restores_them(rng):
    @avalon.register_holder
    class Scale:
        def __init__(self):
            self.w = np.float32(1.5) * np.ones(3, np.float32)

    s = Scale()
    original = s.w
    result = avalon.gradcheck(lambda s: squared_wrong(s.w).sum(), s)
    assert not result and result.worst.startswith("w[")
    assert s.w is original and s.w.dtype == np.float32


def test_gradcheck_of_non_contiguous_arguments(rng):
    W = rng.standard_normal((3, 4)).T  # Fortran-ordered: a flat view of it would be a copy
    assert avalon.gradcheck(lambda W: (np.sin(W) @ np.ones(3)).sum(), W)


def test_a_primitive_without_a_rule_is_an_error_naming_it(rng):
    x = rng.standard_normal(3)
    line = inspect.currentframe().f_lineno + 2
    with pytest.raises(avalon.AvalonError, match="no_rule_here has no differentiation rule") as info:
        avalon.grad(lambda x: no_rule_here(x).sum(), x)
    assert f"{__file__}:{line}" in str(info.value)
    assert "@avalon.rule" in str(info.value)


def test_a_primitive_without_a_rule_is_fine_off_the_gradient_path(rng):
    x, y, i = rng.standard_normal(3), rng.standard_normal(3), np.arange(3)
    f = lambda x, y, i: (x * 2).sum() + no_rule_here(avalon.detach(y)).sum() + no_rule_here(i * 1.5).sum()
    _, (gx, gy, gi) = avalon.grad(f, x, y, i)
    np.testing.assert_allclose(gx, 2.0)
    assert not gy.any() and gi is None


def test_rule_for_an_existing_numpy_function(rng, monkeypatch):
    import math

    from avalon.rules import registry

    # the registration is global: undo it after this test, so numpy's sinc is unruled elsewhere
    monkeypatch.setattr(registry, "_user_primitives", dict(registry._user_primitives))

    @avalon.rule(np.sinc)
    def sinc_vjp(g, out, x):
        px = np.pi * x
        return (g * (np.cos(px) - out) / x,)

    x = rng.uniform(0.5, 1.5, 4)
    assert avalon.gradcheck(lambda x: np.sinc(x).sum(), x)
    assert [n.prim.name for n in avalon.trace(lambda x: np.sinc(x), x).calls] == ["sinc"]
    assert math.isclose(avalon.grad(lambda x: np.sinc(x).sum(), x)[0], np.sinc(x).sum())


def test_rule_returning_a_wrong_shape_is_a_clear_error(rng):
    @avalon.primitive
    def double(x):
        return 2 * x

    @avalon.rule(double)
    def double_vjp(g, out, x):
        return (g.sum(0),)

    with pytest.raises(avalon.GradientError, match=r"rule of double returned a gradient of shape \(3, 4\) for an operand of shape \(2, 3, 4\)"):
        avalon.grad(lambda x: double(x).sum(), rng.standard_normal((2, 3, 4)))


def test_the_decorators_document_themselves():
    assert "@avalon.rule(" in avalon.rule.__doc__ and ">>>" in avalon.rule.__doc__
    assert "@avalon.primitive" in avalon.primitive.__doc__


def test_rule_returning_the_wrong_number_of_gradients_is_a_clear_error(rng):
    @avalon.primitive
    def scaled(x, y):
        return x * y

    @avalon.rule(scaled)
    def scaled_vjp(g, out, x, y):
        return (g * y,)

    with pytest.raises(avalon.GradientError, match="rule of scaled returned 1 gradients for 2 arguments"):
        avalon.grad(lambda x, y: scaled(x, y).sum(), rng.standard_normal(3), rng.standard_normal(3))
