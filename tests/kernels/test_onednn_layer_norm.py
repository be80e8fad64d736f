"""Layer norm on oneDNN (avalon/kernels/onednn/layer_norm.py behind avalon/ops/layer_norm.py): against the
numpy path (oneDNN switched off) on many shapes, the forward's use of the statistics, weight and bias it
is given, out= buffers and the primitive cache, the operands left to numpy (float64, non-contiguous, no
rows), and float32 accuracy far from zero on both paths."""
import numpy as np
import pytest

from avalon.kernels import onednn
from avalon.ops import layer_norm as ln

needs_onednn = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")
if onednn.available():
    from avalon.kernels.onednn import layer_norm as kernel

# (x's shape, k: how many trailing axes are normalised)
SHAPES = [((2, 3), 1), ((7, 5), 1), ((5, 4, 9), 1), ((5, 4, 9), 2), ((1, 3, 4, 5), 3), ((2048, 256), 1), ((6,), 1),
          ((3, 1), 1)]

pytestmark = pytest.mark.usefixtures("onednn_on")  # every test runs with oneDNN on (conftest.py)


def _x(*shape, seed=0, scale=1.0, shift=0.0, dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + shift).astype(dtype)


@pytest.fixture
def counted(count_calls):
    """Counts the oneDNN kernels' calls: {'forward': n, 'backward': n}."""
    return count_calls(kernel, "forward", "backward")


def _all_three(x, g, w, b, eps, k):
    stats = ln.layer_norm_stats(x, k=k)
    return (stats, ln.layer_norm_apply(x, stats, w, b, eps=eps, k=k),
            ln.layer_norm_backward(g, x, stats, w, eps=eps, k=k))


@needs_onednn
@pytest.mark.parametrize("shape,k", SHAPES, ids=str)
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
def test_onednn_matches_the_numpy_path(shape, k, affine, counted):
    trailing = shape[len(shape) - k:]
    x, g = _x(*shape, scale=2.0, shift=0.7), _x(*shape, seed=1)
    w = _x(*trailing, seed=2, scale=0.5, shift=1.0) if affine in ("both", "weight") else None
    b = _x(*trailing, seed=3) if affine in ("both", "bias") else None
    on = _all_three(x, g, w, b, 1e-3, k)
    assert counted == {"forward": 1, "backward": 1}
    onednn.set_enabled(False)
    off = _all_three(x, g, w, b, 1e-3, k)
    assert counted == {"forward": 1, "backward": 1}  # the numpy path ran
    np.testing.assert_array_equal(on[0], off[0])  # the statistics are numpy's either way
    np.testing.assert_allclose(on[1], off[1], rtol=1e-5, atol=1e-5)
    size, rows = x.size, x.size // int(np.prod(trailing))
    np.testing.assert_allclose(on[2][:size], off[2][:size], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(on[2][size:], off[2][size:], rtol=1e-4, atol=1e-5 * np.sqrt(rows))


@needs_onednn
def test_the_forward_uses_the_statistics_weight_and_bias_it_is_given(counted):
    # checks dnnl_use_global_stats, dnnl_use_scale and dnnl_use_shift: statistics that are not x's own
    x = _x(3, 2, 4)
    stats = np.array([[[0.5, -1.0], [2.0, 0.0], [1.0, 3.0]], [[4.0, 0.25], [1.0, 9.0], [0.5, 2.0]]], np.float32)
    w, b = np.array([2.0, -1.0, 0.5, 1.5], np.float32), np.array([0.1, 0.2, -0.3, 0.0], np.float32)
    m, v = stats[0][..., None], stats[1][..., None]
    for weight, bias in [(w, b), (w, None), (None, b), (None, None)]:
        y = ln.layer_norm_apply(x, stats, weight, bias, eps=0.0, k=1)
        expected = (x - m) / np.sqrt(v) * (1.0 if weight is None else weight) + (0.0 if bias is None else bias)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    assert counted["forward"] == 4


@needs_onednn
def test_results_go_into_the_buffers_given_and_primitives_are_made_once(counted):
    x, g = _x(3, 4, 16), _x(3, 4, 16, seed=1)
    w, b = _x(16, seed=2), _x(16, seed=3)
    stats = ln.layer_norm_stats.impl(x, k=1)
    y, flat = np.empty_like(x), np.empty(x.size + 32, np.float32)
    assert ln.layer_norm_apply.impl(x, stats, w, b, eps=1e-5, k=1, out=y) is y  # what a compiled replay calls
    assert ln.layer_norm_backward.impl(g, x, stats, w, eps=1e-5, k=1, out=flat) is flat
    made = kernel._cache.created
    for _ in range(3):
        np.testing.assert_array_equal(ln.layer_norm_apply(x, stats, w, b, eps=1e-5, k=1), y)
        np.testing.assert_array_equal(ln.layer_norm_backward(g, x, stats, w, eps=1e-5, k=1), flat)
    assert kernel._cache.created == made
    assert counted == {"forward": 4, "backward": 4}


@needs_onednn
def test_float64_non_contiguous_and_empty_operands_take_the_numpy_path(counted):
    x64, g64 = _x(4, 6, dtype=np.float64), _x(4, 6, seed=1, dtype=np.float64)
    _all_three(x64, g64, None, None, 1e-5, 1)
    x, g = _x(6, 4).T, _x(6, 4, seed=1).T  # (4, 6), strided
    stats, y, flat = _all_three(x, g, _x(6, seed=2), None, 1e-5, 1)
    assert counted == {"forward": 0, "backward": 0}
    on = np.ascontiguousarray(x), np.ascontiguousarray(g)
    expected = _all_three(*on, _x(6, seed=2), None, 1e-5, 1)
    assert counted == {"forward": 1, "backward": 1}
    for a, e in zip((stats, y, flat), expected):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)
    empty = np.zeros((0, 5), np.float32)
    stats, y, flat = _all_three(empty, empty, _x(5, seed=2), _x(5, seed=3), 1e-5, 1)
    assert counted == {"forward": 1, "backward": 1}
    assert stats.shape == (2, 0) and y.shape == (0, 5)
    np.testing.assert_array_equal(flat, np.zeros(10, np.float32))  # no rows: zero weight and bias gradients


@pytest.mark.parametrize("on", [True, False])
def test_a_large_offset_keeps_float32_outputs_and_gradients_exact(on):
    # both paths centre first: an offset 1000 standard deviations away costs what the float32 input's
    # rounding costs (torch's errors here: y 3e-4, x's gradient 3e-4, weight's 1.2e-3)
    if on and not onednn.available():
        pytest.skip("oneDNN (avalon[fast]) is not installed")
    onednn.set_enabled(on)
    x, g = _x(64, 96, scale=0.5, shift=500.0), _x(64, 96, seed=1)
    w, b = _x(96, seed=2, shift=1.0), _x(96, seed=3)
    stats, y, flat = _all_three(x, g, w, b, 1e-5, 1)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    m, v = x64.mean(1, keepdims=True), x64.var(1, keepdims=True)
    np.testing.assert_allclose(stats[0], m[:, 0], rtol=1e-6)
    np.testing.assert_allclose(stats[1], v[:, 0], rtol=1e-5)
    xhat = (x64 - m) / np.sqrt(v + 1e-5)
    np.testing.assert_allclose(y, xhat * w + b, rtol=1e-5, atol=1e-3)
    gy = g64 * w
    gx64 = (gy - gy.mean(1, keepdims=True) - xhat * (gy * xhat).mean(1, keepdims=True)) / np.sqrt(v + 1e-5)
    np.testing.assert_allclose(flat[:x.size].reshape(x.shape), gx64, rtol=1e-3, atol=5e-4)
    np.testing.assert_allclose(flat[x.size:x.size + 96], (g64 * xhat).sum(0), rtol=1e-3, atol=3e-3)
    np.testing.assert_allclose(flat[x.size + 96:], g64.sum(0), rtol=1e-5, atol=1e-4)
