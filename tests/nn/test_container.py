"""Sequential, ModuleList, ModuleDict, ParameterList: keys, indexing, PyTorch parity."""
from collections import OrderedDict

import numpy as np
import pytest
from nnparity import check_layer

import avalon
import avalon.nn as nn


def _x(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def test_sequential_matches_torch_with_the_same_keys():
    torch = pytest.importorskip("torch")

    def build(nn):
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 8), nn.GELU()), nn.Linear(8, 2))

    model, torch_model = build(nn), build(torch.nn)
    assert list(model.state_dict()) == list(torch_model.state_dict()) == [
        "0.weight", "0.bias", "2.0.weight", "2.0.bias", "3.weight", "3.bias"]
    assert repr(model) == repr(torch_model)
    check_layer(model, torch_model, _x(3, 4))


def test_sequential_from_ordered_dict_indexing_slicing_append():
    torch = pytest.importorskip("torch")

    def layers(nn):
        return OrderedDict([("fc", nn.Linear(3, 4)), ("act", nn.Tanh()), ("out", nn.Linear(4, 2))])

    model, torch_model = nn.Sequential(layers(nn)), torch.nn.Sequential(layers(torch.nn))
    assert list(model.state_dict()) == list(torch_model.state_dict()) == [
        "fc.weight", "fc.bias", "out.weight", "out.bias"]
    assert repr(model) == repr(torch_model)
    check_layer(model, torch_model, _x(2, 3))
    assert len(model) == 3 and model[0] is model.fc and model[-1] is model.out
    head = model[1:]
    assert isinstance(head, nn.Sequential) and list(head._modules) == ["act", "out"] and head.out is model.out
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Linear"]
    model.append(nn.Sigmoid())
    assert list(model._modules)[-1] == "3" and len(model) == 4
    out = model(_x(2, 3))
    assert ((out > 0) & (out < 1)).all()
    with pytest.raises(IndexError, match="out of range"):
        model[4]


def test_sequential_setitem_delitem_insert():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    model[1] = nn.Tanh()
    assert isinstance(model[1], nn.Tanh)
    del model[1]
    assert list(model._modules) == ["0", "2"]
    model.insert(1, nn.ReLU())
    assert list(model._modules) == ["0", "1", "2"] and isinstance(model[1], nn.ReLU)


def make_stack(nn, ones, depth):
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 3) for _ in range(depth)])
            self.heads = nn.ModuleDict({"a": nn.Linear(3, 1), "b": nn.Linear(3, 2)})
            self.scales = nn.ParameterList([nn.Parameter(ones(3)) for _ in range(depth)])

        def forward(self, x):
            for layer, scale in zip(self.layers, self.scales):
                x = layer(x) * scale
            return self.heads["b"](x) + self.heads["a"](x)

    return Stack()


def test_module_list_dict_and_parameter_list_match_torch():
    torch = pytest.importorskip("torch")
    model = make_stack(nn, lambda n: np.ones(n, np.float32), 2)
    torch_model = make_stack(torch.nn, torch.ones, 2)
    with torch.no_grad():
        for p in torch_model.scales:
            p.uniform_(0.5, 1.5)
    assert list(model.state_dict()) == list(torch_model.state_dict())
    assert "scales.1" in model.state_dict() and "layers.1.weight" in model.state_dict()
    assert repr(model.layers) == repr(torch_model.layers)
    assert repr(model.heads) == repr(torch_model.heads)
    check_layer(model, torch_model, _x(4, 3))
    _, grads = avalon.grad(lambda m, x: m(x).sum(), model, _x(4, 3))
    assert grads[0]["scales.0"].shape == (3,) and grads[0].layers["1.weight"].shape == (3, 3)


def test_module_list_operations_and_repr():
    layers = nn.ModuleList([nn.ReLU()])
    layers.append(nn.Tanh()).extend([nn.Linear(2, 2), nn.Linear(2, 2)])
    layers += [nn.Linear(2, 3)]
    assert len(layers) == 5 and isinstance(layers[-1], nn.Linear)
    assert repr(layers) == (
        "ModuleList(\n  (0): ReLU()\n  (1): Tanh()\n"
        "  (2-3): 2 x Linear(in_features=2, out_features=2, bias=True)\n"
        "  (4): Linear(in_features=2, out_features=3, bias=True)\n)")
    del layers[0]
    assert list(layers._modules) == ["0", "1", "2", "3"] and isinstance(layers[0], nn.Tanh)
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    layers.insert(0, nn.SiLU())
    assert isinstance(layers[0], nn.SiLU) and len(layers) == 5
    with pytest.raises(avalon.AvalonError, match="no forward"):
        layers(np.ones(2))


def test_module_dict_operations():
    heads = nn.ModuleDict([("x", nn.ReLU())])
    heads["y"] = nn.Tanh()
    heads.update({"z": nn.Sigmoid()})
    assert list(heads) == ["x", "y", "z"] and "y" in heads and len(heads) == 3
    assert isinstance(heads.pop("x"), nn.ReLU) and list(heads.keys()) == ["y", "z"]
    assert [type(m).__name__ for m in heads.values()] == ["Tanh", "Sigmoid"]


def test_parameter_list_returns_parameters_and_repr():
    params = nn.ParameterList([np.ones((3, 4), np.float32), nn.Parameter(np.zeros(2, np.float32))])
    assert type(params[0]) is nn.Parameter and params[1].shape == (2,)
    params.append(np.ones(1, np.float32))
    assert [n for n, _ in params.named_parameters()] == ["0", "1", "2"]
    assert repr(params).startswith("ParameterList(\n    (0): Parameter containing: [float32 of size 3x4]")


def test_parameter_dict_matches_torch():
    torch = pytest.importorskip("torch")

    def build(nn, ones):
        class Scaled(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 2)
                self.gains = nn.ParameterDict({"pre": nn.Parameter(ones(3)), "post": nn.Parameter(ones(2))})

            def forward(self, x):
                return self.fc(x * self.gains["pre"]) * self.gains["post"]

        return Scaled()

    model, torch_model = build(nn, lambda n: np.ones(n, np.float32)), build(torch.nn, torch.ones)
    with torch.no_grad():
        for p in torch_model.gains.values():
            p.uniform_(0.5, 1.5)
    assert list(model.state_dict()) == list(torch_model.state_dict()) == [
        "fc.weight", "fc.bias", "gains.post", "gains.pre"]  # a plain dict is sorted
    check_layer(model, torch_model, _x(4, 3))
    gains = model.gains
    gains["extra"] = np.zeros(1, np.float32)
    assert list(gains) == ["post", "pre", "extra"] and "extra" in gains and len(gains) == 3
    assert type(gains["pre"]) is nn.Parameter
    del gains["extra"]
    assert repr(gains) == ("ParameterDict(\n    (post): Parameter containing: [float32 of size 2]\n"
                           "    (pre): Parameter containing: [float32 of size 3]\n)")
    ordered = nn.ParameterDict(OrderedDict([("z", np.ones(1, np.float32)), ("a", np.ones(1, np.float32))]))
    assert list(ordered) == ["z", "a"]
