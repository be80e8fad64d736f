"""The fused neural-network primitives (softmax, log_softmax, stop_gradient) and the random ones."""
import numpy as np
import pytest
from opcheck import check_fd, check_torch, sample

import avalon
from avalon.ops import nn as nn_ops


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("name, fn, torch_fn", [
    ("softmax", avalon.softmax, lambda t, d: t.softmax(d)),
    ("log_softmax", avalon.log_softmax, lambda t, d: t.log_softmax(d)),
])
def test_softmax_family(name, fn, torch_fn, dim, rng):
    x = sample("real", (3, 4, 2), rng)
    check_fd(lambda x: fn(x, dim), x)
    check_torch(lambda x: fn(x, dim), lambda t: torch_fn(t, dim), x)


@pytest.mark.parametrize("name, fn, torch_fn", [
    ("softmax", avalon.softmax, lambda t, d: t.softmax(d)),
    ("log_softmax", avalon.log_softmax, lambda t, d: t.log_softmax(d)),
])
def test_softmax_family_is_stable_for_large_logits(name, fn, torch_fn):
    x = np.array([[1000.0, 0.0, -1000.0], [500.0, 500.0, 499.0], [-800.0, -801.0, -800.5]])
    check_torch(lambda x: fn(x, 1), lambda t: torch_fn(t, 1), x)


def test_softmax_with_a_dtype_casts_first(rng):
    x = sample("real", (2, 3), rng).astype(np.float32)
    value = avalon.jit(lambda x: avalon.softmax(x, -1, dtype=np.float64))(x)
    assert value.dtype == np.float64
    np.testing.assert_allclose(value.sum(-1), 1.0)


def test_softmax_primitives_called_directly(rng):
    x = sample("real", (2, 5), rng)
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(nn_ops.softmax(x, axis=1), e / e.sum(1, keepdims=True))
    np.testing.assert_allclose(nn_ops.log_softmax(x, axis=1), np.log(e / e.sum(1, keepdims=True)))
    assert np.shares_memory(nn_ops.stop_gradient(x), x)  # the same values, as a Tensor view


def test_softmax_differentiates_twice(rng):
    x = sample("real", (2, 4), rng)

    def gradient(x):
        return avalon.grad(lambda y: (avalon.softmax(y, 1) ** 2).sum() + avalon.log_softmax(y, 0)[0, 1], x)[1][0]

    check_fd(gradient, x)


@pytest.mark.parametrize("detach", [avalon.detach, avalon.stop_gradient], ids=["detach", "stop_gradient"])
def test_stop_gradient_blocks_only_its_path(detach, rng):
    x = sample("real", (3, 4), rng)
    fn = lambda x: x * detach(x) + np.sin(detach(x))  # noqa: E731
    value, (g,) = avalon.grad(lambda x: fn(x).sum(), x)
    np.testing.assert_allclose(value, (x * x + np.sin(x)).sum())
    np.testing.assert_allclose(g, x)  # d/dx of x * c, c = x held constant
    check_torch(fn, lambda t: t * t.detach() + t.detach().sin(), x)


def test_stop_gradient_alone_gives_zero_gradient(rng):
    x = sample("real", (3,), rng)
    _, (g,) = avalon.grad(lambda x: avalon.detach(x).sum() * 2.0, x)
    np.testing.assert_array_equal(g, np.zeros(3))


# random primitives

DRAWS = [
    ("rand", lambda: avalon.rand(3, 4)),
    ("randn", lambda: avalon.randn((3, 4))),
    ("randint", lambda: avalon.randint(0, 10, (3, 4))),
    ("rand float64", lambda: avalon.rand(2, 5, dtype=np.float64)),
]


@pytest.mark.parametrize("name, draw", DRAWS, ids=[d[0] for d in DRAWS])
def test_manual_seed_repeats_the_draws(name, draw):
    avalon.manual_seed(123)
    first = [draw(), draw()]
    avalon.manual_seed(123)
    second = [draw(), draw()]
    avalon.manual_seed(124)
    other = draw()
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], other)


def test_random_shapes_dtypes_and_ranges():
    avalon.manual_seed(0)
    u = avalon.rand(200, 50)
    n = avalon.randn(200, 50)
    i = avalon.randint(3, 7, (200, 50))
    assert u.dtype == np.float32 and n.dtype == np.float32 and i.dtype == np.int64
    assert u.shape == n.shape == i.shape == (200, 50)
    assert 0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.015
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1.0) < 0.04  # 5 standard errors
    assert set(np.unique(i)) == {3, 4, 5, 6}
    assert avalon.randint(5, size=(10,)).max() < 5
    assert avalon.rand(3, dtype=np.float64).dtype == np.float64
    assert avalon.randn(3, dtype=np.float16).dtype == np.float16
    assert avalon.rand_like(np.zeros((2, 2), np.float64)).dtype == np.float64


def test_random_draws_inside_compiled_code_are_fresh_at_every_replay_and_seeded(rng):
    x = sample("real", (4,), rng).astype(np.float32)

    @avalon.jit
    def noisy(x):
        return x + avalon.randn(4)

    avalon.manual_seed(7)
    first = [noisy(x), noisy(x)]  # traced, then replayed
    avalon.manual_seed(7)
    second = [noisy(x), noisy(x)]
    assert not np.array_equal(first[0], first[1])
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_gradient_through_random_noise(rng):
    x = sample("real", (5,), rng)

    def loss(x):
        noise = avalon.rand(5, dtype=np.float64)
        return (x * noise).sum()

    avalon.manual_seed(3)
    _, (g1,) = avalon.grad(loss, x)
    _, (g2,) = avalon.grad(loss, x)
    avalon.manual_seed(3)
    expected = avalon.rand(5, dtype=np.float64)
    np.testing.assert_array_equal(g1, expected)  # the gradient is the noise that was drawn
    assert not np.array_equal(g1, g2)
