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
