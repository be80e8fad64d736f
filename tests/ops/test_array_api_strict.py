"""The array-API part of the primitives on a second, strict backend (array-api-strict), so the core
cannot quietly depend on numpy-only behaviour: forwards called directly on strict arrays agree with
numpy, and `avalon.grad` on strict arrays agrees with `avalon.grad` on numpy arrays.

Strict arrays come back to numpy through DLPack (`np.from_dlpack`), the conversion the standard
defines (`np.asarray` relies on `__array__`, which array-api-strict drops on newer Pythons).
"""
import numpy as np
import pytest
from opcheck import sample

import avalon
from avalon.ops import elementwise as ew
from avalon.ops import index as ix
from avalon.ops import linalg as la
from avalon.ops import nn as nn_ops
from avalon.ops import reduce as rd
from avalon.ops import shape as sh

xps = pytest.importorskip("array_api_strict")


def strict(a):
    return xps.asarray(a)


def to_numpy(x):
    assert type(x).__module__.startswith("array_api_strict"), f"a {type(x).__name__} escaped the strict backend"
    return np.from_dlpack(x)


def same(result, expected, rtol=1e-12, atol=1e-12):
    got = to_numpy(result)
    expected = np.asarray(expected)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype, f"{got.dtype} != {expected.dtype}"
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


UNARY = [
    (ew.exp, np.exp, "real"), (ew.exp2, np.exp2, "real"), (ew.log, np.log, "pos"), (ew.log2, np.log2, "pos"),
    (ew.log10, np.log10, "pos"), (ew.log1p, np.log1p, "pos"), (ew.expm1, np.expm1, "real"),
    (ew.sqrt, np.sqrt, "pos"), (ew.square, np.square, "real"), (ew.reciprocal, np.reciprocal, "away"),
    (ew.absolute, np.abs, "real"), (ew.negative, np.negative, "real"), (ew.sign, np.sign, "real"),
    (ew.sin, np.sin, "real"), (ew.cos, np.cos, "real"), (ew.tan, np.tan, "unit"), (ew.arcsin, np.arcsin, "unit"),
    (ew.arccos, np.arccos, "unit"), (ew.arctan, np.arctan, "real"), (ew.sinh, np.sinh, "real"),
    (ew.cosh, np.cosh, "real"), (ew.tanh, np.tanh, "real"), (ew.arcsinh, np.arcsinh, "real"),
    (ew.arccosh, np.arccosh, "gt1"), (ew.arctanh, np.arctanh, "unit"), (ew.floor, np.floor, "real"),
    (ew.ceil, np.ceil, "real"), (ew.trunc, np.trunc, "real"), (ew.rint, np.rint, "real"),
    (ew.isfinite, np.isfinite, "real"), (ew.isnan, np.isnan, "real"),
    (ew.sigmoid, lambda x: 1 / (1 + np.exp(-x)), "real"), (ew.relu, lambda x: np.maximum(x, 0), "real"),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("prim, reference, domain", UNARY, ids=[u[0].name for u in UNARY])
def test_unary_forward(prim, reference, domain, dtype, rng):
    x = sample(domain, (3, 4), rng, dtype)
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    same(prim(strict(x)), reference(x), rtol=tolerance, atol=tolerance)


BINARY = [
    (ew.add, np.add, "real"), (ew.subtract, np.subtract, "real"), (ew.multiply, np.multiply, "real"),
    (ew.divide, np.divide, "away"), (ew.power, np.power, "pos"), (ew.floor_divide, np.floor_divide, "away"),
    (ew.remainder, np.remainder, "away"), (ew.maximum, np.maximum, "real"), (ew.minimum, np.minimum, "real"),
    (ew.arctan2, np.arctan2, "away"), (ew.equal, np.equal, "real"), (ew.not_equal, np.not_equal, "real"),
    (ew.less, np.less, "real"), (ew.less_equal, np.less_equal, "real"), (ew.greater, np.greater, "real"),
    (ew.greater_equal, np.greater_equal, "real"),
]


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,))], ids=str)
@pytest.mark.parametrize("prim, reference, domain", BINARY, ids=[b[0].name for b in BINARY])
def test_binary_forward(prim, reference, domain, shapes, rng):
    a, b = sample("pos" if prim is ew.power else "real", shapes[0], rng), sample(domain, shapes[1], rng)
    same(prim(strict(a), strict(b)), reference(a, b))


@pytest.mark.parametrize("scalar", [2, 0.5])
@pytest.mark.parametrize("prim, reference", [(ew.add, np.add), (ew.multiply, np.multiply), (ew.divide, np.divide),
                                             (ew.power, np.power), (ew.maximum, np.maximum)])
def test_python_scalars_keep_float32(prim, reference, scalar, rng):
    x = sample("pos", (2, 3), rng, np.float32)
    same(prim(strict(x), scalar), reference(x, scalar), rtol=1e-6)
    same(prim(scalar, strict(x)), reference(scalar, x), rtol=1e-6)


def test_logical_and_integer_elementwise(rng):
    p, q = rng.random((3, 4)) > 0.5, rng.random((3, 4)) > 0.5
    for prim, reference in [(ew.logical_and, np.logical_and), (ew.logical_or, np.logical_or),
                            (ew.logical_xor, np.logical_xor)]:
        same(prim(strict(p), strict(q)), reference(p, q))
    same(ew.logical_not(strict(p)), ~p)
    i, j = np.array([7, -7, 7, -7]), np.array([2, 2, -2, -2])
    same(ew.floor_divide(strict(i), strict(j)), i // j)
    same(ew.remainder(strict(i), strict(j)), i % j)
    same(ew.invert(strict(p)), ~p)


def test_where_clip_astype(rng):
    c = rng.random((3, 1)) > 0.5
    a, b = sample("real", (1, 4), rng), sample("real", (3, 4), rng)
    same(ew.where(strict(c), strict(a), strict(b)), np.where(c, a, b))
    same(ew.where(strict(c), strict(a), 0.0), np.where(c, a, 0.0))
    same(ew.clip(strict(b), -0.5, 0.5), np.clip(b, -0.5, 0.5))
    same(ew.clip(strict(b), strict(a), None), np.maximum(b, a))
    same(ew.astype(strict(b), dtype=xps.float32), b.astype(np.float32))


REDUCTIONS = [
    (rd.sum, np.sum), (rd.mean, np.mean), (rd.prod, np.prod), (rd.max, np.max), (rd.min, np.min),
    (rd.logsumexp, lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))),
]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, (0, 2)], ids=str)
@pytest.mark.parametrize("prim, reference", REDUCTIONS, ids=[r[0].name for r in REDUCTIONS])
def test_reductions_forward(prim, reference, axis, keepdims, rng):
    x = sample("real", (2, 3, 4), rng)
    same(prim(strict(x), axis=axis, keepdims=keepdims), reference(x, axis=axis, keepdims=keepdims))


def test_other_reductions_and_scans_forward(rng):
    x = sample("distinct", (3, 4), rng)
    for ddof in (0, 1):
        same(rd.var(strict(x), axis=1, ddof=ddof), np.var(x, axis=1, ddof=ddof))
    same(rd.argmax(strict(x), axis=1), np.argmax(x, axis=1))
    same(rd.argmin(strict(x), axis=0, keepdims=True), np.argmin(x, axis=0, keepdims=True))
    same(rd.any(strict(x > 1), axis=0), np.any(x > 1, axis=0))
    same(rd.all(strict(x > -3), axis=None), np.all(x > -3))
    same(rd.cumsum(strict(x), axis=1), np.cumsum(x, axis=1))
    same(rd.cumprod(strict(x), axis=0), np.cumprod(x, axis=0))
    same(rd.sum_to(strict(x), shape=(1, 4)), x.sum(0, keepdims=True))
    same(rd.sum_to(strict(x), shape=(4,)), x.sum(0))


def test_shape_primitives_forward(rng):
    x = sample("real", (2, 3, 4), rng)
    s = strict(x)
    same(sh.reshape(s, shape=(4, 6)), x.reshape(4, 6))
    same(sh.transpose(s, axes=(2, 0, 1)), x.transpose(2, 0, 1))
    same(sh.broadcast_to(strict(x[:, :1]), shape=(2, 3, 4)), np.broadcast_to(x[:, :1], (2, 3, 4)))
    same(sh.concatenate(s, s[:1, ...], axis=0), np.concatenate([x, x[:1]], axis=0))
    same(sh.flip(s, axis=(0, 2)), np.flip(x, (0, 2)))
    same(sh.pad(s, widths=((1, 0), (0, 2), (1, 1)), value=1.5),
         np.pad(x, ((1, 0), (0, 2), (1, 1)), constant_values=1.5))
    same(sh.tile(s, reps=(1, 2, 1)), np.tile(x, (1, 2, 1)))
    same(sh.repeat(s, repeats=2, axis=1), np.repeat(x, 2, axis=1))


@pytest.mark.parametrize("key", [(1,), (slice(1, 3),), (slice(None, None, -1),), (Ellipsis, 1),
                                 (slice(None), None, slice(1, None, 2)), (0, slice(None), -1), (None,)],
                         ids=str)
def test_getitem_with_slices_and_its_scatter(key, rng):
    x = sample("real", (3, 4, 2), rng)
    same(ix.getitem(strict(x), key=key), x[key])
    g = x[key] * 2.0
    expected = np.zeros_like(x)
    expected[key] += g
    same(ix.scatter_add(strict(g), key=key, shape=x.shape), expected)


def test_linear_algebra_forward(rng):
    a, b = sample("real", (2, 3, 4), rng), sample("real", (4, 5), rng)
    same(la.matmul(strict(a), strict(b)), a @ b)
    same(la.matmul(strict(a), strict(np.broadcast_to(b, (2, 4, 5)))), a @ b)
    for subscripts, shapes in [("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
                               ("ij,kl->i", [(2, 3), (4, 5)]), ("ijk->kj", [(2, 3, 4)]),
                               ("ab,bc,ca->", [(2, 3), (3, 4), (4, 2)])]:
        ops = [sample("real", s, rng) for s in shapes]
        same(la.einsum(*map(strict, ops), subscripts=subscripts), np.einsum(subscripts, *ops))


def test_nn_primitives_forward(rng):
    x = sample("real", (3, 4), rng)
    e = np.exp(x - x.max(1, keepdims=True))
    same(nn_ops.softmax(strict(x), axis=1), e / e.sum(1, keepdims=True))
    same(nn_ops.log_softmax(strict(x), axis=1), np.log(e / e.sum(1, keepdims=True)))


# avalon.grad on strict arrays: the same code the tracer records for numpy arrays, compiled for the
# strict namespace, must give the numpy gradients.

def _chain(x, y):
    return ew.tanh(x * y + 1.5).sum() + (ew.exp(x) / ew.sqrt(y)).mean() - (x ** 2.0).sum()


GRAD_CASES = [
    ("elementwise", _chain, [(3, 4), (3, 4)], ["real", "pos"]),
    ("broadcasting", lambda x, y: (x * y - y / (x * x + 1)).sum(), [(3, 1), (1, 4)], ["real", "real"]),
    ("power with traced exponent", lambda x, y: (x ** y).sum(), [(2, 3), (2, 3)], ["pos", "real"]),
    ("matmul", lambda x, y: ew.sin(x @ y).sum(), [(2, 3, 4), (4, 2)], ["real", "real"]),
    ("reductions", lambda x, y: rd.max(x, axis=1).sum() + rd.var(y, axis=0, ddof=1).sum()
     + rd.logsumexp(x * y, axis=(0, 1)) + rd.prod(y, axis=0).sum(), [(3, 4), (3, 4)], ["distinct", "real"]),
    ("scans", lambda x, y: (rd.cumsum(x, axis=1) * rd.cumprod(y, axis=0)).sum(), [(3, 4), (3, 4)], ["real", "real"]),
    ("where and clip", lambda x, y: (ew.where(x > 0, x * y, 0.0) + ew.clip(y, -0.5, 0.5)).sum(),
     [(3, 4), (3, 4)], ["away", "distinct"]),
    ("softmax", lambda x, y: (nn_ops.softmax(x, axis=1) * y).sum() + nn_ops.log_softmax(y, axis=0).sum(),
     [(3, 4), (3, 4)], ["real", "real"]),
    ("slicing", lambda x, y: (x[1:, ::-1] * y[:2, 1:3].sum()).sum() + x[0, -1], [(3, 4), (3, 4)], ["real", "real"]),
    ("shapes", lambda x, y: (sh.transpose(sh.reshape(x, shape=(4, 3)), axes=(1, 0)) * y).sum()
     + (sh.flip(sh.tile(x, reps=(2, 1)), axis=(0,)) * sh.repeat(y, repeats=2, axis=0)).sum()
     + sh.pad(x, widths=((1, 0), (0, 1)), value=0.0).sum() * 2.0, [(3, 4), (3, 4)], ["real", "real"]),
    ("concatenate", lambda x, y: (sh.concatenate(x, y, axis=1) ** 2.0).sum(), [(3, 4), (3, 2)], ["real", "real"]),
    ("einsum", lambda x, y: ew.tanh(la.einsum(x, y, subscripts="ij,jk->ik")).sum(), [(3, 4), (4, 2)],
     ["real", "real"]),
    ("maximum ties", lambda x, y: ew.maximum(x, y).sum() + rd.max(y, axis=None), [(2, 3), (2, 3)], ["real", "real"]),
    ("astype", lambda x, y: (ew.astype(x, dtype=y.dtype) * y).sum(), [(2, 3), (2, 3)], ["real", "real"]),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, fn, shapes, domains", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_grad_on_strict_arrays_matches_numpy(name, fn, shapes, domains, dtype, rng):
    args = [sample(d, s, rng, dtype) for d, s in zip(domains, shapes)]
    if name == "maximum ties":
        args[1] = args[0].copy()
    expected_value, expected_grads = avalon.grad(fn, *args)
    tolerance = dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for _ in range(2):  # traced, then replayed
        value, grads = avalon.grad(fn, *map(strict, args))
        same(value, expected_value, **tolerance)
        for g, expected in zip(grads, expected_grads):
            same(g, expected, **tolerance)


def test_gradient_of_integer_array_indexing_is_refused_clearly(rng):
    x = strict(sample("real", (3, 4), rng))
    with pytest.raises(Exception, match="needs a scatter"):
        ix.scatter_add(x, strict(np.array([0, 0, 1])), key=(ix.Slot(0), slice(None)), shape=(5, 4))
