"""Attention whose weights are small (at most KEEP_WEIGHTS_BYTES) keeps them for the backward pass
(attention_weights and a matmul on the tape) instead of one fused `attention` call whose rule recomputes
them: both give the same values and gradients, every mask kind; larger weights stay fused."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
import avalon.nn.functional.attention as attention_module

Q, K, V = (np.random.default_rng(s).standard_normal(shape).astype(np.float32)
           for s, shape in ((1, (2, 3, 4, 5)), (2, (2, 3, 6, 5)), (3, (2, 3, 6, 7))))
WEIGHTS_BYTES = 2 * 3 * 4 * 6 * 4  # (2, 3, 4, 6) float32 weights
MASKS = {
    "none": {},
    "bool": dict(attn_mask=np.random.default_rng(4).random((4, 6)) > 0.3),
    "float": dict(attn_mask=np.random.default_rng(5).standard_normal((3, 4, 6)).astype(np.float32)),
    "causal": dict(is_causal=True),
}


def _names(f, *args):
    return [n.prim.name for n in avalon.grad_tape(f, *args).calls]


def _loss(kwargs):
    w = np.random.default_rng(9).standard_normal((2, 3, 4, 7)).astype(np.float32)
    if kwargs.get("attn_mask") is not None and kwargs["attn_mask"].dtype != np.bool_:
        return lambda q, k, v, m: (F.scaled_dot_product_attention(q, k, v, attn_mask=m) * w).sum()
    return lambda q, k, v: (F.scaled_dot_product_attention(q, k, v, **kwargs) * w).sum()


@pytest.mark.parametrize("mask", MASKS)
def test_kept_weights_give_the_fused_values_and_gradients(mask, monkeypatch):
    kwargs = MASKS[mask]
    float_mask = "attn_mask" in kwargs and kwargs["attn_mask"].dtype != np.bool_
    args = (Q, K, V, kwargs["attn_mask"]) if float_mask else (Q, K, V)
    results = {}
    for keep in (WEIGHTS_BYTES, 0):
        monkeypatch.setattr(attention_module, "KEEP_WEIGHTS_BYTES", keep)
        f = _loss(kwargs)  # a new function: traced under this setting
        names = _names(f, *args)
        assert ("attention" in names) == (keep == 0)
        # kept: the weights come from the forward pass alone; fused: once there, once recomputed
        assert names.count("attention_weights") == 1 and names.count("attention") == (keep == 0)
        results[keep] = avalon.grad(f, *args, argnums=tuple(range(len(args))))
    (kept_value, kept_grads), (fused_value, fused_grads) = results[WEIGHTS_BYTES], results[0]
    np.testing.assert_allclose(kept_value, fused_value, rtol=1e-6)
    for ours, theirs in zip(kept_grads, fused_grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_weights_above_the_limit_are_recomputed(monkeypatch):
    for keep, fused in ((WEIGHTS_BYTES, False), (WEIGHTS_BYTES - 1, True)):
        monkeypatch.setattr(attention_module, "KEEP_WEIGHTS_BYTES", keep)
        names = [n.prim.name for n in avalon.trace(lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
                                                   Q, K, V).calls]
        assert names == (["attention"] if fused else ["attention_weights", "matmul"])


def test_the_limit_counts_broadcast_batch_dimensions(monkeypatch):
    q = np.zeros((2, 1, 4, 5), np.float32)  # one head of queries against three of keys: (2, 3, 4, 6) weights
    monkeypatch.setattr(attention_module, "KEEP_WEIGHTS_BYTES", WEIGHTS_BYTES - 1)
    assert [n.prim.name for n in avalon.trace(F.scaled_dot_product_attention, q, K, V).calls] == ["attention"]


def test_multi_head_attention_keeps_small_weights():
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = np.random.default_rng(6).standard_normal((3, 5, 8)).astype(np.float32)
    names = _names(lambda m, x: m(x, x, x, need_weights=False)[0].sum(), mha, x)
    assert "attention" not in names and names.count("attention_weights") == 1
