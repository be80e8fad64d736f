"""topk, nonzero / argwhere / one-argument where, multinomial and meshgrid against torch: values,
dtypes, shapes, gradients (gradcheck and torch's), errors where torch refuses, the Tensor and tracer
methods, and what traced code refuses or draws afresh."""
import warnings

import numpy as np
import pytest

import avalon

torch = pytest.importorskip("torch")


def _distinct(shape, seed):
    """Values without ties (torch orders equal values its own way)."""
    rng = np.random.default_rng(seed)
    return rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float32) / 7 - 1


# topk

@pytest.mark.parametrize("shape,k,dim", [((7,), 3, -1), ((4, 6), 2, 1), ((4, 6), 4, 0), ((3, 4, 5), 5, -1),
                                         ((3, 4, 5), 0, 1), ((2, 3), 3, 1)])
@pytest.mark.parametrize("largest", [True, False])
def test_topk_matches_torch(shape, k, dim, largest):
    x = _distinct(shape, 0)
    values, indices = avalon.topk(x, k, dim=dim, largest=largest)
    expected = torch.topk(torch.tensor(x), k, dim=dim, largest=largest)
    np.testing.assert_array_equal(values, expected.values.numpy())
    np.testing.assert_array_equal(indices, expected.indices.numpy())
    assert values.dtype == np.float32 and indices.dtype == np.int64
    assert isinstance(values, avalon.Tensor) and avalon.topk(x, k, dim, largest).indices.shape == indices.shape
    unsorted = avalon.topk(x, k, dim, largest, sorted=False)
    assert np.array_equal(np.sort(unsorted.values, axis=dim), np.sort(expected.values.numpy(), axis=dim))


def test_topk_ints_nan_and_zero_dim_as_torch():
    ints = np.array([[3, 9, 1, 7], [8, 2, 6, 0]])
    np.testing.assert_array_equal(avalon.topk(ints, 2).values, torch.topk(torch.tensor(ints), 2).values.numpy())
    with_nan = np.array([1.0, np.nan, 3.0, 2.0], np.float32)
    for largest in (True, False):
        ours = avalon.topk(with_nan, 2, largest=largest)
        theirs = torch.topk(torch.tensor(with_nan), 2, largest=largest)
        np.testing.assert_array_equal(ours.values, theirs.values.numpy())
        np.testing.assert_array_equal(ours.indices, theirs.indices.numpy())
    values, indices = avalon.topk(np.float32(2.5), 1)
    assert values.shape == indices.shape == () and float(values) == 2.5 and int(indices) == 0


def test_topk_errors_where_torch_refuses():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(RuntimeError):
        torch.topk(torch.tensor(x), 4)
    with pytest.raises(avalon.ShapeError, match="k=4 is out of range"):
        avalon.topk(x, 4)
    with pytest.raises(avalon.ShapeError, match="out of range"):
        avalon.topk(x, 1, dim=2)


def test_topk_gradient_goes_to_the_selected_entries():
    x = _distinct((3, 5), 1).astype(np.float64)
    assert avalon.gradcheck(lambda x: (avalon.topk(x, 2, dim=1).values ** 2).sum(), x)
    assert avalon.gradcheck(lambda x: (x.topk(3, 0, largest=False)[0] * x[:3]).sum(), x)
    value, (grad,) = avalon.grad(lambda x: (avalon.topk(x, 2).values * np.array([1.0, 3.0])).sum(), x)
    xt = torch.tensor(x, requires_grad=True)
    (torch.topk(xt, 2).values * torch.tensor([1.0, 3.0], dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(grad, xt.grad.numpy())


def test_topk_method_on_tensors_and_tracers():
    x = avalon.tensor(_distinct((2, 5), 2))
    np.testing.assert_array_equal(x.topk(2).indices, avalon.topk(x, 2).indices)
    traced = avalon.jit(lambda x: x.topk(2, dim=1, largest=False))
    np.testing.assert_array_equal(traced(x).values, avalon.topk(x, 2, 1, False).values)


# nonzero, argwhere, where(condition)

@pytest.mark.parametrize("x", [np.array([[0, 1, 0], [2, 0, 3]]), np.array([0.0, 1.5, 0.0, -2.0]),
                               np.array([[False, True], [True, True]]), np.array(3.0), np.array(0), np.zeros((2, 0))])
def test_nonzero_and_where_match_torch(x):
    t = torch.tensor(x)
    rows = avalon.nonzero(x)
    np.testing.assert_array_equal(rows, torch.nonzero(t).numpy())
    assert rows.dtype == np.int64 and rows.shape == tuple(torch.nonzero(t).shape)
    np.testing.assert_array_equal(avalon.argwhere(x), torch.argwhere(t).numpy())
    for ours, theirs in [(avalon.nonzero(x, as_tuple=True), torch.nonzero(t, as_tuple=True)),
                         (avalon.where(x), torch.where(t))]:
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b.numpy())
            assert a.dtype == np.int64


def test_where_with_one_argument_is_refused_in_traced_code():
    def f(x):
        rows, cols = avalon.where(x > 0)
        return x[rows, cols].sum()

    assert float(f(np.array([[1.0, -1.0], [2.0, 0.0]]))) == 3.0
    with pytest.raises(avalon.UnsupportedConstruct) as err:
        avalon.grad(f, np.array([[1.0, -1.0], [2.0, 0.0]]))
    assert "where(mask" in err.value.fix
    with pytest.raises(avalon.UnsupportedConstruct):
        avalon.trace(lambda x: avalon.nonzero(x), np.ones(3))
    with pytest.raises(avalon.AvalonError, match="both input and other"):
        avalon.where(np.ones(2) > 0, np.ones(2))


# multinomial

def test_multinomial_shapes_dtypes_and_distinct_draws():
    avalon.manual_seed(0)
    weights = np.array([[0.0, 1.0, 3.0, 6.0], [5.0, 0.0, 0.0, 5.0]], np.float32)
    drawn = avalon.multinomial(weights, 2)
    assert drawn.dtype == np.int64 and drawn.shape == (2, 2) and isinstance(drawn, avalon.Tensor)
    assert tuple(torch.multinomial(torch.tensor(weights), 2).shape) == drawn.shape
    for _ in range(50):
        rows = np.asarray(avalon.multinomial(weights, 2))
        assert rows[0, 0] != rows[0, 1] and set(rows[1]) == {0, 3}
        assert 0 not in rows[0]
    with_replacement = avalon.multinomial(weights[0], 1000, replacement=True)
    assert with_replacement.shape == (1000,) and 0 not in np.asarray(with_replacement)
    # once the non-zero categories run out, zero-weight ones follow, as torch
    assert sorted(np.asarray(avalon.multinomial(np.array([0.0, 2.0, 0.0, 1.0]), 3))[:2]) == [1, 3]
    assert np.asarray(avalon.tensor(weights).multinomial(1)).shape == (2, 1)


def _chi_square_ok(counts, probabilities, n):
    """Pearson's test at p ≈ 1e-4, so the test is not flaky (seeded anyway)."""
    expected = n * probabilities
    statistic = ((counts - expected) ** 2 / expected).sum()
    return statistic < 20 + 3 * len(counts)


def test_multinomial_frequencies_with_and_without_replacement():
    avalon.manual_seed(1)
    weights = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    p = weights / weights.sum()
    n = 20000
    draws = np.asarray(avalon.multinomial(weights, n, replacement=True))
    assert _chi_square_ok(np.bincount(draws, minlength=4), p, n)
    # without replacement: the first draw follows p, the second p(j) summed over first draws i ≠ j
    pairs = np.asarray(avalon.multinomial(np.tile(weights, (n, 1)), 2))
    assert np.all(pairs[:, 0] != pairs[:, 1])
    second = np.array([sum(p[i] * p[j] / (1 - p[i]) for i in range(4) if i != j) for j in range(4)])
    assert _chi_square_ok(np.bincount(pairs[:, 0], minlength=4), p, n)
    assert _chi_square_ok(np.bincount(pairs[:, 1], minlength=4), second, n)
    avalon.manual_seed(3)
    first = np.asarray(avalon.multinomial(weights, 3))
    avalon.manual_seed(3)
    np.testing.assert_array_equal(avalon.multinomial(weights, 3), first)


def test_multinomial_draws_afresh_in_every_replay():
    sample = avalon.jit(lambda logits: avalon.multinomial(avalon.softmax(logits, -1), 1))
    logits = np.zeros((64, 10), np.float32)
    draws = [np.asarray(sample(logits)) for _ in range(3)]
    assert draws[0].shape == (64, 1) and draws[0].dtype == np.int64
    assert not np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[1], draws[2])
    loss, (grad,) = avalon.grad(lambda x: (x * avalon.multinomial(np.ones(3), 2)).sum(), np.ones(2))
    assert grad.shape == (2,)
    with pytest.raises(avalon.AvalonError, match="generator"):
        avalon.jit(lambda w: avalon.multinomial(w, 1, generator=np.random.default_rng(0)))(np.ones(3))
    rng = np.random.default_rng(5)
    assert np.asarray(avalon.multinomial(np.ones(3), 2, generator=rng)).shape == (2,)


@pytest.mark.parametrize("weights,num_samples,replacement,match", [
    ([[-1.0, 1.0]], 1, False, "negative"), ([[np.nan, 1.0]], 1, False, "nan"), ([[np.inf, 1.0]], 1, True, "inf"),
    ([[0.0, 0.0]], 1, False, "sums to zero"), (np.ones((2, 2, 2)), 1, False, "1-D or 2-D"),
    ([1.0, 2.0], 3, False, "without replacement"), ([1.0, 2.0], 0, True, "positive"),
])
def test_multinomial_refuses_what_torch_refuses(weights, num_samples, replacement, match):
    weights = np.asarray(weights, np.float32)
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.tensor(weights), num_samples, replacement)
    with pytest.raises(avalon.AvalonError, match=match):
        avalon.multinomial(weights, num_samples, replacement)


def test_multinomial_needs_floating_weights():
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.tensor([1, 2]), 1)
    with pytest.raises(TypeError, match="floating-point"):
        avalon.multinomial(np.array([1, 2]), 1)


# meshgrid

@pytest.mark.parametrize("indexing", ["ij", "xy"])
@pytest.mark.parametrize("sizes", [(3,), (2, 3), (2, 3, 4), (0, 3), (1, 2)])
def test_meshgrid_matches_torch(sizes, indexing):
    arrays = [np.arange(n, dtype=np.float32) + 10 * i for i, n in enumerate(sizes)]
    theirs = torch.meshgrid(*[torch.tensor(a) for a in arrays], indexing=indexing)
    for ours in (avalon.meshgrid(*arrays, indexing=indexing), avalon.meshgrid(arrays, indexing=indexing),
                 avalon.meshgrid(tuple(arrays), indexing=indexing)):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b.numpy())
            assert a.dtype == np.float32


def test_meshgrid_default_indexing_warns_as_torch():
    a, b = np.arange(2), np.arange(3)
    with pytest.warns(UserWarning, match="indexing"):
        torch.meshgrid(torch.tensor(a), torch.tensor(b))
    with pytest.warns(UserWarning, match="indexing"):
        grids = avalon.meshgrid(a, b)
    assert grids[0].shape == (2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        avalon.meshgrid(a, b, indexing="ij")
    zero_d = avalon.meshgrid(np.array(5), b, indexing="ij")
    expected = torch.meshgrid(torch.tensor(5), torch.tensor(b), indexing="ij")
    for ours, theirs in zip(zero_d, expected):
        np.testing.assert_array_equal(ours, theirs.numpy())


def test_meshgrid_errors_and_gradient():
    with pytest.raises(avalon.ShapeError, match="0-D or 1-D"):
        avalon.meshgrid(np.ones((2, 2)), np.ones(3), indexing="ij")
    with pytest.raises(TypeError, match="one dtype"):
        avalon.meshgrid(np.ones(2, np.float32), np.arange(3), indexing="ij")
    with pytest.raises(avalon.AvalonError, match="'ij' or 'xy'"):
        avalon.meshgrid(np.ones(2), indexing="foo")
    x, y = np.linspace(0, 1, 3), np.linspace(-1, 1, 4)
    assert avalon.gradcheck(lambda x, y: sum((g ** 2 * (i + 1)).sum() for i, g in
                                             enumerate(avalon.meshgrid(x, y, indexing="xy"))), x, y)
