"""Batch norm on oneDNN (avalon/kernels/onednn/norm.py behind avalon/ops/batch_norm.py): against the
numpy path (oneDNN switched off) and PyTorch on many shapes, gradients by finite differences through
avalon.nn, the switch (counted calls), non-contiguous operands, out= buffers and the primitive cache."""
import ctypes

import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
from avalon.kernels import onednn
from avalon.ops import batch_norm as bn

needs_onednn = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")
if onednn.available():
    from avalon.kernels.onednn import norm as kernel
    from avalon.kernels.onednn import primitive as P

SHAPES = [(2, 3), (7, 5), (5, 4, 9), (1, 3, 4, 5), (4, 6, 5, 7), (3, 2, 3, 4, 5), (9, 64, 3, 3)]


def _x(*shape, seed=0, scale=1.0, shift=0.0, dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + shift).astype(dtype)


pytestmark = pytest.mark.usefixtures("onednn_on")  # every test runs with oneDNN on (conftest.py)


@pytest.fixture
def switch(onednn_on):
    """set_enabled, for a test that flips the switch (`onednn_on` restores it)."""
    return onednn.set_enabled


@pytest.fixture
def counted(count_calls):
    """Counts the oneDNN kernels' calls: {'forward': n, 'backward': n}."""
    return count_calls(kernel, "forward", "backward")


def _all_three(x, g, w, b, eps):
    stats = bn.batch_norm_stats(x)
    return stats, bn.batch_norm_apply(x, stats, w, b, eps=eps), bn.batch_norm_backward(g, x, stats, w, eps=eps)


@needs_onednn
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_onednn_matches_the_numpy_path(shape, affine, switch, counted):
    c = shape[1]
    x, g = _x(*shape, scale=2.0, shift=0.7), _x(*shape, seed=1)
    w = _x(c, seed=2, scale=0.5, shift=1.0) if affine != "none" else None
    b = _x(c, seed=3) if affine == "both" else None
    on = _all_three(x, g, w, b, 1e-3)
    assert counted == {"forward": 1, "backward": 1}
    switch(False)
    off = _all_three(x, g, w, b, 1e-3)
    assert counted == {"forward": 1, "backward": 1}  # the numpy path ran
    np.testing.assert_array_equal(on[0], off[0])  # the statistics are numpy's either way
    np.testing.assert_allclose(on[1], off[1], rtol=1e-5, atol=1e-5)
    size = x.size
    np.testing.assert_allclose(on[2][:size], off[2][:size], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(on[2][size:], off[2][size:], rtol=1e-4, atol=1e-4 * np.sqrt(size / c))


@needs_onednn
def test_the_forward_uses_the_statistics_it_is_given_weight_and_bias(counted):
    # checks dnnl_use_global_stats, dnnl_use_scale and dnnl_use_shift: given statistics that are not x's own
    x = _x(4, 3, 5, 6)
    stats = np.array([[0.5, -1.0, 2.0], [4.0, 0.25, 1.0]], np.float32)
    w, b = np.array([2.0, -1.0, 0.5], np.float32), np.array([0.1, 0.2, -0.3], np.float32)
    y = bn.batch_norm_apply(x, stats, w, b, eps=0.0)
    m, v = stats[0][:, None, None], stats[1][:, None, None]
    np.testing.assert_allclose(y, (x - m) / np.sqrt(v) * w[:, None, None] + b[:, None, None], rtol=1e-5, atol=1e-6)
    assert counted["forward"] == 1


@needs_onednn
def test_the_backward_is_onednns_full_backward():
    name = P.lib().dnnl_prop_kind2str
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.c_int]
    assert name(kernel.BACKWARD).decode() == "backward"  # not backward_data: scale and shift get gradients


def _torch_batch_norm(x, g, w, b, eps):
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=True)
    wt = None if w is None else torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    y = torch.nn.functional.batch_norm(xt, None, None, wt, bt, training=True, eps=eps)
    y.backward(torch.tensor(g))
    return y.detach().numpy(), xt.grad.numpy(), None if w is None else wt.grad.numpy(), \
        None if b is None else bt.grad.numpy()


@needs_onednn
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_functional_batch_norm_matches_torch_with_onednn(shape, counted):
    c = shape[1]
    x, g = _x(*shape, scale=3.0, shift=-1.5), _x(*shape, seed=1)
    w, b = _x(c, seed=2, scale=0.5, shift=1.0), _x(c, seed=3)
    y, (gx, gw, gb) = avalon.grad(lambda x, w, b: (F.batch_norm(x, None, None, w, b, training=True) * g).sum(),
                                  x, w, b)
    ty, tgx, tgw, tgb = _torch_batch_norm(x, g, w, b, 1e-5)
    assert counted["forward"] >= 1 and counted["backward"] >= 1
    np.testing.assert_allclose(gx, tgx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gw, tgw, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(gb, tgb, rtol=1e-4, atol=1e-3)
    out = F.batch_norm(x, None, None, w, b, training=True)
    np.testing.assert_allclose(out, ty, rtol=1e-5, atol=1e-5)


@needs_onednn
@pytest.mark.parametrize("make,shape", [
    (lambda nn: nn.BatchNorm1d(5), (8, 5)),
    (lambda nn: nn.BatchNorm1d(4, affine=False), (3, 4, 7)),
    (lambda nn: nn.BatchNorm2d(6, momentum=None), (2, 6, 5, 4)),
    (lambda nn: nn.BatchNorm2d(3, bias=False), (1, 3, 4, 4)),
    (lambda nn: nn.BatchNorm3d(2, eps=1e-3), (2, 2, 3, 4, 3)),
], ids=lambda v: "" if callable(v) else str(v))
def test_modules_train_and_evaluate_like_torch(make, shape, counted):
    torch = pytest.importorskip("torch")
    layer, torch_layer = make(nn), make(torch.nn)
    if torch_layer.weight is not None:
        torch_layer.weight.data = torch.tensor(_x(shape[1], seed=5, scale=0.5, shift=1.0))
    layer.load_state_dict(torch_layer.state_dict())
    affine = torch_layer.weight is not None
    opt = avalon.optim.SGD(layer.parameters(), lr=0.1) if affine else None
    torch_opt = torch.optim.SGD(torch_layer.parameters(), lr=0.1) if affine else None
    w = _x(*shape, seed=9)
    for step in range(3):
        x = _x(*shape, seed=step, scale=2.0, shift=0.5)
        loss, grads = avalon.grad(lambda m, x: (m(x) ** 2 * w).sum(), layer, x, argnums=0)
        torch_loss = (torch_layer(torch.tensor(x)) ** 2 * torch.tensor(w)).sum()
        if affine:
            opt.step(grads[0])
            torch_layer.zero_grad()
            torch_loss.backward()
            torch_opt.step()
        np.testing.assert_allclose(float(loss), torch_loss.item(), rtol=1e-4)
    for key, value in torch_layer.state_dict().items():
        np.testing.assert_allclose(np.asarray(layer.state_dict()[key]), value.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=key)
    assert counted["forward"] >= 3 and counted["backward"] >= (3 if affine else 0)
    layer.eval()
    torch_layer.eval()
    x = _x(*shape, seed=7)
    np.testing.assert_allclose(layer(x), torch_layer(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


@needs_onednn
def test_gradients_through_a_module_match_finite_differences(counted):
    layer = nn.BatchNorm2d(3)
    layer.weight[...] = np.array([0.5, 1.5, -1.0], np.float32)
    layer.bias[...] = np.array([0.1, -0.2, 0.3], np.float32)
    x, c = _x(2, 3, 4, 5, scale=1.5, shift=0.3), _x(2, 3, 4, 5, seed=4)

    def loss(m, x):
        return (m(x) ** 3 * c).sum()

    _, (grads, gx) = avalon.grad(loss, layer, x)
    assert counted["backward"] >= 1
    x64 = x.astype(np.float64)

    def value(x, w, b):  # the same loss in float64 numpy
        m, v = x.mean((0, 2, 3), keepdims=True), x.var((0, 2, 3), keepdims=True)
        y = (x - m) / np.sqrt(v + 1e-5) * w[:, None, None] + b[:, None, None]
        return (y ** 3 * c).sum()

    w, b = layer.weight.astype(np.float64), layer.bias.astype(np.float64)
    h = 1e-4
    for index in [(0, 0, 0, 0), (1, 2, 3, 4), (0, 1, 2, 1)]:
        step = np.zeros_like(x64)
        step[index] = h
        numeric = (value(x64 + step, w, b) - value(x64 - step, w, b)) / (2 * h)
        assert gx[index] == pytest.approx(numeric, rel=1e-3, abs=1e-3)
    for k in range(3):
        step = np.zeros(3)
        step[k] = h
        assert grads["weight"][k] == pytest.approx((value(x64, w + step, b) - value(x64, w - step, b)) / (2 * h),
                                                   rel=1e-3, abs=1e-3)
        assert grads["bias"][k] == pytest.approx((value(x64, w, b + step) - value(x64, w, b - step)) / (2 * h),
                                                 rel=1e-3, abs=1e-3)


@needs_onednn
def test_switching_off_takes_effect_in_a_step_compiled_before(switch, counted):
    layer = nn.BatchNorm2d(4)
    x = _x(3, 4, 5, 5)

    def loss(m, x):
        return (m(x) ** 2).sum()

    first = avalon.grad(loss, layer, x, argnums=0)
    calls = dict(counted)
    assert calls["forward"] >= 1 and calls["backward"] >= 1
    switch(False)
    second = avalon.grad(loss, layer, x, argnums=0)  # the cached replay
    assert counted == calls  # no oneDNN call: the numpy path ran
    np.testing.assert_allclose(second[0], first[0], rtol=1e-5)
    for key in ("weight", "bias"):
        np.testing.assert_allclose(second[1][0][key], first[1][0][key], rtol=1e-4, atol=1e-4)


@needs_onednn
def test_non_contiguous_operands_take_the_numpy_path_and_match_torch(counted):
    base = _x(4, 5, 6, 3, scale=2.0)
    x = base.transpose(0, 3, 1, 2)[:, :, ::2]  # (4, 3, 3, 6), strided
    g = _x(4, 3, 6, 3, seed=1).transpose(0, 1, 3, 2)
    w, b = _x(3, seed=2, shift=1.0), _x(3, seed=3)
    stats = bn.batch_norm_stats(x)
    y = bn.batch_norm_apply(x, stats, w, b, eps=1e-5)
    flat = bn.batch_norm_backward(g, x, stats, w, eps=1e-5)
    assert counted == {"forward": 0, "backward": 0}
    ty, tgx, tgw, tgb = _torch_batch_norm(np.ascontiguousarray(x), np.ascontiguousarray(g), w, b, 1e-5)
    np.testing.assert_allclose(y, ty, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(flat[:x.size].reshape(x.shape), tgx, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(flat[x.size:x.size + 3], tgw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(flat[x.size + 3:], tgb, rtol=1e-4, atol=1e-4)


@needs_onednn
def test_results_go_into_the_buffers_given_and_primitives_are_made_once(counted):
    x, g = _x(3, 4, 5, 6), _x(3, 4, 5, 6, seed=1)
    w, b = _x(4, seed=2), _x(4, seed=3)
    stats = bn.batch_norm_stats.impl(x)
    y, flat = np.empty_like(x), np.empty(x.size + 8, np.float32)
    assert bn.batch_norm_apply.impl(x, stats, w, b, eps=1e-5, out=y) is y  # what a compiled replay calls
    assert bn.batch_norm_backward.impl(g, x, stats, w, eps=1e-5, out=flat) is flat
    made = kernel._cache.created
    for _ in range(3):
        np.testing.assert_array_equal(bn.batch_norm_apply(x, stats, w, b, eps=1e-5), y)
        np.testing.assert_array_equal(bn.batch_norm_backward(g, x, stats, w, eps=1e-5), flat)
    assert kernel._cache.created == made
    assert counted == {"forward": 4, "backward": 4}


def test_statistics_are_exact_for_a_large_offset():
    # the centred second pass keeps the variance of values far from zero (a one-pass E[x²] - E[x]² would not)
    x = _x(64, 3, 16, 16, scale=0.01, shift=1000.0)
    stats = bn.batch_norm_stats(x)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(stats[0], x64.mean((0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(stats[1], x64.var((0, 2, 3)), rtol=1e-3)


@pytest.mark.parametrize("on", [True, False])
def test_a_large_offset_keeps_float32_outputs_and_gradients_exact(on, switch):
    # an offset a thousand standard deviations away costs what the float32 mean's rounding costs (as in
    # torch): both paths centre first
    if on and not onednn.available():
        pytest.skip("oneDNN (avalon[fast]) is not installed")
    switch(on)
    x, g = _x(8, 3, 6, 6, scale=0.5, shift=500.0), _x(8, 3, 6, 6, seed=1)
    w, b = _x(3, seed=2, shift=1.0), _x(3, seed=3)
    stats, y, flat = _all_three(x, g, w, b, 1e-5)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    m, v = x64.mean((0, 2, 3), keepdims=True), x64.var((0, 2, 3), keepdims=True)
    xhat = (x64 - m) / np.sqrt(v + 1e-5)
    np.testing.assert_allclose(y, xhat * w[:, None, None] + b[:, None, None], rtol=1e-5, atol=1e-4)
    n = x.size // 3
    gw64, gb64 = (g64 * xhat).sum((0, 2, 3)), g64.sum((0, 2, 3))
    gx64 = w[:, None, None] / np.sqrt(v + 1e-5) * (g64 - gb64[:, None, None] / n - xhat * gw64[:, None, None] / n)
    np.testing.assert_allclose(flat[:x.size].reshape(x.shape), gx64, rtol=1e-3, atol=2e-4)
