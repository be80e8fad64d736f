"""optimizer.zero_grad: nothing to clear (avalon.grad returns gradients), so a ported loop runs as it is."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.optim as optim

torch = pytest.importorskip("torch")

OPTIMIZERS = ["SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta"]


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_changes_neither_parameters_nor_state(name, set_to_none):
    model = nn.Linear(3, 2)
    opt = getattr(optim, name)(model.parameters(), lr=0.1)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    _, grads = avalon.grad(lambda m, x: (m(x) ** 2).sum(), model, x)
    opt.step(grads[0])
    params = [p.copy() for p in model.parameters()]
    state = opt.state_dict()
    assert opt.zero_grad(set_to_none=set_to_none) is None
    for before, after in zip(params, model.parameters()):
        np.testing.assert_array_equal(before, after)
    after_state = opt.state_dict()
    assert after_state["param_groups"] == state["param_groups"]
    for key, entry in state["state"].items():
        for field, value in entry.items():
            np.testing.assert_array_equal(after_state["state"][key][field], value)


def test_a_ported_loop_with_zero_grad_follows_torch():
    reference = torch.nn.Linear(4, 3).double()
    model = nn.Linear(4, 3).to(np.float64)
    model.load_state_dict(reference.state_dict())
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal((8, 4))
        ref_opt.zero_grad()
        (reference(torch.tensor(x)) ** 2).mean().backward()
        ref_opt.step()
        opt.zero_grad()  # as in the ported loop: harmless, the gradients come from avalon.grad
        _, grads = avalon.grad(lambda m, x: (m(x) ** 2).mean(), model, x)
        opt.step(grads[0])
        for key, value in reference.state_dict().items():
            np.testing.assert_allclose(model.state_dict()[key], value.numpy(), rtol=1e-10)
