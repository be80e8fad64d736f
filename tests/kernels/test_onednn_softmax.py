"""avalon.kernels.onednn.softmax: attention's softmax and its backward on oneDNN, against numpy's path
and PyTorch, and attention's values and gradients through the public API with it on and off."""
import ctypes

import numpy as np
import pytest
import torch

import avalon
import avalon.nn.functional as F
from avalon.kernels import onednn
from avalon.kernels.onednn import gemm
from avalon.kernels.onednn import primitive as P
from avalon.kernels.onednn import softmax
from avalon.ops import attention as A

pytestmark = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")


@pytest.fixture(autouse=True)
def _on(monkeypatch):
    monkeypatch.setattr(gemm, "MAX_THREADS", 64)
    monkeypatch.setattr(softmax, "SOFTMAX", True)
    # oneDNN's reference kernels run too (AVX2 has no JIT softmax backward), so that every CPU tests
    # oneDNN's values; test_a_reference_kernel_leaves_the_work_to_numpy checks what they are kept from
    monkeypatch.setattr(P, "REFERENCE_KERNELS", ())
    softmax._cache.clear()
    previous = onednn.set_enabled(True)
    yield
    onednn.set_enabled(previous)
    softmax._cache.clear()


def test_softmax_accurate_is_the_enum_value_of_oneDNN_3_2():
    name = P.lib().dnnl_alg_kind2str
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.c_int]
    assert name(softmax.SOFTMAX_ACCURATE).decode() == "softmax_accurate"


def _layout(rng, shape, layout):
    if layout == "c":
        return rng.standard_normal(shape, dtype=np.float32) * 4
    return np.swapaxes(rng.standard_normal(shape[:-2] + shape[:-3:-1], dtype=np.float32) * 4, -1, -2)


@pytest.mark.parametrize("shape", [(7,), (1, 1), (3, 5), (2, 3, 17, 9), (1, 4, 128, 128)])
@pytest.mark.parametrize("layout", ["c", "transposed"])
def test_forward_gives_numpys_and_torchs_softmax_in_place_or_not(rng, shape, layout):
    if layout == "transposed" and len(shape) < 2:
        pytest.skip("a vector has one layout")
    x = _layout(rng, shape, layout)
    expected = torch.softmax(torch.from_numpy(np.ascontiguousarray(x)), -1).numpy()
    out = np.full(shape, np.nan, np.float32)
    assert softmax.forward(x, out)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out, A._softmax_rows(np, x.copy()), rtol=1e-5, atol=1e-7)
    assert softmax.forward(x, x)
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-7)


def test_forward_gives_zero_weight_to_minus_infinity():
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]], np.float32)
    out = np.empty_like(x)
    assert softmax.forward(x, out)
    np.testing.assert_allclose(out, torch.softmax(torch.from_numpy(x), -1).numpy(), rtol=1e-6)


@pytest.mark.parametrize("shape", [(5,), (3, 6), (2, 3, 9, 17)])
def test_backward_gives_numpys_and_torchs_gradient_into_out_or_a_new_array(rng, shape):
    x = rng.standard_normal(shape, dtype=np.float32)
    dp = rng.standard_normal(shape, dtype=np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    torch.softmax(tx, -1).backward(torch.from_numpy(dp))
    p = torch.softmax(torch.from_numpy(x), -1).numpy()
    got = softmax.backward(dp, p)
    np.testing.assert_allclose(got, tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    out = np.full(shape, np.nan, np.float32)
    assert softmax.backward(dp, p, out) is out
    onednn.set_enabled(False)
    np.testing.assert_allclose(out, A.attention_scores_grad.impl(dp, p), rtol=1e-5, atol=1e-6)


def test_rows_of_zero_weights_get_a_zero_gradient(rng):
    p = np.zeros((2, 4), np.float32)
    p[0] = [0.1, 0.2, 0.3, 0.4]
    np.testing.assert_array_equal(softmax.backward(np.ones((2, 4), np.float32), p)[1], 0)


def test_what_does_not_apply(rng, monkeypatch):
    x = rng.standard_normal((3, 4), dtype=np.float32)
    assert not softmax.forward(x.astype(np.float64), np.empty((3, 4)))
    assert not softmax.forward(x, np.empty((3, 5), np.float32))
    assert not softmax.forward(x, x[::-1])  # overlapping, not in place (and a negative stride)
    assert softmax.backward(x, x, x) is None
    assert softmax.backward(x, x, np.empty((2, 4), np.float32)) is None
    monkeypatch.setattr(gemm, "MAX_THREADS", 0)
    assert not softmax.forward(x, np.empty_like(x))
    monkeypatch.setattr(gemm, "MAX_THREADS", 64)
    monkeypatch.setattr(softmax, "SOFTMAX", False)
    assert not softmax.forward(x, np.empty_like(x)) and softmax.backward(x, x) is None
    monkeypatch.setattr(softmax, "SOFTMAX", True)
    onednn.set_enabled(False)
    assert not softmax.forward(x, np.empty_like(x)) and softmax.backward(x, x) is None


def test_a_reference_kernel_leaves_the_work_to_numpy(rng, monkeypatch):
    x = rng.standard_normal((2, 3, 17, 9), dtype=np.float32)
    dp = rng.standard_normal(x.shape, dtype=np.float32)
    p = A._softmax_rows(np, x.copy())
    on_onednn = A.attention_scores_grad.impl(dp, p)  # any kernel allowed (the fixture)
    monkeypatch.setattr(P, "REFERENCE_KERNELS", ("",))  # every kernel's name starts with ""
    softmax._cache.clear()
    assert softmax._backward(dp, p, np.empty_like(x)) is None
    out = np.full(x.shape, np.nan, np.float32)
    assert not softmax.forward(x, out) and np.isnan(out).all()
    assert softmax.backward(dp, p, out) is None and np.isnan(out).all()
    onednn.set_enabled(False)
    expected = A.attention_scores_grad.impl(dp, p)
    onednn.set_enabled(True)
    np.testing.assert_array_equal(A.attention_scores_grad.impl(dp, p), expected)  # numpy's path ran
    np.testing.assert_allclose(expected, on_onednn, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("on", [True, False])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_values_and_gradients_match_torch_with_softmax_on_and_off(rng, monkeypatch, on, causal):
    calls = []
    for name in ("_forward", "_backward"):
        real = getattr(softmax, name)
        monkeypatch.setattr(softmax, name, lambda *a, real=real: calls.append(1) or real(*a))
    onednn.set_enabled(on)
    q, k, v = (rng.standard_normal((2, 3, 7, 4), dtype=np.float32) for _ in range(3))
    w = rng.standard_normal((2, 3, 7, 4), dtype=np.float32)

    def loss(q, k, v):
        return (F.scaled_dot_product_attention(q, k, v, is_causal=causal) * w).sum()

    value, grads = avalon.grad(loss, q, k, v, argnums=(0, 1, 2))
    assert bool(calls) == on  # forward and backward on oneDNN only while on
    tq, tk, tv = (torch.from_numpy(t).requires_grad_() for t in (q, k, v))
    expected = (torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
                * torch.from_numpy(w)).sum()
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-4, atol=1e-4)
    for got, t in zip(grads, (tq, tk, tv)):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_a_fully_masked_query_keeps_numpys_zero_weights(rng):
    q, k = (rng.standard_normal((1, 3, 4), dtype=np.float32) for _ in range(2))
    mask = np.ones((3, 3), bool)
    mask[1] = False
    weights = A.attention_weights.impl(q, k, mask, scale=0.5)
    np.testing.assert_array_equal(weights[0, 1], 0)
    assert np.isfinite(weights).all()


def test_attention_gradients_by_finite_differences_in_float64_agree_with_float32_on_onednn(rng):
    q, k, v = (rng.standard_normal((2, 5, 3)) for _ in range(3))
    w = rng.standard_normal((2, 5, 3))

    def loss(q, k, v):
        return (F.scaled_dot_product_attention(q, k, v, is_causal=True) * w).sum()

    assert avalon.gradcheck(loss, q, k, v)
    _, exact = avalon.grad(loss, q, k, v, argnums=(0, 1, 2))
    _, single = avalon.grad(loss, *(t.astype(np.float32) for t in (q, k, v)), argnums=(0, 1, 2))
    for a, b in zip(single, exact):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
