"""Pooling: max, average and adaptive pooling against PyTorch (outputs and input gradients, including
which element of a tie receives the gradient), finite-difference checks of the pooling primitives,
the layers' reprs and shape errors."""
import sys

import numpy as np
import pytest
from nnparity import check_layer

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
from avalon.ops import pool as pl
from avalon.ops import vision as vs


def _x(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _parity(f_avalon, f_torch, x, rtol=1e-5, atol=1e-6):
    torch = pytest.importorskip("torch")
    out = f_avalon(x)
    t = torch.tensor(x, requires_grad=True)
    t_out = f_torch(t)
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=rtol, atol=atol, err_msg="forward")
    w = _x(*out.shape, seed=9)
    _, (g,) = avalon.grad(lambda x: (f_avalon(x) * w).sum(), x)
    (t_out * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=rtol, atol=atol, err_msg="input gradient")


MAX_CASES = [  # (dims, kernel, stride, padding, dilation, ceil_mode, spatial)
    (1, 3, None, 0, 1, False, (10,)),
    (1, 3, 2, 1, 2, True, (10,)),
    (1, 2, 3, 1, 1, True, (8,)),
    (2, 2, None, 0, 1, False, (6, 7)),
    (2, 3, 2, 1, 1, False, (7, 7)),
    (2, 3, 2, 1, 1, True, (6, 8)),
    (2, (3, 2), (1, 2), (1, 0), (2, 1), True, (7, 6)),
    (2, 2, 3, 1, 1, True, (5, 5)),  # ceil mode drops a window that would start in the padding
    (3, 2, (1, 2, 2), (1, 0, 1), 1, False, (3, 4, 5)),
]


@pytest.mark.parametrize("case", MAX_CASES, ids=lambda c: f"{c[0]}d-k{c[1]}-s{c[2]}-p{c[3]}-d{c[4]}-ceil{c[5]}")
def test_max_pool_matches_torch(case):
    torch = pytest.importorskip("torch")
    d, k, s, p, dl, ceil, spatial = case
    ours, theirs = getattr(F, f"max_pool{d}d"), getattr(torch.nn.functional, f"max_pool{d}d")
    _parity(lambda x: ours(x, k, s, p, dl, ceil), lambda x: theirs(x, k, s, p, dl, ceil), _x(2, 3, *spatial))


def test_max_pool_ties_route_the_gradient_like_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).integers(0, 3, size=(2, 2, 7, 7)).astype(np.float32)  # many equal maxima
    _parity(lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: torch.nn.functional.max_pool2d(x, 3, 2, 1), x)
    _parity(lambda x: F.max_pool2d(x, 2), lambda x: torch.nn.functional.max_pool2d(x, 2), np.zeros((1, 1, 4, 4),
                                                                                                   np.float32))
    _parity(lambda x: F.adaptive_max_pool2d(x, (3, 2)), lambda x: torch.nn.functional.adaptive_max_pool2d(x, (3, 2)), x)


AVG_CASES = [  # (dims, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, spatial)
    (1, 3, None, 0, False, True, None, (10,)),
    (1, 3, 2, 1, True, False, None, (10,)),
    (2, 2, None, 0, False, True, None, (6, 7)),
    (2, 3, 2, 1, False, True, None, (7, 7)),
    (2, 3, 2, 1, True, False, None, (6, 8)),
    (2, 3, 2, 1, True, True, None, (6, 8)),  # the ceil-mode overhang is never counted
    (2, (3, 2), (2, 1), (1, 1), False, True, 5, (7, 6)),
    (3, 2, (1, 2, 2), (1, 0, 1), True, False, None, (3, 4, 5)),
]


@pytest.mark.parametrize("case", AVG_CASES,
                         ids=lambda c: f"{c[0]}d-k{c[1]}-s{c[2]}-p{c[3]}-ceil{c[4]}-inc{c[5]}-div{c[6]}")
def test_avg_pool_matches_torch(case):
    torch = pytest.importorskip("torch")
    d, k, s, p, ceil, include, div, spatial = case
    ours, theirs = getattr(F, f"avg_pool{d}d"), getattr(torch.nn.functional, f"avg_pool{d}d")
    extra = {} if d == 1 else {"divisor_override": div}
    _parity(lambda x: ours(x, k, s, p, ceil, include, **extra), lambda x: theirs(x, k, s, p, ceil, include, **extra),
            _x(2, 3, *spatial))


@pytest.mark.parametrize("size,out", [((10,), 4), ((9,), 9), ((7, 9), (3, 4)), ((8, 6), (None, 4)), ((5, 5), 1),
                                      ((4, 6), (8, 9)), ((2, 5, 7), (2, 3, 4))])
def test_adaptive_pools_match_torch(size, out):
    torch = pytest.importorskip("torch")
    d = len(size)
    x = _x(2, 3, *size)
    ours, theirs = getattr(F, f"adaptive_avg_pool{d}d"), getattr(torch.nn.functional, f"adaptive_avg_pool{d}d")
    _parity(lambda x: ours(x, out), lambda x: theirs(x, out), x)
    if d < 3:
        ours, theirs = getattr(F, f"adaptive_max_pool{d}d"), getattr(torch.nn.functional, f"adaptive_max_pool{d}d")
        _parity(lambda x: ours(x, out), lambda x: theirs(x, out), x)


def test_unbatched_input_matches_torch():
    torch = pytest.importorskip("torch")
    x = _x(3, 6, 5)
    _parity(lambda x: F.max_pool2d(x, 2, ceil_mode=True),
            lambda x: torch.nn.functional.max_pool2d(x, 2, ceil_mode=True), x)
    _parity(lambda x: F.avg_pool2d(x, 3, 1, 1), lambda x: torch.nn.functional.avg_pool2d(x, 3, 1, 1), x)


def test_nan_propagates_through_max_pool_and_its_gradient_goes_where_torch_sends_it():
    torch = pytest.importorskip("torch")
    x = _x(1, 1, 4, 4)
    x[0, 0, 1, 2] = np.nan
    out = F.max_pool2d(x, 2)
    assert np.isnan(out[0, 0, 0, 1]) and np.isfinite(out).sum() == 3
    x[0, 0, 0, 0] = x[0, 0, 1, 1] = np.nan  # two NaNs in one window: torch picks the last
    t = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(t, 2).sum().backward()
    _, (g,) = avalon.grad(lambda x: F.max_pool2d(x, 2).sum(), x)
    np.testing.assert_array_equal(g, t.grad.numpy())


WINDOWS = dict(kernel=(3, 2), stride=(2, 1), padding=((1, 1), (0, 1)), dilation=(1, 2))


def test_max_pool_primitives_pass_gradcheck():
    x = _x(2, 2, 6, 5, dtype=np.float64)
    out = pl.max_pool(x, **WINDOWS)
    v = _x(*x.shape, seed=1, dtype=np.float64)
    assert avalon.gradcheck(lambda x: (pl.max_pool(x, **WINDOWS) ** 2).sum(), x)
    assert avalon.gradcheck(lambda g: (pl.max_pool_scatter(g, x, out, **WINDOWS) ** 2).sum(), _x(*out.shape, seed=2,
                                                                                          dtype=np.float64))
    assert avalon.gradcheck(lambda v: (pl.max_pool_gather(v, x, out, **WINDOWS) ** 2).sum(), v)


def test_gradient_of_max_pool_gradient_passes_gradcheck():
    x, w = _x(1, 2, 6, 6, dtype=np.float64), _x(1, 2, 3, 3, seed=1, dtype=np.float64)

    def penalty(x):
        _, (g,) = avalon.grad(lambda x: (F.max_pool2d(x, 3, 2, 1) ** 3 * w).sum(), x)
        return (g ** 2).sum()

    assert avalon.gradcheck(penalty, x)


def test_average_and_resampling_primitives_pass_gradcheck():
    x = _x(2, 2, 6, 5, dtype=np.float64)
    params = dict(kernel=(3, 2), stride=(2, 2), padding=((1, 2), (1, 1)), count_include_pad=False,
                  divisor_override=None)
    out = pl.avg_pool(x, **params)
    assert avalon.gradcheck(lambda x: (pl.avg_pool(x, **params) ** 2).sum(), x)
    assert avalon.gradcheck(lambda g: (pl.avg_pool_transpose(g, shape=(6, 5), **params) ** 2).sum(),
                            _x(*out.shape, seed=1, dtype=np.float64))
    maps = (("area", 6, 4), ("linear", 5, 7, False, None))
    assert avalon.gradcheck(lambda x: (vs.resample(x, maps=maps) ** 2).sum(), x)
    assert avalon.gradcheck(lambda g: (vs.resample_transpose(g, maps=maps) ** 2).sum(), _x(2, 2, 4, 7, seed=2,
                                                                                         dtype=np.float64))


@pytest.mark.parametrize("make", [
    lambda nn: nn.MaxPool1d(3, 2, 1), lambda nn: nn.MaxPool2d(2), lambda nn: nn.MaxPool2d(3, 2, 1, ceil_mode=True),
    lambda nn: nn.MaxPool3d(2, padding=1), lambda nn: nn.AvgPool1d(3), lambda nn: nn.AvgPool2d(3, 2, 1),
    lambda nn: nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False), lambda nn: nn.AvgPool3d(2),
    lambda nn: nn.AdaptiveAvgPool1d(3), lambda nn: nn.AdaptiveAvgPool2d((2, None)), lambda nn: nn.AdaptiveAvgPool3d(1),
    lambda nn: nn.AdaptiveMaxPool1d(4), lambda nn: nn.AdaptiveMaxPool2d((3, 2)),
], ids=lambda make: "")
def test_layers_match_torch(make):
    torch = pytest.importorskip("torch")
    layer, torch_layer = make(nn), make(torch.nn)
    assert repr(layer) == repr(torch_layer)
    d = 1 if "1d" in repr(layer) else 3 if "3d" in repr(layer) else 2
    check_layer(layer, torch_layer, _x(2, 3, *(5, 7, 4)[:d]), rtol=1e-5, atol=1e-6)


def test_wrong_rank_raises_shape_error_at_the_users_line():
    layer = nn.MaxPool2d(2)
    with pytest.raises(avalon.ShapeError) as info:
        line = sys._getframe().f_lineno + 1
        layer(_x(8, 8))
    message = str(info.value)
    assert "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)" in message
    assert "(N, C, H, W) or (C, H, W)" in message and "got (8, 8)" in message
    assert f"test_pooling.py:{line}" in message and "layer(_x(8, 8))" in message
    with pytest.raises(avalon.ShapeError, match=r"AdaptiveAvgPool1d\(output_size=2\).*\(N, C, W\)"):
        nn.AdaptiveAvgPool1d(2)(_x(2, 3, 4, 4))
    with pytest.raises(avalon.ShapeError, match="at least as large as the kernel"):
        F.max_pool2d(_x(1, 1, 2, 2), 3)


def test_invalid_arguments_are_refused():
    with pytest.raises(avalon.AvalonError, match="at most half of the effective kernel size"):
        F.max_pool2d(_x(1, 1, 6, 6), 2, padding=2)
    with pytest.raises(avalon.AvalonError, match="return_indices"):
        F.max_pool2d(_x(1, 1, 6, 6), 2, return_indices=True)


@pytest.mark.parametrize("args", [(2,), (3, 2, 1)], ids=["tiling windows", "overlapping windows"])
def test_infinite_gradients_reach_only_each_windows_maximum(args):
    # the scatter multiplies g by each offset's mask while g is finite; inf·0 would be NaN, so an
    # infinite g goes the slower exact way: positions that are no window's maximum still get 0
    torch = pytest.importorskip("torch")
    x = np.abs(_x(1, 2, 6, 6)) + 0.1  # positive: the loss is +inf, not inf - inf
    w = np.ones(F.max_pool2d(x, *args).shape, np.float32)
    w[0, 0, 1, 1] = w[0, 1, 0, 2] = np.inf
    t = torch.tensor(x, requires_grad=True)
    (torch.nn.functional.max_pool2d(t, *args) * torch.tensor(w)).sum().backward()
    _, (g,) = avalon.grad(lambda x: (F.max_pool2d(x, *args) * w).sum(), x)
    np.testing.assert_array_equal(g, t.grad.numpy())
