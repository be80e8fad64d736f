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


def test_rule_for_an_existing_numpy_function(rng, registrations):
    import math

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


# Registering a rule where one exists: it takes effect everywhere, or it is refused; never ignored.

@pytest.fixture
def registrations():
    """Every registration a test makes is undone afterwards (rules are global)."""
    from avalon.ops import PRIMITIVES
    from avalon.rules import registry

    users, primitives = dict(registry._user_primitives), dict(PRIMITIVES)
    builtins, rules = dict(registry._builtin_rules), {p: p.vjp for p in PRIMITIVES.values()}
    yield
    registry._user_primitives.clear()
    registry._user_primitives.update(users)
    registry._builtin_rules.clear()
    registry._builtin_rules.update(builtins)
    PRIMITIVES.clear()
    PRIMITIVES.update(primitives)
    for prim, vjp in rules.items():
        prim.vjp = vjp
    avalon.clear_cache()


def _straight_through(g, out, x):
    return (g,)


def test_a_rule_for_np_tanh_takes_effect_everywhere_tanh_is_recorded(registrations, rng):
    import avalon.nn as nn

    x = rng.standard_normal(4)
    uses = [lambda x: np.tanh(x).sum(), lambda x: avalon.tanh(x).sum(),
            lambda x: x.tanh().sum(), lambda x: nn.Tanh()(x).sum(), lambda x: nn.functional.tanh(x).sum()]
    exact = 1 - np.tanh(x) ** 2
    for use in uses:  # compiled before the registration: the cache must not keep the built-in rule
        np.testing.assert_allclose(avalon.grad(use, x)[1][0], exact)

    avalon.rule(np.tanh)(_straight_through)
    for use in uses:
        value, (gx,) = avalon.grad(use, x)
        np.testing.assert_allclose(gx, np.ones(4))
        assert value == pytest.approx(np.tanh(x).sum())

    avalon.restore_rule(np.tanh)
    for use in uses:
        np.testing.assert_allclose(avalon.grad(use, x)[1][0], exact)


def test_a_rule_for_a_torch_named_function_or_the_primitive_itself_is_the_same_rule(registrations, rng):
    x = rng.standard_normal(3)
    sigmoid = avalon.ops.PRIMITIVES["sigmoid"]
    avalon.rule(avalon.sigmoid)(lambda g, out, x: (2 * g,))
    assert avalon.ops.PRIMITIVES["sigmoid"] is sigmoid  # the built-in primitive keeps its place
    np.testing.assert_allclose(avalon.grad(lambda x: avalon.sigmoid(x).sum(), x)[1][0], 2.0)

    avalon.rule(sigmoid)(lambda g, out, x: (3 * g,))
    np.testing.assert_allclose(avalon.grad(lambda x: avalon.sigmoid(x).sum(), x)[1][0], 3.0)
    avalon.restore_rule(avalon.sigmoid)  # the built-in one, not the first override
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(avalon.grad(lambda x: avalon.sigmoid(x).sum(), x)[1][0], s * (1 - s))


def test_a_rule_for_a_numpy_function_avalon_composes_records_the_users_primitive(registrations, rng):
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    f = lambda x: np.sum(x * x)  # noqa: E731
    np.testing.assert_allclose(avalon.grad(f, x)[1][0], 2 * x)

    @avalon.rule(np.sum)
    def doubled_sum(g, out, x, **params):
        return (2 * g * np.ones_like(x),)

    # named apart from the built-in primitive sum, which keeps its name and place
    assert [n.prim.name for n in avalon.trace(f, x).calls] == ["multiply", "np.sum"]
    assert avalon.ops.PRIMITIVES["sum"].impl is not np.sum
    np.testing.assert_allclose(avalon.grad(f, x)[1][0], 4 * x)

    @avalon.rule(np.hypot)  # a ufunc Avalon writes with other primitives
    def hypot_vjp(g, out, a, b):
        return g * a / out, g * b / out

    h = lambda x, y: np.hypot(x, y).sum()  # noqa: E731
    assert [n.prim.name for n in avalon.trace(h, x, y).calls] == ["hypot", "sum"]
    assert avalon.gradcheck(h, x, y)

    avalon.restore_rule(np.sum)
    assert "np.sum" not in avalon.ops.PRIMITIVES
    assert [n.prim.name for n in avalon.trace(f, x).calls] == ["multiply", "sum"]
    np.testing.assert_allclose(avalon.grad(f, x)[1][0], 2 * x)


def test_a_users_rule_for_their_primitive_replaced_again_retraces(registrations, rng):
    x = rng.standard_normal(3)

    @avalon.primitive
    def twice(x):
        return 2 * x

    avalon.rule(twice)(lambda g, out, x: (2 * g,))
    f = lambda x: twice(x).sum()  # noqa: E731
    np.testing.assert_allclose(avalon.grad(f, x)[1][0], 2.0)
    avalon.rule(twice)(lambda g, out, x: (5 * g,))  # deliberately wrong: it must be the one used
    np.testing.assert_allclose(avalon.grad(f, x)[1][0], 5.0)


@pytest.mark.parametrize("target, says", [
    (avalon.softmax, "Avalon's own function"),
    (lambda x: x, "neither a primitive nor a numpy function"),
    (inspect.getdoc, "neither a primitive nor a numpy function"),
    (np.floor, "floor is marked not differentiable"),
    ("argmax", "argmax is marked not differentiable"),
])
def test_a_rule_that_could_never_run_is_refused_with_the_rewrite(registrations, target, says):
    target = avalon.ops.PRIMITIVES[target] if isinstance(target, str) else target
    before = {name: p.vjp for name, p in avalon.ops.PRIMITIVES.items()}
    with pytest.raises(avalon.RuleError, match=says) as info:
        avalon.rule(target)(_straight_through)
    assert "fix:" in str(info.value) and "avalon.primitive(" in info.value.fix
    assert {name: p.vjp for name, p in avalon.ops.PRIMITIVES.items()} == before


def test_avalons_own_function_points_at_the_primitive_it_records(registrations):
    with pytest.raises(avalon.RuleError, match=r"@avalon\.rule\(avalon\.softmax\)") as info:
        avalon.rule(avalon.softmax)
    assert "@avalon.rule(avalon.ops.PRIMITIVES['softmax'])" in info.value.fix


def test_a_user_primitive_named_like_a_built_in_one_is_refused_naming_both(registrations):
    tanh = avalon.ops.PRIMITIVES["tanh"]
    with pytest.raises(avalon.RuleError) as info:
        @avalon.primitive
        def tanh_ish(x):
            return x

        avalon.primitive(tanh_ish, name="tanh")
    message = str(info.value)
    assert "tanh_ish" in message and "avalon.ops.PRIMITIVES['tanh']" in message and "name='my_tanh'" in message
    assert avalon.ops.PRIMITIVES["tanh"] is tanh

    with pytest.raises(avalon.RuleError, match="built-in primitive avalon.ops.PRIMITIVES\\['exp'\\]"):
        @avalon.primitive
        def exp(x):
            return x

    def again():  # a user's own primitive may be defined again (a notebook cell run twice)
        @avalon.primitive(name="my_exp")
        def my_exp(x):
            return x + 1
        return my_exp

    first, second = again(), again()
    assert avalon.ops.PRIMITIVES["my_exp"] is second is not first


def test_restoring_what_was_not_overridden_is_refused(registrations):
    with pytest.raises(avalon.RuleError, match="nothing to restore"):
        avalon.restore_rule(np.tanh)
