"""torch's out-of-place writes at indices (scatter, index_copy, index_fill, index_put) and flat take:
values and gradients against torch, as functions on arrays and as methods in traced code."""
import numpy as np
import pytest

import avalon

torch = pytest.importorskip("torch")

X = np.arange(12.0).reshape(3, 4) / 7
S = np.arange(100.0, 112.0).reshape(3, 4) / 13
I2 = np.array([[0, 1, 2, 0], [2, 0, 1, 1]])  # no position written twice: torch's result is defined

# name: (ours on (x, s), torch's on (x, s)); `s` is what is written (it gets a gradient where used)
CASES = {
    "scatter": (lambda x, s: avalon.scatter(x, 0, I2, s[:2]),
                lambda x, s: torch.scatter(x, 0, torch.tensor(I2), s[:2])),
    "scatter value": (lambda x, s: avalon.scatter(x[:2], 1, I2[:, :2], value=-1.5) * s[:1],
                      lambda x, s: torch.scatter(x[:2], 1, torch.tensor(I2[:, :2]), -1.5) * s[:1]),
    "index_copy": (lambda x, s: avalon.index_copy(x, 1, np.array([3, 0]), s[:, :2]),
                   lambda x, s: torch.index_copy(x, 1, torch.tensor([3, 0]), s[:, :2])),
    "index_fill": (lambda x, s: avalon.index_fill(x, 0, np.array([-1, 0]), 2.5) * s,
                   lambda x, s: torch.index_fill(x, 0, torch.tensor([-1, 0]), 2.5) * s),
    "index_put": (lambda x, s: avalon.index_put(x, (np.array([0, -1]), np.array([1, 2])), s[0, :2]),
                  lambda x, s: torch.index_put(x, (torch.tensor([0, -1]), torch.tensor([1, 2])), s[0, :2])),
    "index_put rows": (lambda x, s: avalon.index_put(x, (np.array([2]),), s[0]),
                       lambda x, s: torch.index_put(x, (torch.tensor([2]),), s[0])),
    "index_put accumulate": (lambda x, s: avalon.index_put(x, (np.array([0, 0]),), s[1], accumulate=True),
                             lambda x, s: torch.index_put(x, (torch.tensor([0, 0]),), s[1], accumulate=True)),
    "take": (lambda x, s: avalon.take(x, np.array([-1, 3, 3])) * s[0, :3],
             lambda x, s: torch.take(x, torch.tensor([-1, 3, 3])) * s[0, :3]),
    "methods": (lambda x, s: x.scatter(0, I2, s[:2]).index_fill(1, [0], 1.0).index_copy(0, np.array([1]), s[:1]),
                lambda x, s: x.scatter(0, torch.tensor(I2), s[:2]).index_fill(1, torch.tensor([0]), 1.0)
                .index_copy(0, torch.tensor([1]), s[:1])),
}


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_torch(name):
    ours, theirs = CASES[name]
    tx, ts = (torch.tensor(a, requires_grad=True) for a in (X, S))
    expected = theirs(tx, ts)
    (expected ** 2).sum().backward()
    np.testing.assert_allclose(ours(avalon.tensor(X), avalon.tensor(S)), expected.detach().numpy(), rtol=1e-12)
    value, (gx, gs) = avalon.grad(lambda x, s: (ours(x, s) ** 2).sum(), X, S)
    np.testing.assert_allclose(value, (expected ** 2).sum().item(), rtol=1e-12)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-12, err_msg="input")
    np.testing.assert_allclose(gs, np.zeros_like(S) if ts.grad is None else ts.grad.numpy(), rtol=1e-12,
                               err_msg="written values")


def test_scatter_takes_src_or_value_and_no_reduce():
    with pytest.raises(avalon.AvalonError, match="either src"):
        avalon.scatter(X, 0, I2, S[:2], value=1.0)
    with pytest.raises(avalon.AvalonError, match="scatter_add"):
        avalon.scatter(X, 0, I2, S[:2], reduce="add")


def test_in_place_forms_on_a_fresh_traced_value_are_the_out_of_place_ones():
    def ours(x):
        y = x * 2
        y.index_fill_(1, np.array([0]), 0.5)
        y.scatter_(0, I2[:1], 3.0)
        return (y * x).sum()

    tx = torch.tensor(X, requires_grad=True)
    y = tx * 2
    y.index_fill_(1, torch.tensor([0]), 0.5)
    y.scatter_(0, torch.tensor(I2[:1]), 3.0)
    (y * tx).sum().backward()
    value, (gx,) = avalon.grad(ours, X)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-12)
