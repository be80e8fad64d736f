"""The plain convolution path multiplying each sample's columns apart (conv.PER_SAMPLE_POSITIONS) gives
what one product over the whole batch gives: conv, conv_weight_grad and the unit-stride conv_transpose
that runs through conv, 1-3 spatial axes, groups, strides, dilations, asymmetric padding; small outputs
keep the whole-batch product."""
import numpy as np
import pytest

from avalon.ops import conv as cv

pytestmark = pytest.mark.usefixtures("numpy_kernels")  # these test the numpy paths

CASES = [  # (x shape, weight shape, stride, padding, dilation, groups): channels below the fast paths'
    ((3, 1, 28, 28), (4, 1, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),  # LeNet's first layer, smaller
    ((2, 3, 17, 16), (6, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),  # a ResNet stem
    ((2, 4, 19, 18), (6, 2, 3, 2), (2, 1), ((1, 0), (2, 1)), (1, 2), 2),
    ((2, 2, 40), (4, 2, 5), (1,), ((2, 3),), (2,), 1),
    ((1, 2, 5, 7, 8), (3, 2, 2, 3, 3), (1, 1, 1), ((1, 0), (1, 1), (0, 1)), (1, 1, 1), 1),
]


def _rng_arrays(case, dtype):
    xs, ws, stride, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    return rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)


def _all(case, x, w):
    _, _, stride, padding, dilation, groups = case
    y = cv.conv.impl(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    gw = cv.conv_weight_grad.impl(x, g, kernel=tuple(w.shape[2:]), stride=stride, padding=padding,
                                  dilation=dilation, groups=groups)
    gx = cv.conv_transpose.impl(g, w, shape=tuple(x.shape[2:]), stride=stride, padding=padding,
                                dilation=dilation, groups=groups)
    return y, gw, gx


@pytest.mark.parametrize("case", CASES, ids=[f"{len(c[0]) - 2}d-{c[0]}-g{c[5]}" for c in CASES])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_per_sample_products_equal_the_whole_batch(case, dtype, rtol, monkeypatch):
    x, w = _rng_arrays(case, dtype)
    monkeypatch.setattr(cv, "PER_SAMPLE_POSITIONS", 0)
    whole = _all(case, x, w)
    monkeypatch.setattr(cv, "PER_SAMPLE_POSITIONS", 1)
    for name, ours, theirs in zip(("conv", "conv_weight_grad", "conv_transpose"), _all(case, x, w), whole):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, name
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * 10, err_msg=name)


def test_only_outputs_with_enough_positions_run_per_sample(monkeypatch):
    calls = []
    sample_columns = cv._sample_columns
    monkeypatch.setattr(cv, "_sample_columns", lambda *a: calls.append(a[5]) or sample_columns(*a))
    x, w = np.zeros((2, 1, 18, 18), np.float32), np.zeros((2, 1, 3, 3), np.float32)
    monkeypatch.setattr(cv, "PER_SAMPLE_POSITIONS", 256)  # 16×16 positions: per sample
    cv.conv.impl(x, w, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1)
    monkeypatch.setattr(cv, "PER_SAMPLE_POSITIONS", 257)  # one more: the whole batch
    cv.conv.impl(x, w, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1)
    assert calls == [(16, 16)]
