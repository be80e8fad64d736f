"""avalon.grad's contract: values, gradients mirroring the arguments, dtypes, errors."""
from collections import namedtuple

import numpy as np
import pytest

import avalon


def loss(W, x):
    return np.tanh(x @ W).sum()


def numeric_grad(f, x, eps=1e-6):
    """Central differences of a scalar function of one float64 array."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        g[i] = (f(up) - f(down)) / (2 * eps)
    return g


def test_value_and_gradients_of_arrays(rng):
    W, x = rng.standard_normal((3, 2)), rng.standard_normal((4, 3))
    value, (gW, gx) = avalon.grad(loss, W, x)
    assert np.isclose(value, np.tanh(x @ W).sum())
    np.testing.assert_allclose(gW, numeric_grad(lambda W: np.tanh(x @ W).sum(), W), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gx, numeric_grad(lambda x: np.tanh(x @ W).sum(), x), rtol=1e-6, atol=1e-8)
    assert gW.shape == W.shape and gx.shape == x.shape


def test_replay_gives_the_same_gradients_as_the_first_call(rng):
    W, x = rng.standard_normal((3, 2)), rng.standard_normal((4, 3))
    first = avalon.grad(loss, W, x)
    second = avalon.grad(loss, W, x)
    np.testing.assert_allclose(second[0], first[0])
    for a, b in zip(first[1], second[1]):
        np.testing.assert_allclose(a, b)
    W2 = rng.standard_normal((3, 2))  # same signature, new values: a replay on new data
    value, (gW, _) = avalon.grad(loss, W2, x)
    np.testing.assert_allclose(gW, numeric_grad(lambda W: np.tanh(x @ W).sum(), W2), rtol=1e-6, atol=1e-8)


def test_float32_stays_float32(rng):
    W = rng.standard_normal((3, 2)).astype(np.float32)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    f = lambda W, x: (np.tanh(x @ W) * 0.5 + np.exp(-(x ** 2)).mean()).mean()
    for _ in range(2):  # traced, then replayed
        value, (gW, gx) = avalon.grad(f, W, x)
        assert value.dtype == np.float32 and gW.dtype == np.float32 and gx.dtype == np.float32
    tape = avalon.grad_tape(f, W, x)
    floats = [n for n in tape.nodes if np.issubdtype(n.dtype, np.floating)]
    assert floats and all(n.dtype == np.float32 for n in floats), [n for n in floats if n.dtype != np.float32]


def test_containers_mirror_the_arguments(rng):
    Pair = namedtuple("Pair", "a b")
    a, b, c = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3)

    def f(items, table, pair, scale, name):
        assert name == "test"
        return ((items[0] * items[1]).sum() + (table["w"] ** 2).sum() + (pair.a * pair.b).sum()) * scale

    value, (g_items, g_table, g_pair, g_scale, g_name) = avalon.grad(f, [a, b], {"w": c}, Pair(a, c), 2.0, "test")
    assert isinstance(g_items, list) and isinstance(g_table, dict) and isinstance(g_pair, Pair)
    np.testing.assert_allclose(g_items[0], 2 * b)
    np.testing.assert_allclose(g_items[1], 2 * a)
    np.testing.assert_allclose(g_table["w"], 4 * c)
    np.testing.assert_allclose(g_pair.a, 2 * c)
    np.testing.assert_allclose(g_pair.b, 2 * a)
    assert g_scale is None and g_name is None


def test_integer_and_boolean_arrays_get_none(rng):
    x = rng.standard_normal(4)
    index, mask = np.array([0, 2, 2]), np.array([True, False, True, True])
    value, (gx, gi, gm) = avalon.grad(lambda x, i, m: (x[i] ** 2).sum() + np.where(m, x, 0.0).sum(), x, index, mask)
    assert gi is None and gm is None
    np.testing.assert_allclose(gx, [2 * x[0] + 1, 0, 4 * x[2] + 1, 1])
    assert "None" in avalon.grad.__doc__ and "Integer" in avalon.grad.__doc__


def test_an_argument_that_does_not_reach_the_output_gets_zeros(rng):
    x, y = rng.standard_normal(3), rng.standard_normal((2, 2)).astype(np.float32)
    for _ in range(2):
        _, (gx, gy) = avalon.grad(lambda x, y: (x * 3).sum(), x, y)
        np.testing.assert_array_equal(gx, [3, 3, 3])
        assert gy.dtype == np.float32 and gy.shape == (2, 2) and not gy.any()


def test_non_scalar_output_needs_a_seed(rng):
    x = rng.standard_normal(3)
    with pytest.raises(avalon.GradientError, match=r"(?s)shape \(3,\), not a scalar.*seed="):
        avalon.grad(lambda x: x * 2, x)
    assert issubclass(avalon.GradientError, avalon.AvalonError)


def test_seed_gives_the_vector_jacobian_product(rng):
    x, seed = rng.standard_normal(3), rng.standard_normal(3)
    for _ in range(2):
        value, (gx,) = avalon.grad(lambda x: np.sin(x) * 2, x, seed=seed)
        np.testing.assert_allclose(value, np.sin(x) * 2)
        np.testing.assert_allclose(gx, seed * 2 * np.cos(x))
    with pytest.raises(avalon.GradientError, match="seed has shape"):
        avalon.grad(lambda x: np.sin(x), x, seed=np.ones(4))


def test_integer_output_is_an_error(rng):
    with pytest.raises(avalon.GradientError, match="floating-point"):
        avalon.grad(lambda x: np.argmax(x), rng.standard_normal(3))


def test_gradients_are_fresh_arrays(rng):
    # x.sum()'s gradient is a constant: each call must still get its own writeable array, and two
    # arguments sharing one gradient value must get two arrays.
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    f = lambda x, y: (x + y).sum()
    results = [avalon.grad(f, x, y)[1] for _ in range(3)]
    arrays = [g for gs in results for g in gs]
    assert len({id(g) for g in arrays}) == len(arrays)
    for g in arrays:
        assert g.flags.writeable
        assert not any(np.shares_memory(g, other) for other in arrays if other is not g)
    results[1][0][:] = 100.0  # scribbling on one result changes no other, nor the next call
    np.testing.assert_array_equal(avalon.grad(f, x, y)[1][0], np.ones(3))


def test_value_and_grad_is_grad(rng):
    x = rng.standard_normal(3)
    value, (gx,) = avalon.value_and_grad(lambda x: (x ** 3).sum())(x)
    np.testing.assert_allclose(gx, 3 * x ** 2)


def test_parity_with_torch(rng):
    torch = pytest.importorskip("torch")
    W = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    x = rng.standard_normal((4, 3)).astype(np.float32)

    def f(W, b, x):
        h = np.tanh(x @ W + b)
        return (h * h).mean() + np.exp(-h).sum() * 0.1

    value, grads = avalon.grad(f, W, b, x)
    tW, tb, tx = (torch.tensor(a, requires_grad=True) for a in (W, b, x))
    th = torch.tanh(tx @ tW + tb)
    tvalue = (th * th).mean() + torch.exp(-th).sum() * 0.1
    tvalue.backward()
    np.testing.assert_allclose(value, tvalue.item(), rtol=1e-5)
    for g, t in zip(grads, (tW, tb, tx)):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_argnums_differentiates_only_the_chosen_arguments():
    rng = np.random.default_rng(0)
    W, x = rng.standard_normal((3, 2)), rng.standard_normal((4, 3))
    f = lambda W, x: np.tanh(x @ W).sum()  # noqa: E731
    value, (gW, gx) = avalon.grad(f, W, x, argnums=0)
    full_value, (full_gW, _) = avalon.grad(f, W, x)
    assert gx is None and value == full_value
    np.testing.assert_allclose(gW, full_gW)
    tape = avalon.grad_tape(f, W, x, argnums=0)
    assert len(tape.outputs) == 2  # the value and gW: no backward pass towards x
    assert avalon.grad(f, W, x, argnums=(-1,))[1][0] is None


def test_argnums_out_of_range_says_which_indices_exist():
    with pytest.raises(avalon.GradientError, match="from 0 to 1"):
        avalon.grad(lambda a, b: (a * b).sum(), np.ones(2), np.ones(2), argnums=2)
