"""avalon.kernels.onednn.matmul: batched products on oneDNN's matmul primitive, against numpy and PyTorch,
and attention (which scales q·kᵀ in the same pass) through the public API with it on and off."""
import ctypes

import numpy as np
import pytest
import torch

import avalon
import avalon.nn.functional as F
from avalon.ops import linalg
from avalon.kernels import onednn
from avalon.kernels.onednn import gemm
from avalon.kernels.onednn import matmul as M
from avalon.kernels.onednn import primitive as P

pytestmark = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")


@pytest.fixture(autouse=True)
def _every_size(monkeypatch):
    """oneDNN on, batched products on the primitive however small, on however many threads."""
    monkeypatch.setattr(M, "SMALLEST", 0)
    monkeypatch.setattr(gemm, "MAX_THREADS", 64)
    monkeypatch.setattr(gemm, "BATCHED", True)
    previous = onednn.set_enabled(True)
    yield
    onednn.set_enabled(previous)


def _torch(a, b, alpha=1.0):
    return (torch.from_numpy(np.ascontiguousarray(a)) @ torch.from_numpy(np.ascontiguousarray(b))) * alpha


def test_eltwise_linear_is_the_enum_value_of_oneDNN_3_2():
    name = P.lib().dnnl_alg_kind2str
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.c_int]
    assert name(M.ELTWISE_LINEAR).decode() == "eltwise_linear"


def _heads(rng, batch, length, heads, width):
    """(B, H, L, E) seen in a (B, L, H, E) array, as multi-head attention splits its heads."""
    return rng.standard_normal((batch, length, heads, width), dtype=np.float32).transpose(0, 2, 1, 3)


@pytest.mark.parametrize("batch,length,heads,width,source", [
    (2, 7, 3, 5, 9), (1, 1, 2, 4, 1), (3, 33, 4, 16, 17), (2, 128, 4, 64, 128)])
def test_strided_heads_and_transposed_keys_give_numpys_and_torchs_product(rng, batch, length, heads, width, source):
    q, k = _heads(rng, batch, length, heads, width), _heads(rng, batch, source, heads, width)
    kt = np.swapaxes(k, -1, -2)
    before = M._cache.created
    got = M.product(q, kt, alpha=0.3)
    assert got is not None and M._cache.created == before + 1
    np.testing.assert_allclose(got, np.matmul(q, kt) * np.float32(0.3), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, _torch(q, kt, 0.3), rtol=1e-5, atol=1e-5)
    M.product(q, kt, alpha=0.3)
    assert M._cache.created == before + 1  # the second call reuses the primitive


def test_out_is_written_in_place_in_any_strided_layout_and_through_a_temporary_when_it_overlaps(rng):
    p = rng.standard_normal((2, 3, 6, 8), dtype=np.float32)
    v = _heads(rng, 2, 8, 3, 5)
    merged = np.full((2, 6, 3, 5), np.nan, np.float32)  # the heads written straight into (B, L, H, E)
    out = merged.transpose(0, 2, 1, 3)
    assert M.product(p, v, out=out) is out
    np.testing.assert_allclose(merged.transpose(0, 2, 1, 3), _torch(p, v), rtol=1e-5, atol=1e-5)
    a = rng.standard_normal((3, 4, 4), dtype=np.float32)
    b = rng.standard_normal((3, 4, 4), dtype=np.float32)
    expected = np.matmul(a, b)
    assert M.product(a, b, out=a) is a
    np.testing.assert_allclose(a, expected, rtol=1e-5, atol=1e-5)


def test_operands_oneDNN_cannot_describe_are_copied_first(rng):
    a = rng.standard_normal((2, 5, 4), dtype=np.float32)[:, ::-1]  # a negative stride
    b = rng.standard_normal((2, 4, 3), dtype=np.float32)
    np.testing.assert_allclose(M.product(a, b), _torch(a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("a_shape,b_shape", [((3, 4, 5), (5, 6)), ((1, 4, 5), (1, 5, 6)), ((2, 4, 5), (1, 5, 6)),
                                             ((2, 4, 0), (2, 0, 6)), ((2, 3, 4, 5), (3, 5, 6))])
def test_what_does_not_apply_is_left_to_the_caller(rng, a_shape, b_shape):
    """A single matrix, a batch of one, broadcasting batches, an empty axis, unequal ranks: None."""
    a = rng.standard_normal(a_shape, dtype=np.float32)
    b = rng.standard_normal(b_shape, dtype=np.float32)
    assert M.product(a, b) is None
    np.testing.assert_allclose(gemm.matmul(a, b) if gemm.matmul(a, b) is not None else np.matmul(a, b),
                               np.matmul(a, b), rtol=1e-5, atol=1e-5)


def test_a_batch_below_smallest_is_left_to_the_caller(rng, monkeypatch):
    monkeypatch.setattr(M, "SMALLEST", 2 * 3 * 4 * 5 + 1)
    a = rng.standard_normal((2, 3, 4), dtype=np.float32)
    assert M.product(a, rng.standard_normal((2, 4, 5), dtype=np.float32)) is None


def test_gemm_matmul_routes_equal_batches_to_the_primitive_only_while_on_and_batched(rng, monkeypatch):
    calls = []
    real = M.product
    monkeypatch.setattr(M, "product", lambda *args: calls.append(1) or real(*args))
    a = rng.standard_normal((3, 6, 5), dtype=np.float32)
    b = rng.standard_normal((3, 5, 4), dtype=np.float32)
    np.testing.assert_allclose(linalg.product(np, a, b, alpha=2.0), _torch(a, b, 2.0), rtol=1e-5, atol=1e-5)
    assert len(calls) == 1
    monkeypatch.setattr(gemm, "BATCHED", False)
    np.testing.assert_allclose(linalg.product(np, a, b, alpha=2.0), _torch(a, b, 2.0), rtol=1e-5, atol=1e-5)
    onednn.set_enabled(False)
    np.testing.assert_allclose(linalg.product(np, a, b, alpha=2.0), _torch(a, b, 2.0), rtol=1e-5, atol=1e-5)
    assert len(calls) == 1


@pytest.mark.parametrize("on", [True, False])
def test_multi_head_attention_values_and_gradients_match_torch_with_the_primitive_on_and_off(rng, on):
    onednn.set_enabled(on)
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    ours = avalon.nn.MultiheadAttention(16, 4, batch_first=True)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((3, 9, 16), dtype=np.float32)
    w = rng.standard_normal((3, 9, 16), dtype=np.float32)

    def loss(m, x):
        return (m(x, x, x, need_weights=False)[0] * w).sum()

    before = M._cache.created
    value, (grads, gx) = avalon.grad(loss, ours, x)
    assert (M._cache.created > before) == on
    tx = torch.from_numpy(x).requires_grad_()
    expected = (theirs(tx, tx, tx, need_weights=False)[0] * torch.from_numpy(w)).sum()
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads["in_proj_weight"], theirs.in_proj_weight.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_scaled_dot_product_attention_gradients_by_finite_differences(rng):
    """float64 (numpy) gradients checked by finite differences; float32 ones (the primitive) against them
    and against torch's."""
    q, k, v = (rng.standard_normal((2, 3, 5, 4)).astype(np.float32) for _ in range(3))
    w = rng.standard_normal((2, 3, 5, 4))
    assert avalon.gradcheck(lambda q, k, v: (F.scaled_dot_product_attention(q, k, v) * w).sum(),
                            q.astype(np.float64), k.astype(np.float64), v.astype(np.float64))
    _, exact = avalon.grad(lambda q, k, v: (F.scaled_dot_product_attention(q, k, v) ** 2).sum(),
                           q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), argnums=(0, 1, 2))
    before = M._cache.created
    _, grads = avalon.grad(lambda q, k, v: (F.scaled_dot_product_attention(q, k, v) ** 2).sum(), q, k, v,
                           argnums=(0, 1, 2))
    assert M._cache.created > before
    tq, tk, tv = (torch.from_numpy(t).requires_grad_() for t in (q, k, v))
    (torch.nn.functional.scaled_dot_product_attention(tq, tk, tv) ** 2).sum().backward()
    for got, t, e in zip(grads, (tq, tk, tv), exact):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got, e, rtol=1e-4, atol=1e-5)


def test_a_product_on_one_thread_at_two_threads_gets_a_one_thread_primitive(rng, monkeypatch):
    """gemm runs small products at one thread when the process has more (the caller's count kept):
    the primitive is then made at one thread too (a primitive runs on the count it was made at)."""
    monkeypatch.setitem(avalon.threads._state, "threads", 2)
    assert onednn.library.threads() == 2
    a, b = rng.standard_normal((5, 6, 7), dtype=np.float32), rng.standard_normal((5, 7, 3), dtype=np.float32)
    before = M._cache.created
    np.testing.assert_allclose(M.product(a, b, threads=1), _torch(a, b), rtol=1e-5, atol=1e-5)
    made = [key for key in M._cache._items if key[0][0] == a.shape and key[0][2] == b.shape]
    assert M._cache.created == before + 1 and [key[1] for key in made] == [1]
