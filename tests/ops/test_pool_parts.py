"""Max pooling's three primitives pooled a part of the batch at a time (pool.PART_BYTES) give exactly
what pooling the whole batch at once gives (PART_BYTES = 0): every geometry of the PyTorch parity
tests, ties, NaN and inf, integers, an unbatched input, out= buffers."""
import numpy as np
import pytest

from avalon.ops import pool as pl

CASES = [  # (kernel, stride, padding, dilation, ceil_mode, shape)
    ((2, 2), (2, 2), (0, 0), (1, 1), False, (5, 3, 26, 26)),  # LeNet's pools: windows tile the input
    ((2, 2), (2, 2), (0, 0), (1, 1), False, (4, 3, 11, 11)),  # ... and drop the last row and column
    ((3,), (1,), (0,), (1,), False, (6, 2, 10)),
    ((3,), (2,), (1,), (2,), True, (6, 2, 10)),
    ((2,), (3,), (1,), (1,), True, (6, 2, 8)),
    ((3, 3), (2, 2), (1, 1), (1, 1), False, (5, 3, 7, 7)),
    ((3, 2), (1, 2), (1, 0), (2, 1), True, (5, 3, 7, 6)),
    ((2, 2, 2), (1, 2, 2), (1, 0, 1), (1, 1, 1), False, (3, 2, 3, 4, 5)),
    ((2, 2), (2, 2), (0, 0), (1, 1), False, (3, 8, 8)),  # unbatched (C, H, W): parts of the channels
]


def _args(case):
    kernel, stride, padding, dilation, ceil, shape = case
    d = len(kernel)
    pads = tuple(pl.pool_geometry(n, k, s, p, dl, ceil)[1]
                 for n, k, s, p, dl in zip(shape[-d:], kernel, stride, padding, dilation))
    return dict(kernel=kernel, stride=stride, padding=pads, dilation=dilation)


def _inputs(shape, kind, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "ties":
        return rng.integers(0, 3, size=shape).astype(np.float32)
    if kind == "int":
        return rng.integers(-5, 5, size=shape).astype(np.int64)
    x = rng.standard_normal(shape).astype(np.float32)
    if kind == "nan":
        x.flat[rng.choice(x.size, max(1, x.size // 7), replace=False)] = np.nan
    return x


def _all_three(x, g_kind, args, out):
    """max_pool, max_pool_scatter and max_pool_gather of x, with out= buffers when `out`."""
    y = pl.max_pool.impl(x, **args)
    g = np.random.default_rng(5).standard_normal(y.shape).astype(x.dtype)
    if g_kind == "inf":
        g.flat[::5] = np.inf
    v = np.random.default_rng(6).standard_normal(x.shape).astype(x.dtype)
    scatter_out = np.full(x.shape, 7, dtype=g.dtype) if out else None  # a dead buffer's old contents
    gather_out = np.full(y.shape, 7, dtype=v.dtype) if out else None
    return (y, pl.max_pool_scatter.impl(g, x, y, out=scatter_out, **args),
            pl.max_pool_gather.impl(v, x, y, out=gather_out, **args))


@pytest.fixture
def part_bytes(monkeypatch):
    def set_to(n):
        monkeypatch.setattr(pl, "PART_BYTES", n)
    return set_to


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"k{c[0]}-s{c[1]}-p{c[2]}-d{c[3]}-ceil{c[4]}-{c[5]}")
@pytest.mark.parametrize("kind", ["normal", "ties", "nan", "inf-gradient", "int"])
@pytest.mark.parametrize("out", [False, True], ids=["fresh", "out"])
def test_parts_equal_the_whole_batch(case, kind, out, part_bytes):
    args = _args(case)
    x = _inputs(case[-1], kind)
    g_kind = "inf" if kind == "inf-gradient" else None
    if kind == "int":  # the scatter and gather carry float gradients; integers are pooled only
        part_bytes(0)
        whole = pl.max_pool.impl(x, **args)
        for size in (1, x.nbytes // 3):
            part_bytes(size)
            np.testing.assert_array_equal(pl.max_pool.impl(x, **args), whole)
        return
    part_bytes(0)
    whole = _all_three(x, g_kind, args, out)
    for size in (1, x.nbytes // 3):  # one row of the first axis a part; three parts
        part_bytes(size)
        for name, ours, theirs in zip(("max_pool", "max_pool_scatter", "max_pool_gather"),
                                      _all_three(x, g_kind, args, out), whole):
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, name
            np.testing.assert_array_equal(ours, theirs, err_msg=f"{name}, parts of {size} bytes")


def test_parts_are_whole_rows_of_the_first_axis(part_bytes):
    x = np.zeros((10, 4, 8, 8), np.float32)  # 1 KiB a sample
    part_bytes(3 * 1024)
    assert pl._parts(np, x, 2) == [slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 12)]
    part_bytes(1 << 20)
    assert pl._parts(np, x, 2) is None  # all in one part
    part_bytes(0)
    assert pl._parts(np, x, 2) is None
