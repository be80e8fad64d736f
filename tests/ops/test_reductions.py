"""Reductions (axis, keepdims, ddof) and scans: values and gradients against finite differences and PyTorch."""
import numpy as np
import pytest
from opcheck import check_fd, check_torch, sample

import avalon
from avalon.ops import reduce as rd


def over(reduce_last, axis, keepdims):
    """A PyTorch reduction over numpy-style `axis` (None, int or tuple): the reduced axes are moved
    last and flattened, so `reduce_last(t)` (reducing dim -1) serves every axis combination."""
    def torch_fn(t):
        axes = tuple(range(t.ndim)) if axis is None else tuple(
            a % t.ndim for a in ((axis,) if isinstance(axis, int) else axis))
        rest = [i for i in range(t.ndim) if i not in axes]
        flat = t.permute(*rest, *axes).reshape(*[t.shape[i] for i in rest], -1)
        out = reduce_last(flat)
        if keepdims:
            out = out.reshape([1 if i in axes else n for i, n in enumerate(t.shape)])
        return out

    return torch_fn


# (id, user code f(x, axis, keepdims), PyTorch reduction of the last dim, domain)
REDUCTIONS = [
    ("sum", lambda x, a, k: np.sum(x, axis=a, keepdims=k), lambda t: t.sum(-1), "real"),
    ("mean", lambda x, a, k: np.mean(x, axis=a, keepdims=k), lambda t: t.mean(-1), "real"),
    ("prod", lambda x, a, k: np.prod(x, axis=a, keepdims=k), lambda t: t.prod(-1), "real"),
    ("max", lambda x, a, k: np.max(x, axis=a, keepdims=k), lambda t: t.amax(-1), "distinct"),
    ("min", lambda x, a, k: np.min(x, axis=a, keepdims=k), lambda t: t.amin(-1), "distinct"),
    ("var", lambda x, a, k: np.var(x, axis=a, keepdims=k), lambda t: t.var(-1, correction=0), "real"),
    ("var ddof=1", lambda x, a, k: np.var(x, axis=a, keepdims=k, ddof=1),
     lambda t: t.var(-1, correction=1), "real"),
    ("std", lambda x, a, k: np.std(x, axis=a, keepdims=k), lambda t: t.std(-1, correction=0), "real"),
    ("std ddof=1", lambda x, a, k: np.std(x, axis=a, keepdims=k, ddof=1),
     lambda t: t.std(-1, correction=1), "real"),
    ("std ddof=2", lambda x, a, k: np.std(x, axis=a, keepdims=k, ddof=2),
     lambda t: t.std(-1, correction=2), "real"),
    ("logsumexp", lambda x, a, k: avalon.logsumexp(x, a, k), lambda t: t.logsumexp(-1), "real"),
    # torch spellings (dim, keepdim, correction): unbiased by default, as torch
    ("avalon.sum", lambda x, a, k: avalon.sum(x, a, keepdim=k), lambda t: t.sum(-1), "real"),
    ("avalon.amax", lambda x, a, k: avalon.amax(x, a, keepdim=k), lambda t: t.amax(-1), "distinct"),
    ("avalon.var", lambda x, a, k: avalon.var(x, a, keepdim=k), lambda t: t.var(-1), "real"),
    ("avalon.std", lambda x, a, k: avalon.std(x, a, keepdim=k, correction=0),
     lambda t: t.std(-1, correction=0), "real"),
]
AXES = [None, 0, -1, (0, 2), (2, 0), (0, 1, 2)]


def _ids(table):
    return [row[0] for row in table]


@pytest.mark.parametrize("keepdims", [False, True], ids=["", "keepdims"])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name, fn, torch_last, domain", REDUCTIONS, ids=_ids(REDUCTIONS))
def test_reduction_finite_differences(name, fn, torch_last, domain, axis, keepdims, rng):
    check_fd(lambda x: fn(x, axis, keepdims), sample(domain, (3, 2, 4), rng))


@pytest.mark.parametrize("keepdims", [False, True], ids=["", "keepdims"])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name, fn, torch_last, domain", REDUCTIONS, ids=_ids(REDUCTIONS))
def test_reduction_matches_torch(name, fn, torch_last, domain, axis, keepdims, rng):
    check_torch(lambda x: fn(x, axis, keepdims), over(torch_last, axis, keepdims), sample(domain, (3, 2, 4), rng))


@pytest.mark.parametrize("name, fn, torch_last, domain", REDUCTIONS, ids=_ids(REDUCTIONS))
def test_reduction_second_derivatives(name, fn, torch_last, domain, rng):
    weights = sample("real", (2,), rng)

    def gradient(x):
        return avalon.grad(lambda y: (fn(y, (0, 2), False) ** 2 * weights).sum(), x)[1][0]

    check_fd(gradient, sample(domain, (3, 2, 4), rng))


def test_empty_axis_tuple_reduces_nothing(rng):
    x = sample("distinct", (2, 3), rng)
    reductions = (np.sum, np.mean, np.prod, np.max, np.min)
    for fn in reductions:
        check_fd(lambda x: fn(x, axis=()), x)
    for fn in reductions:
        check_torch(lambda x: fn(x, axis=()), lambda t: t * 1.0, x)


@pytest.mark.parametrize("name, fn, torch_last", [
    ("max", lambda x, a, k: np.max(x, axis=a, keepdims=k), lambda t: t.amax(-1)),
    ("min", lambda x, a, k: np.min(x, axis=a, keepdims=k), lambda t: t.amin(-1)),
])
@pytest.mark.parametrize("axis", [None, 1, (0, 1)], ids=str)
def test_max_min_ties_share_the_gradient_like_amax(name, fn, torch_last, axis, rng):
    x = np.array([[1.0, 3.0, 3.0, -2.0], [-2.0, 0.5, -2.0, -2.0], [3.0, 1.0, 0.0, 3.0]])
    check_torch(lambda x: fn(x, axis, False), over(torch_last, axis, False), x)


ARG_REDUCTIONS = [
    ("argmax", np.argmax, lambda t, d, k: t.argmax(d, keepdim=k)),
    ("argmin", np.argmin, lambda t, d, k: t.argmin(d, keepdim=k)),
    ("avalon.argmax", lambda x, axis, keepdims: avalon.argmax(x, axis, keepdims),
     lambda t, d, k: t.argmax(d, keepdim=k)),
]


@pytest.mark.parametrize("keepdims", [False, True], ids=["", "keepdims"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1], ids=str)
@pytest.mark.parametrize("name, fn, torch_fn", ARG_REDUCTIONS, ids=_ids(ARG_REDUCTIONS))
def test_arg_reductions_match_torch(name, fn, torch_fn, axis, keepdims, rng):
    x = sample("distinct", (3, 4, 2), rng)
    if axis is None and keepdims:  # torch keeps no dims for a flattened argmax; numpy keeps them all
        check_torch(lambda x: fn(x, axis=None, keepdims=True), lambda t: torch_fn(t, None, False).reshape(1, 1, 1), x)
    else:
        check_torch(lambda x: fn(x, axis=axis, keepdims=keepdims), lambda t: torch_fn(t, axis, keepdims), x)


def test_arg_reductions_select_values_that_carry_gradients(rng):
    x = sample("distinct", (3, 4), rng)

    def fn(x):
        return np.take_along_axis(x, np.argmax(x, axis=1, keepdims=True), axis=1) * 2.0

    check_fd(fn, x)
    check_torch(fn, lambda t: t.gather(1, t.argmax(1, keepdim=True)) * 2.0, x)


@pytest.mark.parametrize("keepdims", [False, True], ids=["", "keepdims"])
@pytest.mark.parametrize("axis", [None, 0, -1], ids=str)
@pytest.mark.parametrize("name, fn, torch_fn", [("any", np.any, lambda t: t.any(-1)),
                                                ("all", np.all, lambda t: t.all(-1))])
def test_boolean_reductions_match_torch(name, fn, torch_fn, axis, keepdims, rng):
    x = rng.random((3, 2, 4)) > 0.3
    check_torch(lambda x: fn(x, axis=axis, keepdims=keepdims), over(torch_fn, axis, keepdims), x)


SCANS = [
    ("cumsum", np.cumsum, lambda t, d: t.cumsum(d)),
    ("cumprod", np.cumprod, lambda t, d: t.cumprod(d)),
    ("avalon.cumsum", lambda x, axis: avalon.cumsum(x, axis), lambda t, d: t.cumsum(d)),
    ("avalon.cumprod", lambda x, axis: avalon.cumprod(x, axis), lambda t, d: t.cumprod(d)),
]


@pytest.mark.parametrize("axis", [0, 1, -1], ids=str)
@pytest.mark.parametrize("name, fn, torch_fn", SCANS, ids=_ids(SCANS))
def test_scans(name, fn, torch_fn, axis, rng):
    x = sample("real", (3, 4, 2), rng)
    check_fd(lambda x: fn(x, axis=axis), x)
    check_torch(lambda x: fn(x, axis=axis), lambda t: torch_fn(t, axis), x)


@pytest.mark.parametrize("fn, torch_fn", [(np.cumsum, lambda t: t.flatten().cumsum(0)),
                                          (np.cumprod, lambda t: t.flatten().cumprod(0))])
def test_scans_without_axis_flatten(fn, torch_fn, rng):
    x = sample("real", (3, 4), rng)
    check_fd(fn, x)
    check_torch(fn, torch_fn, x)


# Products with zeros: the gradient of an element is the product of the others, which dividing the
# product by the element cannot give (0 / 0). Zero, one and two zeros per slice, first and last.
ZERO_CASES = {
    "no zero": [1.5, -2.0, 0.5, 3.0],
    "one zero": [1.5, 0.0, 0.5, 3.0],
    "zero first": [0.0, -2.0, 0.5, 3.0],
    "zero last": [1.5, -2.0, 0.5, 0.0],
    "two zeros": [0.0, -2.0, 0.0, 3.0],
    "all zeros": [0.0, 0.0, 0.0, 0.0],
}


@pytest.mark.parametrize("values", list(ZERO_CASES.values()), ids=list(ZERO_CASES))
@pytest.mark.parametrize("name, fn, torch_fn", [
    ("prod", lambda x: np.prod(x, axis=1), lambda t: t.prod(1)),
    ("prod all", lambda x: np.prod(x), lambda t: t.prod()),
    ("prod axis 0 keepdims", lambda x: np.prod(x, axis=0, keepdims=True), lambda t: t.prod(0, keepdim=True)),
    ("cumprod", lambda x: np.cumprod(x, axis=1), lambda t: t.cumprod(1)),
    ("cumprod axis 0", lambda x: np.cumprod(x, axis=0), lambda t: t.cumprod(0)),
], ids=["prod", "prod all", "prod axis 0", "cumprod", "cumprod axis 0"])
def test_products_with_zeros(name, fn, torch_fn, values):
    x = np.array([values, [0.5, 2.0, -1.0, 1.5], values[::-1]])
    check_fd(fn, x)
    check_torch(fn, torch_fn, x)


def test_product_gradients_with_zeros_differentiate_again(rng):
    x = sample("real", (3, 4), rng)
    x[0, 1] = x[1, 0] = x[1, 3] = 0.0

    def prod_grad(x):
        return avalon.grad(lambda y: (np.prod(y, axis=1) ** 2).sum(), x)[1][0] * 1.0

    def cumprod_grad(x):
        return avalon.grad(lambda y: (np.cumprod(y, axis=1) ** 2).sum(), x)[1][0] * 1.0

    check_fd(prod_grad, x)
    check_fd(cumprod_grad, x)


def test_logsumexp_is_stable_and_handles_minus_infinity():
    x = np.array([[1000.0, 1000.0, -1000.0], [-np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf]])
    with np.errstate(divide="ignore"):  # log(0) for the all -inf row is the right answer
        value = avalon.jit(lambda x: avalon.logsumexp(x, 1))(x)
    np.testing.assert_allclose(value[:2], [1000.0 + np.log(2.0), 1.0 + np.log1p(np.exp(-1.0))])
    assert value[2] == -np.inf
    check_torch(lambda x: avalon.logsumexp(x, 1), lambda t: t.logsumexp(1), x[:2])


def test_mean_gradient_of_float32_stays_float32(rng):
    x = sample("real", (5, 7), rng).astype(np.float32)
    value, (g,) = avalon.grad(lambda x: np.mean(x, axis=0).sum(), x)
    assert value.dtype == np.float32 and g.dtype == np.float32
    np.testing.assert_allclose(g, np.full_like(x, 1 / 5), rtol=1e-6)


@pytest.mark.parametrize("shape", [(3, 1), (4,), (1, 4), (), (1, 1, 1), (2, 3, 4), (2, 1, 4)], ids=str)
def test_sum_to_is_the_adjoint_of_broadcasting(shape, rng):
    x = sample("real", (2, 3, 4), rng)
    fn = lambda x: rd.sum_to(x, shape=shape)  # noqa: E731
    check_fd(fn, x)
    check_fd(lambda x: np.broadcast_to(x, (2, 3, 4)) * np.arange(24.0).reshape(2, 3, 4), fn(x))
    if len(shape) == x.ndim:  # torch's sum_to_size keeps the number of dimensions
        check_torch(fn, lambda t: t.sum_to_size(shape) * 1.0, x)
    else:
        np.testing.assert_allclose(avalon.jit(fn)(x), np.sum(x, axis=tuple(range(x.ndim - len(shape)))).sum(
            axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True).reshape(shape))
