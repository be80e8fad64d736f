"""Indexing: basic slicing, integer-array and boolean-mask indexing, take, take_along_axis / gather.

The backward of a gather is a scatter that accumulates: an element picked twice gets both gradients.
"""
import numpy as np
import pytest
from opcheck import check_fd, check_torch, sample

import avalon


def torch():
    """PyTorch, imported only by the parity tests (which are skipped without it)."""
    return pytest.importorskip("torch")


def tt(a):
    return torch().as_tensor(a)


IDX = np.array([0, 0, 2, 1, 0])
IDX2D = np.array([[0, 2], [2, 2]])
MASK = np.array([[True, False, True, False], [False, False, True, True], [True, True, True, False]])
ROWS = np.array([True, False, True])
COLS = np.array([False, True, True, False])
ALONG = np.array([[0, 2, 2, 1], [1, 1, 0, 0]])  # along axis 0 of a (3, 4) array
ACROSS = np.array([[0, 3, 3], [1, 1, 0], [2, 0, 2]])  # along axis 1

# (id, user code, PyTorch code); x has shape (3, 4) unless the id says otherwise
CASES = [
    ("x[1]", lambda x: x[1], lambda t: t[1]),
    ("x[-1]", lambda x: x[-1], lambda t: t[-1]),
    ("x[0, 3]", lambda x: x[0, 3], lambda t: t[0, 3]),
    ("x[1:3]", lambda x: x[1:3], lambda t: t[1:3]),
    ("x[:, ::2]", lambda x: x[:, ::2], lambda t: t[:, ::2]),
    ("x[::-1, 1:]", lambda x: x[::-1, 1:], lambda t: t.flip(0)[:, 1:]),
    ("x[:, ::-2]", lambda x: x[:, ::-2], lambda t: t.flip(1)[:, ::2]),
    ("x[..., 1]", lambda x: x[..., 1], lambda t: t[..., 1]),
    ("x[1, None, 2:]", lambda x: x[1, None, 2:], lambda t: t[1, None, 2:]),
    ("x[:, -2:]", lambda x: x[:, -2:], lambda t: t[:, -2:]),
    ("x[5:]", lambda x: x[5:], lambda t: t[5:]),
    ("x[[0,0,1]]", lambda x: x[[0, 0, 1]], lambda t: t[[0, 0, 1]]),
    ("x[idx]", lambda x: x[IDX], lambda t: t[tt(IDX)]),
    ("x[idx2d]", lambda x: x[IDX2D], lambda t: t[tt(IDX2D)]),
    ("x[:, [1,1,3]]", lambda x: x[:, [1, 1, 3]], lambda t: t[:, [1, 1, 3]]),
    ("x[[0,2],[1,1]]", lambda x: x[[0, 2], [1, 1]], lambda t: t[[0, 2], [1, 1]]),
    ("x[[2,0],1:]", lambda x: x[[2, 0], 1:], lambda t: t[[2, 0], 1:]),
    ("x[[-1,0]]", lambda x: x[np.array([-1, 0, -1])], lambda t: t[[-1, 0, -1]]),
    ("x[idx2d, 2]", lambda x: x[IDX2D, 2], lambda t: t[tt(IDX2D), 2]),
    ("x[mask]", lambda x: x[MASK], lambda t: t[tt(MASK)]),
    ("x[rows]", lambda x: x[ROWS], lambda t: t[tt(ROWS)]),
    ("x[:, cols]", lambda x: x[:, COLS], lambda t: t[:, tt(COLS)]),
    ("take axis 1", lambda x: np.take(x, IDX, axis=1), lambda t: t.index_select(1, tt(IDX))),
    ("take flat", lambda x: np.take(x, IDX2D * 5 + 1), lambda t: t.take(tt(IDX2D * 5 + 1))),
    ("take 2-D indices", lambda x: np.take(x, IDX2D, axis=0), lambda t: t[tt(IDX2D)]),
    ("take negative axis", lambda x: np.take(x, IDX, axis=-1), lambda t: t[:, tt(IDX)]),
    ("avalon.index_select", lambda x: avalon.index_select(x, 0, IDX), lambda t: t.index_select(0, tt(IDX))),
    ("take_along_axis 0", lambda x: np.take_along_axis(x, ALONG, axis=0), lambda t: t.gather(0, tt(ALONG))),
    ("take_along_axis 1", lambda x: np.take_along_axis(x, ACROSS, axis=1), lambda t: t.gather(1, tt(ACROSS))),
    ("take_along_axis -1", lambda x: np.take_along_axis(x, ACROSS[:, :1], axis=-1),
     lambda t: t.take_along_dim(tt(ACROSS[:, :1]), -1)),
    ("take_along_axis broadcast", lambda x: np.take_along_axis(x, ACROSS[:1], axis=1),
     lambda t: t.take_along_dim(tt(ACROSS[:1]), 1)),
    ("take_along_axis None", lambda x: np.take_along_axis(x, IDX, axis=None),
     lambda t: t.flatten()[tt(IDX)]),
    ("avalon.gather", lambda x: avalon.gather(x, 1, ACROSS), lambda t: t.gather(1, tt(ACROSS))),
    ("avalon.gather smaller index", lambda x: avalon.gather(x, 0, ALONG[:, :2]), lambda t: t.gather(0, tt(ALONG[:, :2]))),
]


def _ids(table):
    return [row[0] for row in table]


@pytest.mark.parametrize("name, fn, torch_fn", CASES, ids=_ids(CASES))
def test_finite_differences(name, fn, torch_fn, rng):
    check_fd(fn, sample("real", (3, 4), rng))


@pytest.mark.parametrize("name, fn, torch_fn", CASES, ids=_ids(CASES))
def test_matches_torch(name, fn, torch_fn, rng):
    check_torch(fn, torch_fn, sample("real", (3, 4), rng))


THREE_D = [
    ("x[[0,1], :, [1,0]]", lambda x: x[[0, 1], :, [1, 0]], lambda t: t[[0, 1], :, [1, 0]]),
    ("x[:, [2,0], 1:]", lambda x: x[:, [2, 0], 1:], lambda t: t[:, [2, 0], 1:]),
    ("x[..., [1,1]]", lambda x: x[..., [1, 1]], lambda t: t[..., [1, 1]]),
    ("take_along_axis 1", lambda x: np.take_along_axis(x, np.zeros((2, 5, 2), np.int64) + [[[0], [2], [2], [1], [0]]],
                                                       axis=1),
     lambda t: t.gather(1, tt(np.zeros((2, 5, 2), np.int64) + [[[0], [2], [2], [1], [0]]]))),
]


@pytest.mark.parametrize("name, fn, torch_fn", THREE_D, ids=_ids(THREE_D))
def test_three_dimensional(name, fn, torch_fn, rng):
    x = sample("real", (2, 3, 2), rng)
    check_fd(fn, x)
    check_torch(fn, torch_fn, x)


def test_repeated_indices_accumulate(rng):
    x = sample("real", (3, 4), rng)
    _, (g,) = avalon.grad(lambda x: x[[0, 0, 1, 0]].sum(), x)
    np.testing.assert_array_equal(g, np.array([[3.0] * 4, [1.0] * 4, [0.0] * 4]))
    _, (g,) = avalon.grad(lambda x: np.take_along_axis(x, np.array([[1, 1, 1]]), axis=1).sum(), x[:1])
    np.testing.assert_array_equal(g, [[0.0, 3.0, 0.0, 0.0]])


def test_traced_index_arrays(rng):
    x = sample("distinct", (3, 4), rng)

    def fn(x):
        rows = np.argmax(x, axis=0)  # a traced integer array used as an index
        return x[rows] * x[rows, np.arange(4)]

    check_fd(fn, x)
    check_torch(fn, lambda t: t[t.argmax(0)] * t[t.argmax(0), torch().arange(4)], x)


def test_indexing_differentiates_twice(rng):
    x = sample("real", (3, 4), rng)

    def gradient(x):
        return avalon.grad(lambda y: (y[[0, 0, 2], 1:] ** 3).sum() + (y[::-1] ** 2).sum(), x)[1][0]

    check_fd(gradient, x)


def test_constant_numpy_mask_is_accepted(rng):
    x = sample("real", (3, 4), rng)
    mask = x > 0
    value, (g,) = avalon.grad(lambda x: (x[mask] ** 2).sum(), x)
    np.testing.assert_allclose(value, (x[mask] ** 2).sum())
    np.testing.assert_allclose(g, np.where(mask, 2 * x, 0.0))


def test_traced_mask_is_refused_at_the_users_line(rng):
    x = sample("real", (3, 4), rng)

    def f(x):
        return x[x > 0].sum()  # the refused line

    with pytest.raises(avalon.UnsupportedConstruct, match="boolean-mask indexing with a traced mask") as info:
        avalon.grad(f, x)
    assert info.value.code.strip() == "return x[x > 0].sum()  # the refused line"
    assert info.value.filename == __file__
    assert "np.where" in info.value.fix


def test_setitem_on_a_traced_array_is_refused(rng):
    x = sample("real", (3, 4), rng)

    def f(x):
        y = x * 2
        row = y[0]
        y[1] = 0.0  # row is a live view of y: in torch it would see the write too
        return y.sum() + row.sum()

    with pytest.raises(avalon.UnsupportedConstruct, match="in-place assignment"):
        avalon.grad(f, x)
