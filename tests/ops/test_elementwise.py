"""Elementwise primitives: values and gradients against finite differences and PyTorch."""
import numpy as np
import pytest
from opcheck import check_fd, check_torch, sample

import avalon


def torch():
    """PyTorch, imported only by the parity tests (which are skipped without it)."""
    return pytest.importorskip("torch")


# (id, numpy-style user code, the same in PyTorch, input domain)
UNARY = [
    ("exp", np.exp, lambda t: t.exp(), "real"),
    ("exp2", np.exp2, lambda t: t.exp2(), "real"),
    ("log", np.log, lambda t: t.log(), "pos"),
    ("log2", np.log2, lambda t: t.log2(), "pos"),
    ("log10", np.log10, lambda t: t.log10(), "pos"),
    ("log1p", np.log1p, lambda t: t.log1p(), "pos"),
    ("expm1", np.expm1, lambda t: t.expm1(), "real"),
    ("sqrt", np.sqrt, lambda t: t.sqrt(), "pos"),
    ("square", np.square, lambda t: t.square(), "real"),
    ("reciprocal", np.reciprocal, lambda t: t.reciprocal(), "away"),
    ("abs", np.abs, lambda t: t.abs(), "away"),
    ("abs-operator", abs, abs, "away"),
    ("negative", np.negative, lambda t: t.neg(), "real"),
    ("neg-operator", lambda x: -x, lambda t: -t, "real"),
    ("positive-operator", lambda x: +x, lambda t: +t, "real"),
    ("sign", np.sign, lambda t: t.sign(), "away"),
    ("sin", np.sin, lambda t: t.sin(), "real"),
    ("cos", np.cos, lambda t: t.cos(), "real"),
    ("tan", np.tan, lambda t: t.tan(), "unit"),
    ("arcsin", np.arcsin, lambda t: t.arcsin(), "unit"),
    ("arccos", np.arccos, lambda t: t.arccos(), "unit"),
    ("arctan", np.arctan, lambda t: t.arctan(), "real"),
    ("sinh", np.sinh, lambda t: t.sinh(), "real"),
    ("cosh", np.cosh, lambda t: t.cosh(), "real"),
    ("tanh", np.tanh, lambda t: t.tanh(), "real"),
    ("arcsinh", np.arcsinh, lambda t: t.arcsinh(), "real"),
    ("arccosh", np.arccosh, lambda t: t.arccosh(), "gt1"),
    ("arctanh", np.arctanh, lambda t: t.arctanh(), "unit"),
    ("sigmoid", avalon.sigmoid, lambda t: t.sigmoid(), "real"),
    ("relu", avalon.relu, lambda t: t.relu(), "away"),
    ("floor", np.floor, lambda t: t.floor(), "real"),
    ("ceil", np.ceil, lambda t: t.ceil(), "real"),
    ("trunc", np.trunc, lambda t: t.trunc(), "real"),
    ("rint", np.rint, lambda t: t.round(), "real"),
]

# (id, user code, PyTorch code, domain of a, domain of b)
BINARY = [
    ("add", lambda a, b: a + b, lambda a, b: a + b, "real", "real"),
    ("subtract", lambda a, b: a - b, lambda a, b: a - b, "real", "real"),
    ("multiply", lambda a, b: a * b, lambda a, b: a * b, "real", "real"),
    ("divide", lambda a, b: a / b, lambda a, b: a / b, "real", "away"),
    ("power", lambda a, b: a ** b, lambda a, b: a ** b, "pos", "real"),
    ("remainder", lambda a, b: a % b, lambda a, b: a % b, "real", "away"),
    ("np.add", np.add, lambda a, b: a + b, "real", "real"),
    ("np.subtract", np.subtract, lambda a, b: a - b, "real", "real"),
    ("np.multiply", np.multiply, lambda a, b: a * b, "real", "real"),
    ("np.divide", np.divide, lambda a, b: a / b, "real", "away"),
    ("np.power", np.power, lambda a, b: a ** b, "pos", "real"),
    ("np.remainder", np.remainder, lambda a, b: a % b, "real", "away"),
    ("maximum", np.maximum, lambda a, b: a.maximum(b), "real", "real"),  # no ties (tested apart)
    ("minimum", np.minimum, lambda a, b: a.minimum(b), "real", "real"),
    ("arctan2", np.arctan2, lambda a, b: a.atan2(b), "real", "away"),
]

SHAPE_PAIRS = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((3, 4), ()), ((), (2, 3))]

COMPARISONS = [
    ("equal", lambda a, b: a == b, lambda a, b: a == b),
    ("not_equal", lambda a, b: a != b, lambda a, b: a != b),
    ("less", lambda a, b: a < b, lambda a, b: a < b),
    ("less_equal", lambda a, b: a <= b, lambda a, b: a <= b),
    ("greater", lambda a, b: a > b, lambda a, b: a > b),
    ("greater_equal", lambda a, b: a >= b, lambda a, b: a >= b),
]


def _ids(table):
    return [row[0] for row in table]


@pytest.mark.parametrize("name, fn, torch_fn, domain", UNARY, ids=_ids(UNARY))
def test_unary_finite_differences(name, fn, torch_fn, domain, rng):
    check_fd(fn, sample(domain, (3, 4), rng))


@pytest.mark.parametrize("name, fn, torch_fn, domain", UNARY, ids=_ids(UNARY))
def test_unary_matches_torch(name, fn, torch_fn, domain, rng):
    check_torch(fn, torch_fn, sample(domain, (3, 4), rng))


def _gradient_of(fn, weights):
    """x -> the gradient of sum(fn(x) * weights): differentiating it checks the rule's own rule."""
    def gradient(*args):
        return avalon.grad(lambda *a: (fn(*a) * weights).sum(), *args)[1]

    return gradient


@pytest.mark.parametrize("name, fn, torch_fn, domain", UNARY, ids=_ids(UNARY))
def test_unary_second_derivatives(name, fn, torch_fn, domain, rng):
    check_fd(_gradient_of(fn, sample("real", (3, 4), rng)), sample(domain, (3, 4), rng))


@pytest.mark.parametrize("name, fn, torch_fn, da, db", BINARY, ids=_ids(BINARY))
def test_binary_second_derivatives(name, fn, torch_fn, da, db, rng):
    check_fd(_gradient_of(fn, sample("real", (3, 4), rng)), sample(da, (3, 1), rng), sample(db, (1, 4), rng))


@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
@pytest.mark.parametrize("name, fn, torch_fn, da, db", BINARY, ids=_ids(BINARY))
def test_binary_finite_differences(name, fn, torch_fn, da, db, shapes, rng):
    check_fd(fn, sample(da, shapes[0], rng), sample(db, shapes[1], rng))


@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
@pytest.mark.parametrize("name, fn, torch_fn, da, db", BINARY, ids=_ids(BINARY))
def test_binary_matches_torch(name, fn, torch_fn, da, db, shapes, rng):
    check_torch(fn, torch_fn, sample(da, shapes[0], rng), sample(db, shapes[1], rng))


# Python scalars on either side: values, gradients and (NEP 50) no upcast of float32
SCALAR_CASES = [
    ("x+2.5", lambda x: x + 2.5), ("2.5+x", lambda x: 2.5 + x), ("x-3", lambda x: x - 3),
    ("3-x", lambda x: 3 - x), ("x*-1.5", lambda x: x * -1.5), ("2*x", lambda x: 2 * x),
    ("x/4", lambda x: x / 4), ("1.5/x", lambda x: 1.5 / x), ("x**2", lambda x: x ** 2),
    ("x**3", lambda x: x ** 3), ("x**0.5", lambda x: x ** 0.5), ("x**-1", lambda x: x ** -1),
    ("2.0**x", lambda x: 2.0 ** x), ("x%0.7", lambda x: x % 0.7),
    # PyTorch differentiates `tensor % tensor` only, so its side fills 5.0 into a tensor
    ("5.0%x", lambda x: 5.0 % x, lambda t: t.new_full(t.shape, 5.0) % t),
]


@pytest.mark.parametrize("case", SCALAR_CASES, ids=[c[0] for c in SCALAR_CASES])
def test_python_scalar_operands(case, rng):
    fn, torch_fn = case[1], case[-1]
    x = sample("pos", (2, 3), rng)
    check_fd(fn, x)
    check_torch(fn, torch_fn, x)


@pytest.mark.parametrize("fn, torch_fn", [(lambda x: np.maximum(x, 1.0), lambda t: t.clamp(min=1.0)),
                                          (lambda x: np.minimum(2, x), lambda t: t.clamp(max=2.0))])
def test_maximum_minimum_with_a_python_scalar(fn, torch_fn, rng):
    x = sample("distinct", (3, 4), rng) + 0.95  # no element equals a bound
    check_fd(fn, x)
    check_torch(fn, torch_fn, x)


@pytest.mark.parametrize("name, fn, torch_fn", COMPARISONS, ids=_ids(COMPARISONS))
def test_comparisons_match_torch(name, fn, torch_fn, rng):
    a = np.round(sample("real", (3, 4), rng), 1)
    b = a.copy()
    b[0] += 1.0  # some equal, some different
    b[1] -= 1.0
    check_torch(fn, torch_fn, a, b)
    check_torch(lambda x: fn(x, 0.0), lambda x: torch_fn(x, 0.0), a)


@pytest.mark.parametrize("name, fn, torch_fn", COMPARISONS, ids=_ids(COMPARISONS))
def test_masks_from_comparisons_carry_gradients(name, fn, torch_fn, rng):
    a, b = sample("distinct", (3, 4), rng), sample("distinct", (3, 4), rng) + 0.1  # no ties
    check_fd(lambda a, b: a * fn(a, b) + b * fn(b, a), a, b)
    check_torch(lambda a, b: a * fn(a, b) + b * fn(b, a), lambda a, b: a * fn(a, b) + b * fn(b, a), a, b)


LOGICAL = [
    ("logical_and", np.logical_and, lambda a, b: a.logical_and(b)),
    ("logical_or", np.logical_or, lambda a, b: a.logical_or(b)),
    ("logical_xor", np.logical_xor, lambda a, b: a.logical_xor(b)),
    ("logical_not", lambda a, b: np.logical_not(a), lambda a, b: a.logical_not()),
    ("&", lambda a, b: a & b, lambda a, b: a & b),
    ("|", lambda a, b: a | b, lambda a, b: a | b),
    ("^", lambda a, b: a ^ b, lambda a, b: a ^ b),
    ("~", lambda a, b: ~a, lambda a, b: ~a),
]


@pytest.mark.parametrize("name, fn, torch_fn", LOGICAL, ids=_ids(LOGICAL))
def test_logical_ops_on_booleans_match_torch(name, fn, torch_fn, rng):
    check_torch(fn, torch_fn, rng.random((3, 4)) > 0.5, rng.random((1, 4)) > 0.5)


@pytest.mark.parametrize("name, fn, torch_fn", LOGICAL[4:], ids=_ids(LOGICAL[4:]))
def test_bitwise_ops_on_integers_match_torch(name, fn, torch_fn, rng):
    check_torch(fn, torch_fn, rng.integers(-8, 8, (3, 4)), rng.integers(-8, 8, (1, 4)))


def test_masks_combined_with_logical_ops_select_gradients(rng):
    x = sample("away", (3, 4), rng)

    def fn(x):
        inside = np.logical_and(x > -1, ~(x > 1))
        return np.where(inside | (x < -1.5), x * x, x * 3.0)

    check_fd(fn, x)
    check_torch(fn, lambda t: torch().where(((t > -1) & ~(t > 1)) | (t < -1.5), t * t, t * 3.0), x)


def test_isfinite_matches_torch():
    x = np.array([1.0, np.inf, -np.inf, np.nan, 0.0, -2.5])
    check_torch(np.isfinite, lambda t: t.isfinite(), x)
    check_torch(np.isnan, lambda t: t.isnan(), x)
    check_torch(np.isinf, lambda t: t.isinf(), x)
    # the usual masking pattern: gradient flows only to the finite entries
    check_torch(lambda x: np.where(np.isfinite(x), x, 0.0) * 3.0,
                lambda t: t.nan_to_num(0.0, 0.0, 0.0) * 3.0, x)


@pytest.mark.parametrize("maximum", [True, False])
def test_maximum_minimum_ties_split_the_gradient(maximum, rng):
    a = sample("real", (3, 4), rng)
    b = a.copy()
    b[1] += 1.0
    b[2] -= 1.0
    fn = np.maximum if maximum else np.minimum
    _, (ga, gb) = avalon.grad(lambda a, b: fn(a, b).sum(), a, b)
    np.testing.assert_array_equal(ga[0], 0.5)
    np.testing.assert_array_equal(gb[0], 0.5)
    check_torch(fn, lambda a, b: a.maximum(b) if maximum else a.minimum(b), a, b)


def test_floor_divide_and_remainder_follow_numpy_on_integers():
    a = np.array([[7, -7, 7, -7, 0, 5]], dtype=np.int64)
    b = np.array([[2, 2, -2, -2, 3, 5]], dtype=np.int64)
    for fn in (lambda a, b: a // b, lambda a, b: a % b, np.floor_divide, np.remainder,
               lambda a, b: a // 3, lambda a, b: -7 % b):
        traced = avalon.jit(fn)
        for _ in range(2):  # traced, then replayed
            got = traced(a, b)
            expected = fn(a, b)
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, expected)


def test_floor_divide_matches_torch_and_has_zero_gradient(rng):
    a, b = sample("real", (3, 4), rng) * 3, sample("away", (3, 4), rng)
    _, (ga, gb) = avalon.grad(lambda a, b: (a // b * 2.0 + a).sum(), a, b)
    np.testing.assert_array_equal(ga, np.ones_like(a))
    np.testing.assert_array_equal(gb, np.zeros_like(b))
    check_torch(lambda a, b: a // b, lambda a, b: a.detach() // b.detach(), a, b)


def test_power_edge_cases_match_torch(rng):
    x = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
    e = np.array([1.0, 2.0, 0.0, 0.5, 3.0])
    check_fd(lambda x, e: x ** e, x, e)
    check_fd(lambda x: x ** 0, x)
    check_torch(lambda x, e: x ** e, lambda x, e: x ** e, x, e)  # base 0: no gradient to the exponent
    check_torch(lambda x: x ** 0, lambda x: x ** 0, x)  # exponent 0 at base 0: gradient 0, not NaN
    check_torch(lambda x: x ** 0.0, lambda x: x ** 0.0, x)
    check_torch(lambda x: x ** 2, lambda x: x ** 2, x)
    check_torch(lambda x: x ** 1.0, lambda x: x ** 1.0, x)
    negative = np.array([-2.0, -0.5, 1.5])
    check_torch(lambda x: x ** 3, lambda x: x ** 3, negative)
    check_torch(lambda x: x ** 2.0, lambda x: x ** 2.0, negative)


# clip / clamp

CLIP_CASES = [
    ("scalars", lambda x: np.clip(x, -0.5, 0.7), lambda t: t.clamp(-0.5, 0.7)),
    ("lower only", lambda x: np.clip(x, -0.5, None), lambda t: t.clamp(min=-0.5)),
    ("upper only", lambda x: np.clip(x, None, 0.7), lambda t: t.clamp(max=0.7)),
    ("avalon.clamp", lambda x: avalon.clamp(x, min=-0.5, max=0.7), lambda t: t.clamp(-0.5, 0.7)),
]


def test_clip_at_its_bounds_matches_torch():
    x = np.array([[-0.5, 0.7, 0.0, -0.6, 0.8]])  # exactly at each bound, inside, below, above
    check_torch(lambda x: np.clip(x, -0.5, 0.7), lambda t: t.clamp(-0.5, 0.7), x)
    lo, hi = np.full((1, 5), -0.5), np.full((1, 5), 0.7)
    check_torch(np.clip, lambda x, lo, hi: x.clamp(lo, hi), x, lo, hi)


@pytest.mark.parametrize("name, fn, torch_fn", CLIP_CASES, ids=_ids(CLIP_CASES))
def test_clip_with_scalar_bounds(name, fn, torch_fn, rng):
    x = sample("distinct", (3, 4), rng)
    check_fd(fn, x)
    check_torch(fn, torch_fn, x)


def test_clip_with_array_bounds_differentiates_all_three(rng):
    x = sample("distinct", (3, 4), rng)
    lo = -np.abs(sample("distinct", (3, 1), rng)) * 0.5 - 0.05
    hi = np.abs(sample("distinct", (1, 4), rng)) * 0.5 + 0.05
    check_fd(np.clip, x, lo, hi)
    check_torch(np.clip, lambda x, lo, hi: x.clamp(lo, hi), x, lo, hi)
    check_torch(lambda x, lo: np.clip(x, lo, None), lambda x, lo: x.clamp(min=lo), x, lo)
    check_torch(lambda x, hi: np.clip(x, None, hi), lambda x, hi: x.clamp(max=hi), x, hi)


# where

WHERE_CASES = [
    ("arrays", lambda c, a, b: np.where(c, a, b), lambda c, a, b: torch().where(c, a, b)),
    ("scalar else", lambda c, a, b: np.where(c, a, 0.0) + b, lambda c, a, b: torch().where(c, a, 0.0) + b),
    ("scalar then", lambda c, a, b: np.where(c, 1.5, a) * b, lambda c, a, b: torch().where(c, 1.5, a) * b),
    ("both scalars", lambda c, a, b: np.where(c, 2.0, -1.0) * a * b,
     lambda c, a, b: torch().where(c, 2.0, -1.0) * a * b),
    ("avalon.where", lambda c, a, b: avalon.where(c, a, b), lambda c, a, b: torch().where(c, a, b)),
]


@pytest.mark.parametrize("name, fn, torch_fn", WHERE_CASES, ids=_ids(WHERE_CASES))
def test_where(name, fn, torch_fn, rng):
    c = rng.random((3, 1)) > 0.5
    c[0] = True
    c[1] = False
    a, b = sample("real", (1, 4), rng), sample("real", (3, 4), rng)
    check_fd(fn, c, a, b)
    check_torch(fn, torch_fn, c, a, b)


def test_where_with_a_traced_condition(rng):
    x = sample("away", (3, 4), rng)
    fn = lambda x: np.where(x > 0, np.sin(x), x * x)  # noqa: E731
    check_fd(fn, x)
    check_torch(fn, lambda t: torch().where(t > 0, t.sin(), t * t), x)


# astype

@pytest.mark.parametrize("source, target", [(np.float32, np.float64), (np.float64, np.float32),
                                            (np.float32, np.float32)])
def test_astype_gradient_comes_back_in_the_source_dtype(source, target, rng):
    x = sample("real", (3, 4), rng).astype(source)
    w = sample("real", (3, 4), rng).astype(target)
    value, (g,) = avalon.grad(lambda x: (x.astype(target) * w).sum(), x)
    assert value.dtype == target
    assert g.dtype == source
    np.testing.assert_allclose(g, w.astype(source), rtol=1e-6)


def test_astype_to_integer_stops_the_gradient(rng):
    x = sample("real", (3, 4), rng) * 3
    value, (g,) = avalon.grad(lambda x: (x.astype(np.int64) * 2.0).sum() + x.sum(), x)
    np.testing.assert_allclose(value, (x.astype(np.int64) * 2.0).sum() + x.sum())
    np.testing.assert_array_equal(g, np.ones_like(x))


def test_astype_matches_torch(rng):
    x = sample("real", (3, 4), rng)
    check_torch(lambda x: np.exp(x.astype(np.float64)) * 2.0, lambda t: t.double().exp() * 2.0, x)
