"""nn.init: statistics on large arrays, bounds, orthogonality, gains, seeding, in-place filling."""
import math

import numpy as np
import pytest

import avalon
import avalon.nn as nn
from avalon.nn import init


def _array(*shape, dtype=np.float32):
    return np.empty(shape, dtype=dtype)


def test_fills_in_place_and_returns_the_array():
    w = _array(40, 30)
    assert init.uniform_(w, -1, 1) is w and w.dtype == np.float32
    assert init.zeros_(w) is w and not w.any()
    assert init.ones_(w) is w and (w == 1).all()
    assert init.constant_(w, 0.25) is w and (w == 0.25).all()
    np.testing.assert_array_equal(init.eye_(_array(3, 5)), np.eye(3, 5))


def test_uniform_and_normal_statistics():
    w = init.uniform_(_array(400, 500), -2.0, 3.0)
    assert w.min() >= -2.0 and w.max() < 3.0
    assert abs(w.mean() - 0.5) < 0.02 and abs(w.std() - 5 / math.sqrt(12)) < 0.01
    w = init.normal_(_array(400, 500), mean=1.5, std=0.5)
    assert abs(w.mean() - 1.5) < 0.005 and abs(w.std() - 0.5) < 0.005


def test_trunc_normal_bounds_and_statistics():
    w = init.trunc_normal_(_array(400, 500), mean=0.0, std=1.0, a=-1.0, b=2.0)
    assert w.min() >= -1.0 and w.max() <= 2.0
    # moments of N(0, 1) truncated to [-1, 2]
    phi = lambda t: math.exp(-t * t / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    Phi = lambda t: 0.5 * (1 + math.erf(t / math.sqrt(2)))  # noqa: E731
    Z = Phi(2) - Phi(-1)
    mean = (phi(-1) - phi(2)) / Z
    var = 1 + (-1 * phi(-1) - 2 * phi(2)) / Z - mean ** 2
    assert abs(w.mean() - mean) < 0.01 and abs(w.std() - math.sqrt(var)) < 0.01
    with pytest.raises(avalon.AvalonError, match="a < b"):
        init.trunc_normal_(_array(2), a=1.0, b=0.0)


@pytest.mark.parametrize("shape", [(300, 200), (64, 16, 3, 3)])
def test_xavier_and_kaiming_scales(shape):
    fan_in = shape[1] * int(np.prod(shape[2:]))
    fan_out = shape[0] * int(np.prod(shape[2:]))
    w = init.xavier_uniform_(_array(*shape), gain=2.0)
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    w = init.xavier_normal_(_array(*shape))
    assert abs(w.std() / math.sqrt(2 / (fan_in + fan_out)) - 1) < 0.03
    w = init.kaiming_uniform_(_array(*shape), a=math.sqrt(5))
    bound = math.sqrt(3) * math.sqrt(2 / 6) / math.sqrt(fan_in)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    w = init.kaiming_normal_(_array(*shape), mode="fan_out", nonlinearity="relu")
    assert abs(w.std() / (math.sqrt(2) / math.sqrt(fan_out)) - 1) < 0.03
    assert abs(w.mean()) < 0.01 * w.std() * 10


@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (4, 3, 2, 2)])
def test_orthogonal(shape):
    w = init.orthogonal_(_array(*shape, dtype=np.float64), gain=1.5)
    flat = w.reshape(shape[0], -1) / 1.5
    if flat.shape[0] <= flat.shape[1]:
        np.testing.assert_allclose(flat @ flat.T, np.eye(flat.shape[0]), atol=1e-12)
    else:
        np.testing.assert_allclose(flat.T @ flat, np.eye(flat.shape[1]), atol=1e-12)


def test_gains_equal_torch():
    torch = pytest.importorskip("torch")
    for name, param in [("linear", None), ("conv2d", None), ("conv_transpose3d", None), ("sigmoid", None),
                        ("tanh", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))
    with pytest.raises(avalon.AvalonError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


def test_seeded_by_manual_seed():
    avalon.manual_seed(5)
    a = init.normal_(_array(3, 4))
    b = init.orthogonal_(_array(3, 4))
    avalon.manual_seed(5)
    np.testing.assert_array_equal(a, init.normal_(_array(3, 4)))
    np.testing.assert_array_equal(b, init.orthogonal_(_array(3, 4)))


def test_errors_on_one_dimensional_arrays():
    with pytest.raises(avalon.AvalonError, match="at least 2 dimensions"):
        init.xavier_uniform_(_array(5))
    with pytest.raises(avalon.AvalonError, match="mode"):
        init.kaiming_uniform_(_array(3, 3), mode="fan_avg")


def test_init_on_a_layer_in_place_keeps_references():
    layer = nn.Linear(3, 2)
    weight = layer.weight
    init.zeros_(layer.weight)
    assert layer.weight is weight and not weight.any()
