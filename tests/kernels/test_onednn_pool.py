"""Max pooling's gradient on oneDNN (avalon/kernels/onednn/pool.py behind ops/pool.max_pool_scatter):
against the numpy path and PyTorch (padding, stride, ceil_mode, dilation, 1 to 3 spatial axes, ties,
batch 1), in NCHW and channels last, finite differences through avalon.nn, NaN and non-contiguous
operands (numpy's), the switch, and which layout a CPU's kernels decide."""
import ctypes

import numpy as np
import pytest

import avalon
import avalon.nn as nn
from avalon.kernels import onednn
from avalon.ops import pool as pl

needs_onednn = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")
if onednn.available():
    from avalon.kernels.onednn import pool as kernel
    from avalon.kernels.onednn import primitive as P

# (input shape, kernel, stride, padding, dilation, ceil_mode)
CASES = [
    ((2, 3, 9, 9), 2, 2, 0, 1, False),
    ((2, 3, 9, 9), 3, 2, 1, 1, True),
    ((1, 4, 10, 7), (3, 2), (1, 2), (1, 0), (2, 1), False),
    ((3, 2, 11), 3, 2, 1, 1, True),
    ((2, 2, 5, 6, 7), (2, 2, 3), (2, 1, 2), (1, 0, 1), 1, True),
    ((4, 8, 26, 26), 2, 2, 0, 1, False),
]


pytestmark = pytest.mark.usefixtures("onednn_on")  # every test runs with oneDNN on (conftest.py)


@pytest.fixture(autouse=True, params=["plain", "channels_last"])
def layout(request, monkeypatch):
    """Each test in each layout, reference kernels allowed, so that every CPU runs both (AVX2 pools
    NCHW on a reference kernel); test_the_first_layout_with_jit_kernels_is_taken checks the choice."""
    if onednn.available():
        monkeypatch.setattr(kernel, "LAYOUTS", (request.param,))
        monkeypatch.setattr(P, "REFERENCE_KERNELS", ())
        kernel._cache.clear()
        yield request.param
        kernel._cache.clear()
    else:
        yield request.param


@pytest.fixture
def counted(monkeypatch):
    calls = []
    original = kernel.max_pool_scatter

    def wrapped(*args):
        calls.append(args[1].shape)
        return original(*args)
    monkeypatch.setattr(kernel, "max_pool_scatter", wrapped)
    return calls


def _layer(module, shape, kernel_size, stride, padding, dilation, ceil_mode):
    name = f"MaxPool{len(shape) - 2}d"
    return getattr(module, name)(kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)


def _data(shape, ties, seed=0):
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: most windows hold their maximum more than once
        return rng.integers(0, 3, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


@needs_onednn
def test_the_algorithm_value_is_the_librarys():
    name = P.lib().dnnl_alg_kind2str
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.c_int]
    assert name(kernel.POOLING_MAX).decode() == "pooling_max"


@needs_onednn
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("ties", [False, True])
def test_gradients_match_torch_and_the_numpy_path(case, ties, counted):
    torch = pytest.importorskip("torch")
    shape, *geometry = case
    x = _data(shape, ties)
    layer, torch_layer = _layer(nn, shape, *geometry), _layer(torch.nn, shape, *geometry)
    y = np.asarray(layer(x))
    c = _data(y.shape, False, seed=1)
    _, (gx,) = avalon.grad(lambda x: (layer(x) * c).sum(), x)
    assert counted, "the oneDNN kernel did not run"
    xt = torch.tensor(x, requires_grad=True)
    (torch_layer(xt) * torch.tensor(c)).sum().backward()
    # overlapping windows add their shares in another order: equal to rounding
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-6, atol=1e-6)
    previous = onednn.set_enabled(False)
    try:
        _, (numpy_gx,) = avalon.grad(lambda x: (layer(x) * c).sum(), x)
    finally:
        onednn.set_enabled(previous)
    np.testing.assert_allclose(gx, numpy_gx, rtol=1e-6, atol=1e-6)
    assert len(counted) == 1  # the replay with oneDNN off ran numpy's scatter


@needs_onednn
def test_gradient_matches_finite_differences(counted):
    layer = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
    x = _data((2, 3, 8, 9), False, seed=3)
    c = _data(tuple(np.asarray(layer(x)).shape), False, seed=4)
    _, (gx,) = avalon.grad(lambda x: (layer(x) * c).sum(), x)
    assert counted
    h = 1e-2  # values are spaced far more than h apart: no window changes its maximum
    for index in [(0, 0, 0, 0), (1, 2, 7, 8), (0, 1, 3, 4), (1, 0, 4, 2)]:
        step = np.zeros_like(x)
        step[index] = h
        numeric = ((np.asarray(layer(x + step)) - np.asarray(layer(x - step))) * c).sum() / (2 * h)
        assert gx[index] == pytest.approx(numeric, rel=1e-3, abs=1e-4)


@needs_onednn
def test_nan_windows_and_non_contiguous_inputs_take_the_numpy_path(counted):
    kw = dict(kernel=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0)), dilation=(1, 1))
    x = _data((2, 3, 6, 6), False)
    x[0, 1, 2, 3] = np.nan
    y = pl.max_pool.impl(x, **kw)
    g = _data(y.shape, False, seed=1)
    with_nan = pl.max_pool_scatter.impl(g, x, y, **kw)
    assert with_nan[0, 1, 2, 3] == g[0, 1, 1, 1]  # the NaN is the window's maximum, as torch
    strided = _data((2, 6, 6, 3), False).transpose(0, 3, 1, 2)
    y = pl.max_pool.impl(strided, **kw)
    np.testing.assert_array_equal(pl.max_pool_scatter.impl(g, strided, y, **kw),
                                  pl.max_pool_scatter.impl(g, np.ascontiguousarray(strided), y, **kw))
    assert len(counted) == 1  # only the contiguous copy went to oneDNN


@needs_onednn
def test_the_result_goes_into_the_buffer_given_and_the_primitives_are_made_once(counted):
    kw = dict(kernel=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0)), dilation=(1, 1))
    x = _data((3, 4, 8, 8), False)
    y = pl.max_pool.impl(x, **kw)
    g = _data(y.shape, False, seed=1)
    out = np.full_like(x, 7.0)
    assert pl.max_pool_scatter.impl(g, x, y, **kw, out=out) is out
    made = kernel._cache.created
    np.testing.assert_array_equal(pl.max_pool_scatter.impl(g, x, y, **kw), out)
    assert kernel._cache.created == made and len(counted) == 2
    onednn.set_enabled(False)
    try:
        np.testing.assert_array_equal(pl.max_pool_scatter.impl(g, x, y, **kw), out)
    finally:
        onednn.set_enabled(True)
    assert len(counted) == 2


@needs_onednn
def test_the_first_layout_with_jit_kernels_is_taken(monkeypatch, layout):
    if layout == "channels_last":
        pytest.skip("the choice is made over both layouts")
    geometry = kernel._geometry((2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1))
    shapes = ((2, 3, 8, 8), (2, 3, 4, 4))
    monkeypatch.setattr(kernel, "LAYOUTS", ("plain", "channels_last"))
    real = kernel._plan(*shapes, geometry)  # on this CPU: JIT kernels, or None
    assert real is None or not real.is_reference()
    monkeypatch.setattr(P, "REFERENCE_KERNELS", ("simple", "ref"))  # as the library
    monkeypatch.setattr(kernel._Plan, "is_reference", lambda plan: plan.reorders is None)  # plain: no JIT
    assert kernel._plan(*shapes, geometry).reorders is not None
    monkeypatch.setattr(kernel._Plan, "is_reference", lambda plan: True)  # neither
    assert kernel._plan(*shapes, geometry) is None


@needs_onednn
def test_without_jit_kernels_numpy_scatters(monkeypatch, counted):
    kw = dict(kernel=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0)), dilation=(1, 1))
    x = _data((2, 3, 8, 8), True)
    y = pl.max_pool.impl(x, **kw)
    g = _data(y.shape, False, seed=1)
    on_onednn = pl.max_pool_scatter.impl(g, x, y, **kw)
    monkeypatch.setattr(P, "REFERENCE_KERNELS", ("",))  # every kernel's name starts with ""
    kernel._cache.clear()
    out = np.full_like(x, np.nan)
    assert kernel.max_pool_scatter(g, x, *kw.values(), out) is None and np.isnan(out).all()
    asked = len(counted)
    np.testing.assert_array_equal(pl.max_pool_scatter.impl(g, x, y, **kw), on_onednn)
    assert len(counted) == asked + 1  # oneDNN was asked, answered None, and numpy scattered
