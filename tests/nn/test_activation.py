"""Activation layers and functions: PyTorch parity (values and gradients), finite differences, kinks."""
import inspect

import numpy as np
import pytest
from nnparity import check_layer

import avalon
import avalon.nn as nn
import avalon.nn.functional as F

# (constructor arguments, input scale): the same arguments build the torch layer
LAYERS = [
    ("ReLU", (), {}), ("ReLU6", (), {}), ("LeakyReLU", (0.2,), {}), ("LeakyReLU", (), {}),
    ("ELU", (), {"alpha": 0.7}), ("SELU", (), {}), ("CELU", (1.5,), {}), ("GELU", (), {}),
    ("GELU", (), {"approximate": "tanh"}), ("SiLU", (), {}), ("Mish", (), {}), ("Sigmoid", (), {}),
    ("Tanh", (), {}), ("Hardtanh", (-0.5, 2.0), {}), ("Hardsigmoid", (), {}), ("Hardswish", (), {}),
    ("Softplus", (), {"beta": 2.0, "threshold": 3.0}), ("Softplus", (), {}), ("Softsign", (), {}),
    ("Softmax", (), {"dim": 1}), ("LogSoftmax", (), {"dim": -1}), ("Softmin", (), {"dim": 0}),
    ("LogSigmoid", (), {}), ("PReLU", (), {}), ("PReLU", (3,), {"init": 0.1}), ("Threshold", (0.5, -2.0), {}),
    ("GLU", (), {"dim": 0}), ("Hardshrink", (), {}), ("Softshrink", (0.7,), {}), ("Tanhshrink", (), {}),
]


def _input(shape=(4, 3, 5)):
    # scaled so every piece of each function is exercised (|x| up to ~7), away from the kinks
    x = np.random.default_rng(1).standard_normal(shape) * 3
    return np.where(np.abs(x) < 1e-3, 0.5, x).astype(np.float32)


@pytest.mark.parametrize("name, args, kwargs", LAYERS, ids=[f"{n}{a}{k}" for n, a, k in LAYERS])
def test_layer_matches_torch(name, args, kwargs):
    torch = pytest.importorskip("torch")
    layer = getattr(nn, name)(*args, **kwargs)
    torch_layer = getattr(torch.nn, name)(*args, **kwargs)
    assert repr(layer) == repr(torch_layer)
    check_layer(layer, torch_layer, _input())


ACTIVATIONS = nn.modules.activation.__all__


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_class_hierarchy_and_constructor_match_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name), getattr(torch.nn, name)
    assert [c.__name__ for c in ours.__mro__] == [c.__name__ for c in theirs.__mro__]
    expected = [(p.name, p.default) for p in inspect.signature(theirs).parameters.values()
                if p.kind is p.POSITIONAL_OR_KEYWORD]
    got = [(p.name, p.default) for p in inspect.signature(ours).parameters.values()]
    # torch's Hardtanh also takes the deprecated aliases min_value/max_value after the options it documents
    assert got == expected[:len(got)] and len(got) >= len(expected) - 2 * (name == "Hardtanh")


def test_replacing_every_relu_leaves_the_other_activations_alone():
    model = nn.Sequential(nn.ReLU(), nn.SiLU(), nn.Mish(), nn.Hardsigmoid(), nn.Hardswish(), nn.SELU(), nn.ReLU6(),
                          nn.CELU(), nn.Softmin(1), nn.LogSoftmax(1), nn.Softshrink())
    relus = [i for i, layer in enumerate(model) if isinstance(layer, nn.ReLU)]
    assert relus == [0]
    assert not isinstance(nn.CELU(), nn.ELU) and not isinstance(nn.Softshrink(), nn.Hardshrink)
    assert not any(isinstance(layer, nn.Softmax) for layer in (nn.Softmin(1), nn.LogSoftmax(1)))
    assert isinstance(nn.ReLU6(), nn.Hardtanh)  # as in PyTorch


@pytest.mark.filterwarnings("ignore:Implicit dimension choice")
@pytest.mark.parametrize("name, kwargs", [
    ("relu", {}), ("relu6", {}), ("leaky_relu", {"negative_slope": 0.3}), ("elu", {"alpha": 2.0}), ("selu", {}),
    ("celu", {"alpha": 0.5}), ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}), ("mish", {}),
    ("sigmoid", {}), ("tanh", {}), ("hardtanh", {"min_val": -2.0, "max_val": 0.5}), ("hardsigmoid", {}),
    ("hardswish", {}), ("softplus", {"beta": 0.5, "threshold": 2.0}), ("softsign", {}),
    ("softmax", {"dim": 0}), ("log_softmax", {"dim": 2}), ("softmax", {}), ("log_softmax", {}),
    ("softmin", {"dim": 1}), ("logsigmoid", {}), ("threshold", {"threshold": 1.0, "value": 3.0}),
    ("glu", {"dim": 0}), ("hardshrink", {"lambd": 1.0}), ("softshrink", {}), ("tanhshrink", {}),
])
def test_function_matches_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    x = _input()
    t = torch.from_numpy(x).requires_grad_(True)
    expected = getattr(torch.nn.functional, name)(t, **kwargs)
    w = np.random.default_rng(2).standard_normal(tuple(expected.shape)).astype(np.float32)
    (expected * torch.from_numpy(w)).sum().backward()
    value, (g,) = avalon.grad(lambda x: (getattr(F, name)(x, **kwargs) * w).sum(), x)
    np.testing.assert_allclose(getattr(F, name)(x, **kwargs), expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fn", [
    F.relu, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, lambda x: F.gelu(x, approximate="tanh"),
    F.silu, F.mish, F.sigmoid, F.tanh, F.hardtanh, F.hardsigmoid, F.hardswish, F.softplus, F.softsign,
    lambda x: F.softmax(x, 1), lambda x: F.log_softmax(x, 0), F.logsigmoid,
    lambda x: F.prelu(x, np.array([0.1, 0.2, 0.3])), lambda x: F.threshold(x, 0.1, 5.0), lambda x: F.glu(x, 0),
    lambda x: F.hardshrink(x, 0.1), lambda x: F.softshrink(x, 0.1), F.tanhshrink,
])
def test_gradcheck_float64(fn):
    x = np.random.default_rng(3).uniform(0.2, 2.5, (2, 3, 2)) * np.array([1, -1])
    w = np.random.default_rng(4).standard_normal(x.shape)
    result = avalon.gradcheck(lambda x: (fn(x) * w).sum(), x)
    assert result, str(result)


def test_gradients_at_the_kinks_match_torch():
    torch = pytest.importorskip("torch")
    x = np.array([-3.0, -1.0, 0.0, 1.0, 3.0, 6.0], np.float32)
    for name in ["relu", "relu6", "leaky_relu", "elu", "celu", "hardtanh", "hardsigmoid", "softplus", "softsign"]:
        t = torch.from_numpy(x).requires_grad_(True)
        getattr(torch.nn.functional, name)(t).sum().backward()
        _, (g,) = avalon.grad(lambda x: getattr(F, name)(x).sum(), x)
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-6, err_msg=name)


def test_no_nan_gradients_where_a_discarded_branch_overflows():
    x = np.array([-200.0, -30.0, 0.0, 30.0, 200.0, 1000.0], np.float32)
    for fn in [F.elu, F.selu, F.celu, F.softplus, F.mish, F.silu, F.logsigmoid, F.gelu, F.sigmoid]:
        value, (g,) = avalon.grad(lambda x: fn(x).sum(), x)
        assert np.all(np.isfinite(g)) and np.isfinite(value), fn.__name__


def test_prelu_per_channel_and_errors():
    torch = pytest.importorskip("torch")
    layer, torch_layer = nn.PReLU(3), torch.nn.PReLU(3)
    torch.nn.init.uniform_(torch_layer.weight)
    check_layer(layer, torch_layer, _input((2, 3, 4, 2)))
    with pytest.raises(avalon.AvalonError, match="3 slopes for 5 channels"):
        F.prelu(np.ones((2, 5)), np.ones(3))


def test_bad_arguments_are_explained():
    with pytest.raises(avalon.AvalonError, match="approximate"):
        F.gelu(np.ones(2), approximate="fast")
    with pytest.raises(avalon.AvalonError, match="min_val"):
        F.hardtanh(np.ones(2), 1.0, -1.0)
    with pytest.raises(avalon.AvalonError, match="even"):
        F.glu(np.ones((2, 3)))


def test_inplace_is_accepted_and_returns_a_new_array():
    x = np.array([-1.0, 2.0], np.float32)
    y = nn.ReLU(inplace=True)(x)
    np.testing.assert_array_equal(x, [-1.0, 2.0])
    np.testing.assert_array_equal(y, [0.0, 2.0])
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
