"""Gradients of holders: user classes registered with avalon.register_holder get a Grads object."""
import numpy as np
import pytest

import avalon


@avalon.register_holder
class Linear:
    def __init__(self, rng, n_in, n_out):
        self.weight = rng.standard_normal((n_out, n_in))
        self.bias = rng.standard_normal(n_out)

    def __call__(self, x):
        return x @ self.weight.T + self.bias


@avalon.register_holder
class MLP:
    def __init__(self, rng, activation="tanh"):
        self.fc1 = Linear(rng, 3, 4)
        self.fc2 = Linear(rng, 4, 1)
        self.activation = activation
        self.steps = np.arange(3)  # an integer array: no gradient

    def __call__(self, x):
        h = self.fc1(x)
        h = np.tanh(h) if self.activation == "tanh" else np.maximum(h, 0.0)
        return self.fc2(h)


def mlp_loss(model, x):
    return (model(x) ** 2).mean()


def test_grads_by_attribute_name_and_iteration(rng):
    model, x = MLP(rng), rng.standard_normal((5, 3))
    value, (g, gx) = avalon.grad(mlp_loss, model, x)
    assert isinstance(g, avalon.Grads)
    assert g.fc1.weight.shape == (4, 3) and g.fc2.bias.shape == (1,)
    assert g["fc1.weight"] is g.fc1.weight
    names = [name for name, _ in g]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "steps"]
    assert g.steps is None
    assert g.of(model.fc1.weight) is g.fc1.weight
    assert avalon.gradcheck(mlp_loss, model, x)


def test_holder_gradients_match_plain_arrays(rng):
    model, x = MLP(rng), rng.standard_normal((5, 3))

    def by_arrays(W1, b1, W2, b2, x):
        return ((np.tanh(x @ W1.T + b1) @ W2.T + b2) ** 2).mean()

    _, (g, _) = avalon.grad(mlp_loss, model, x)
    _, grads = avalon.grad(by_arrays, model.fc1.weight, model.fc1.bias, model.fc2.weight, model.fc2.bias, x)
    assert g.steps is None and grads[-1] is not None
    for name, b in zip(["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"], grads):
        np.testing.assert_allclose(g[name], b, err_msg=name)


def test_holder_keeps_its_arrays(rng):
    model, x = MLP(rng), rng.standard_normal((5, 3))
    weight = model.fc1.weight
    before = weight.copy()
    for _ in range(2):
        avalon.grad(mlp_loss, model, x)
        assert model.fc1.weight is weight
        np.testing.assert_array_equal(weight, before)


def test_unknown_name_says_which_names_exist(rng):
    _, (g, _) = avalon.grad(mlp_loss, MLP(rng), rng.standard_normal((2, 3)))
    with pytest.raises(AttributeError, match="fc1.weight"):
        g.fc3
    assert "fc1.weight: (4, 3)" in repr(g)


def test_parity_with_torch(rng):
    torch = pytest.importorskip("torch")
    model, x = MLP(rng), rng.standard_normal((5, 3))
    _, (g, _) = avalon.grad(mlp_loss, model, x)
    params = {name: torch.tensor(a, requires_grad=True) for name, a in
              [("fc1.weight", model.fc1.weight), ("fc1.bias", model.fc1.bias),
               ("fc2.weight", model.fc2.weight), ("fc2.bias", model.fc2.bias)]}
    h = torch.tanh(torch.tensor(x) @ params["fc1.weight"].T + params["fc1.bias"])
    ((h @ params["fc2.weight"].T + params["fc2.bias"]) ** 2).mean().backward()
    for name, t in params.items():
        np.testing.assert_allclose(g[name], t.grad.numpy(), rtol=1e-10, atol=1e-12)


@avalon.register_holder
class Stack:
    """Layers in a list, a pair in a tuple, a table in a dict."""

    def __init__(self, rng):
        self.layers = [Linear(rng, 3, 3), Linear(rng, 3, 3)]
        self.pair = (rng.standard_normal(3), rng.standard_normal(3))
        self.table = {"gain": rng.standard_normal(3)}
        self.widths = [3, 3]

    def __call__(self, x):
        for layer in self.layers:
            x = np.tanh(layer(x))
        return (x * self.pair[0] + self.pair[1]) * self.table["gain"]


def test_lists_tuples_and_dicts_of_arrays_and_holders(rng):
    model, x = Stack(rng), rng.standard_normal((2, 3))
    loss = lambda model, x: model(x).sum()  # noqa: E731
    pair, first_weight = model.pair, model.layers[0].weight
    for _ in range(2):
        _, (g, _) = avalon.grad(loss, model, x)
        assert [name for name, _ in g] == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                                           "pair.0", "pair.1", "table.gain"]
        assert g.layers[1].bias.shape == (3,) and g["pair.0"].shape == (3,)
        # given back after tracing (a tuple is rebuilt, holding the same arrays)
        assert model.pair[0] is pair[0] and model.pair[1] is pair[1] and model.layers[0].weight is first_weight
    assert avalon.gradcheck(loss, model, x)
    traces = []
    counted = lambda model, x: traces.append(1) or loss(model, x)  # noqa: E731
    avalon.grad(counted, model, x)
    model.widths.append(4)  # a static list changed in place
    avalon.grad(counted, model, x)
    model.layers.append(Linear(rng, 3, 3))  # one more layer: new arrays, a new structure
    _, (g, _) = avalon.grad(counted, model, x)
    assert len(traces) == 3 and "layers.2.weight" in g


def test_a_module_inside_a_user_holder_names_its_own_arrays(rng):
    nn = avalon.nn

    @avalon.register_holder
    class Wrapper:
        def __init__(self):
            self.encoder = nn.Linear(3, 2)
            self.scale = rng.standard_normal(2)

    w, x = Wrapper(), rng.standard_normal((4, 3)).astype(np.float32)
    loss = lambda w, x: (w.encoder(x) * w.scale).sum()  # noqa: E731
    weight = w.encoder.weight
    _, (g, _) = avalon.grad(loss, w, x)
    assert [name for name, _ in g] == ["encoder.weight", "encoder.bias", "scale"]
    assert w.encoder.weight is weight
    np.testing.assert_allclose(g.encoder.bias, np.broadcast_to(w.scale, (4, 2)).sum(0), rtol=1e-6)
