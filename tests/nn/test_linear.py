"""Linear, Bilinear, Identity, Flatten, Unflatten: PyTorch parity, initialisation, shape errors."""
import math

import numpy as np
import pytest
from nnparity import check_layer

import avalon
import avalon.nn as nn
import avalon.nn.functional as F


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (4,)])
def test_linear_matches_torch(bias, shape):
    torch = pytest.importorskip("torch")
    layer, torch_layer = nn.Linear(4, 5, bias=bias), torch.nn.Linear(4, 5, bias=bias)
    assert repr(layer) == repr(torch_layer)
    assert list(layer.state_dict()) == list(torch_layer.state_dict())
    check_layer(layer, torch_layer, _x(*shape))


def test_bilinear_matches_torch():
    torch = pytest.importorskip("torch")
    for bias in (True, False):
        layer, torch_layer = nn.Bilinear(3, 4, 2, bias=bias), torch.nn.Bilinear(3, 4, 2, bias=bias)
        assert repr(layer) == repr(torch_layer)
        check_layer(layer, torch_layer, _x(2, 5, 3), _x(2, 5, 4, seed=1))


@pytest.mark.parametrize("make", [
    lambda nn: nn.Identity(54, unused=1), lambda nn: nn.Flatten(), lambda nn: nn.Flatten(0, 1),
    lambda nn: nn.Flatten(-3, -2), lambda nn: nn.Unflatten(1, (2, 3)), lambda nn: nn.Unflatten(-1, (2, -1)),
])
def test_shape_layers_match_torch(make):
    torch = pytest.importorskip("torch")
    layer, torch_layer = make(nn), make(torch.nn)
    assert repr(layer) == repr(torch_layer)
    check_layer(layer, torch_layer, _x(2, 6, 4))


def test_default_initialisation_follows_pytorch():
    layer = nn.Linear(50, 400)
    bound = 1 / math.sqrt(50)  # kaiming_uniform_(a=√5) gives the same bound as the bias
    for array in (layer.weight, layer.bias):
        assert array.dtype == np.float32
        assert np.abs(array).max() <= bound and np.abs(array).max() > 0.95 * bound
    assert abs(layer.weight.std() - bound / math.sqrt(3)) < 0.02 * bound
    bilinear = nn.Bilinear(16, 3, 200)
    assert np.abs(bilinear.weight).max() <= 1 / 4 and np.abs(bilinear.weight).max() > 0.95 / 4


def test_initialisation_is_seeded_by_manual_seed():
    avalon.manual_seed(3)
    a = nn.Linear(3, 2)
    avalon.manual_seed(3)
    b = nn.Linear(3, 2)
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(a.bias, b.bias)
    assert not np.array_equal(a.weight, nn.Linear(3, 2).weight)


def test_dtype_argument():
    layer = nn.Linear(3, 2, dtype=np.float64)
    assert layer.weight.dtype == np.float64 and layer.bias.dtype == np.float64


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def test_linear_shape_error_names_layer_shapes_and_user_line():
    model = MLP()
    with pytest.raises(avalon.ShapeError) as info:
        model(np.ones((2, 5), np.float32))
    message = str(info.value)
    assert "Linear(in_features=4, out_features=6, bias=True)" in message
    assert "expected input of shape (*, 4), got (2, 5)" in message
    assert "test_linear.py" in message and "return self.fc2(self.act(self.fc1(x)))" in message
    layer = nn.Linear(3, 2)
    with pytest.raises(avalon.ShapeError) as info:
        layer(np.ones((2, 5), np.float32))
    assert "got (2, 5)" in str(info.value) and "layer(np.ones((2, 5), np.float32))" in str(info.value)
    with pytest.raises(avalon.ShapeError, match="Bilinear.*for input2"):
        nn.Bilinear(2, 3, 1)(np.ones((1, 2)), np.ones((1, 2)))
    with pytest.raises(avalon.ShapeError, match="Unflatten.*got \\(2, 7\\)"):
        nn.Unflatten(1, (2, 3))(np.ones((2, 7)))
    with pytest.raises(avalon.ShapeError, match="Flatten"):
        nn.Flatten(2)(np.ones((2, 7)))


def test_model_call_replays_and_grads_object():
    model = MLP()
    traces = []
    original = MLP.forward
    MLP.forward = lambda self, x: (traces.append(1), original(self, x))[1]
    try:
        x = _x(5, 4)
        first, second = model(x), model(x)
        assert len(traces) == 1
        np.testing.assert_array_equal(first, second)
        loss, grads = avalon.grad(lambda m, x: (m(x) ** 2).sum(), model, x)
        assert grads[0].fc1.weight.shape == (6, 4) and grads[0].fc2.bias.shape == (3,)
        assert [n for n, _ in grads[0]] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    finally:
        MLP.forward = original


def test_gradcheck_linear_and_bilinear_float64():
    model = MLP().double()
    assert avalon.gradcheck(lambda m, x: (m(x) ** 2).sum(), model, np.random.randn(2, 4))
    layer = nn.Bilinear(2, 3, 2).double()
    assert avalon.gradcheck(lambda m, a, b: (m(a, b) ** 2).sum(), layer, np.random.randn(2, 2),
                            np.random.randn(2, 3))


def test_functional_linear_and_bilinear():
    w, b, x = _x(3, 4), _x(3), _x(2, 4)
    np.testing.assert_allclose(F.linear(x, w, b), x @ w.T + b, rtol=1e-6)
    np.testing.assert_allclose(F.linear(x, w), x @ w.T, rtol=1e-6)
    A, x1, x2 = _x(2, 3, 4), _x(5, 3), _x(5, 4)
    np.testing.assert_allclose(F.bilinear(x1, x2, A), np.einsum("ni,kij,nj->nk", x1, A, x2), rtol=1e-5)
    with pytest.raises(avalon.ShapeError, match="leading shapes"):
        F.bilinear(_x(5, 3), _x(4, 4), A)
