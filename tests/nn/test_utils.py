"""Gradient clipping on returned gradients, against torch.nn.utils on the same numbers."""
import math

import numpy as np
import pytest

import avalon
import avalon.nn as nn
from avalon.errors import GradientError

torch = pytest.importorskip("torch")


def _grads(rng, dtype=np.float64):
    return [rng.standard_normal(s).astype(dtype) for s in [(3, 4), (5,), (2, 2, 2)]]


def _torch_clipped(grads, fn, *args, **kwargs):
    params = [torch.zeros(g.shape, dtype=torch.float64 if g.dtype == np.float64 else torch.float32,
                          requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)
    out = fn(params, *args, **kwargs)
    return out, [p.grad.numpy() for p in params]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf, 0])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(rng, norm_type, max_norm):
    grads = _grads(rng)
    expected_total, expected = _torch_clipped([g.copy() for g in grads], torch.nn.utils.clip_grad_norm_,
                                              max_norm, norm_type=norm_type)
    arrays = list(grads)
    total = nn.utils.clip_grad_norm_(grads, max_norm, norm_type=norm_type)
    np.testing.assert_allclose(total, expected_total.numpy(), rtol=1e-12)
    for a, g, e in zip(arrays, grads, expected):
        assert a is g  # clipped in place
        np.testing.assert_allclose(g, e, rtol=1e-12)


def test_clip_grad_norm_on_float32_matches_torch(rng):
    grads = _grads(rng, np.float32)
    expected_total, expected = _torch_clipped([g.copy() for g in grads], torch.nn.utils.clip_grad_norm_, 1.0)
    total = nn.utils.clip_grad_norm_(grads, 1.0)
    assert total.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    np.testing.assert_allclose(total, expected_total.numpy(), rtol=1e-6)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=1e-6)


class Affine(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.weight = nn.Parameter(rng.standard_normal((3, 4)).astype(np.float32))
        self.bias = nn.Parameter(rng.standard_normal(3).astype(np.float32))

    def forward(self, x):
        return x @ self.weight.T + self.bias


def test_clip_grads_of_a_module_from_avalon_grad(rng):
    model = Affine(rng)
    x = rng.standard_normal((8, 4)).astype(np.float32)
    _, (grads, _) = avalon.grad(lambda m, x: (m(x) ** 2).sum(), model, x)
    before = {name: g.copy() for name, g in grads}
    norm = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in before.values()))
    total = nn.utils.clip_grad_norm_(grads, max_norm=0.1)
    np.testing.assert_allclose(total, norm, rtol=1e-5)
    clipped = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for _, g in grads))
    np.testing.assert_allclose(clipped, 0.1, rtol=1e-4)
    np.testing.assert_allclose(grads.weight, before["weight"] * (0.1 / norm), rtol=1e-4)


def test_dicts_and_read_only_gradients_are_rewritten_in_their_container():
    frozen = np.broadcast_to(np.float64(3.0), (2,))
    grads = {"a": np.array([0.0, 4.0]), "b": frozen, "c": None}
    total = nn.utils.clip_grad_norm_(grads, 1.0)
    np.testing.assert_allclose(total, math.sqrt(16 + 18))
    assert grads["b"] is not frozen and frozen[0] == 3.0
    np.testing.assert_allclose(np.sqrt(grads["a"] @ grads["a"] + grads["b"] @ grads["b"]), 1.0, rtol=1e-5)
    with pytest.raises(GradientError, match="read-only"):
        nn.utils.clip_grad_value_((frozen,), 1.0)


def test_non_finite_norm_raises_only_when_asked_and_changes_nothing(rng):
    grads = _grads(rng)
    grads[1][0] = np.inf
    copies = [g.copy() for g in grads]
    with pytest.raises(GradientError, match="inf"):
        nn.utils.clip_grad_norm_(grads, 1.0, error_if_nonfinite=True)
    for g, c in zip(grads, copies):
        np.testing.assert_array_equal(g, c)
    total = nn.utils.clip_grad_norm_(grads, 1.0)
    assert np.isinf(total)


def test_clip_grad_value_matches_torch(rng):
    grads = _grads(rng)
    _, expected = _torch_clipped([g.copy() for g in grads], torch.nn.utils.clip_grad_value_, 0.3)
    assert nn.utils.clip_grad_value_(grads, 0.3) is None
    for g, e in zip(grads, expected):
        np.testing.assert_array_equal(g, e)


def test_empty_and_bad_inputs():
    assert float(nn.utils.clip_grad_norm_([], 1.0)) == 0.0
    with pytest.raises(GradientError, match=r"grads\[0\]"):
        nn.utils.clip_grad_norm_((avalon.Grads({}), None), 1.0)
    with pytest.raises(GradientError, match="type str"):
        nn.utils.clip_grad_value_("grads", 1.0)


def test_clipping_the_models_parameters_is_refused_with_the_rewrite():
    model = nn.Linear(3, 2)
    before = [np.array(p) for p in model.parameters()]
    for given in (model.parameters(), list(model.parameters()), model.weight):
        with pytest.raises(avalon.GradientError, match=r"clip_grad_norm_\(grads\[0\], max_norm\)"):
            nn.utils.clip_grad_norm_(given, 0.25)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.parameters()))  # weights untouched
