"""Property tests: random shapes and broadcasting for elementwise ops, random axes for reductions,
random batch shapes for matmul. Values come from numpy and gradients from finite differences."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes
from opcheck import check_fd, sample

import avalon

SETTINGS = settings(max_examples=30, deadline=None)
seeds = st.integers(0, 2 ** 32 - 1)

# (user code, domain of a, domain of b); "real" draws are continuous, so ties have probability 0
BINARY = {
    "add": (lambda a, b: a + b, "real", "real"),
    "subtract": (lambda a, b: a - b, "real", "real"),
    "multiply": (np.multiply, "real", "real"),
    "divide": (lambda a, b: a / b, "real", "away"),
    "power": (lambda a, b: a ** b, "pos", "real"),
    "remainder": (lambda a, b: a % b, "real", "away"),
    "maximum": (np.maximum, "real", "real"),
    "minimum": (np.minimum, "real", "real"),
    "arctan2": (np.arctan2, "real", "away"),
    "where": (lambda a, b: np.where(a > 0, a * b, b - a), "away", "real"),
}


@SETTINGS
@given(op=st.sampled_from(sorted(BINARY)),
       shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       seed=seeds)
def test_binary_ops_broadcast(op, shapes, seed):
    fn, da, db = BINARY[op]
    rng = np.random.default_rng(seed)
    a, b = sample(da, shapes.input_shapes[0], rng), sample(db, shapes.input_shapes[1], rng)
    out = avalon.jit(fn)(a, b)
    np.testing.assert_allclose(out, fn(a, b), rtol=1e-12)
    assert out.shape == shapes.result_shape
    check_fd(fn, a, b)


REDUCTIONS = {
    "sum": lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
    "mean": lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims),
    "prod": lambda x, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims),
    "max": lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims),
    "min": lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims),
    "var": lambda x, axis, keepdims: np.var(x, axis=axis, keepdims=keepdims),
    "std": lambda x, axis, keepdims: np.std(x, axis=axis, keepdims=keepdims),
    "logsumexp": lambda x, axis, keepdims: avalon.logsumexp(x, axis, keepdims),
}


def _numpy_logsumexp(x, axis, keepdims):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


@st.composite
def shape_and_axis(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    ndim = len(shape)
    axis = draw(st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1),
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(
            lambda axes: tuple(a - ndim if i % 2 else a for i, a in enumerate(axes)))))
    return shape, axis


@SETTINGS
@given(op=st.sampled_from(sorted(REDUCTIONS)), case=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_reductions_over_random_axes(op, case, keepdims, seed):
    shape, axis = case
    fn = REDUCTIONS[op]
    x = sample("real", shape, np.random.default_rng(seed))
    reduce = lambda x: fn(x, axis, keepdims)  # noqa: E731
    expected = _numpy_logsumexp(x, axis, keepdims) if op == "logsumexp" else reduce(x)
    out = avalon.jit(reduce)(x)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    counted = np.prod([shape[a] for a in range(len(shape))] if axis is None else
                      [shape[a] for a in np.atleast_1d(axis)])
    if op == "std" and counted == 1:
        return  # std of one element is 0, where sqrt has no derivative
    check_fd(reduce, x)


@SETTINGS
@given(shapes=mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, max_side=3), seed=seeds)
def test_matmul_over_random_batch_shapes(shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = (sample("real", s, rng) for s in shapes.input_shapes)
    out = avalon.jit(np.matmul)(a, b)
    expected = np.matmul(a, b)
    assert out.shape == expected.shape == shapes.result_shape
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    check_fd(np.matmul, a, b)
