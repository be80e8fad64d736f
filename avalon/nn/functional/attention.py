"""Attention with PyTorch's semantics: `scaled_dot_product_attention` and `multi_head_attention_forward`.

Both run on the fused attention primitives (avalon/ops/attention.py): without dropout and without
the weights being asked for, one `attention` call per attention, whose rule recomputes the weights
in the backward pass, where the weights are larger than KEEP_WEIGHTS_BYTES; smaller weights are kept
for the backward pass instead (`attention_weights` and a matmul). A row whose keys are all masked
gives zero weights, a zero output and zero gradient instead of NaN, as PyTorch's
scaled_dot_product_attention does.

>>> out = F.scaled_dot_product_attention(q, k, v, is_causal=True)    # q: (N, H, L, E)
"""
import math

import numpy as np

from ... import numpy_api as npa
from ...errors import AvalonError
from ...ops import attention as A
from ...ops import elementwise as ew
from ...ops import reduce as rd
from ..errors import fail
from .dropout import dropout
from .linear import linear

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]


def _is_bool(mask):
    return np.dtype(mask.dtype) == np.bool_


def _neg_inf(dtype):
    return np.asarray(-np.inf, dtype=dtype)


# Attention whose weights take at most this many bytes keeps them from the forward pass for the backward
# (`attention_weights` and a matmul on the tape) instead of one fused `attention` call whose rule
# recomputes them (a batched product and a softmax: 5% of the Transformer workload's step). Larger
# weights are recomputed, as flash attention does, so long sequences do not hold them. 0: always fused.
KEEP_WEIGHTS_BYTES = 1 << 24


def _weights_bytes(q, k, mask):
    lead = np.broadcast_shapes(tuple(q.shape[:-2]), tuple(k.shape[:-2]),
                               *(tuple(m.shape[:-2]) for m in mask))
    return math.prod(lead) * q.shape[-2] * k.shape[-2] * np.dtype(q.dtype).itemsize


def _attend(q, k, v, mask, dropout_p, scale, causal=False, need_weights=False):
    """(softmax(q·kᵀ·scale masked by `mask`)·v, the weights or None). `mask` is None, boolean (True =
    may attend) or float (added to the scores); all arrays broadcast over the leading dimensions."""
    masks = () if mask is None else (mask,)
    if dropout_p == 0.0 and not need_weights and _weights_bytes(q, k, masks) > KEEP_WEIGHTS_BYTES:
        return A.attention(q, k, v, *masks, scale=scale, causal=causal), None
    # The weights have to exist as an array here (they are returned, or dropped out), so the fused
    # weights primitive and one matmul do the work, and the backward pass reuses them instead of
    # recomputing. Dropout stays outside the primitives: its mask is drawn by the recorded
    # avalon.rand, so every replay of a compiled tape draws afresh.
    weights = A.attention_weights(q, k, *masks, scale=scale, causal=causal)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, training=True)
    return npa.matmul(weights, v), weights


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """softmax(query·keyᵀ·scale + mask)·value over the last two dimensions (PyTorch's semantics).

    query (..., L, E), key (..., S, E), value (..., S, Ev); leading dimensions broadcast. A boolean
    `attn_mask` is True where attention is allowed; a float one is added to the scores. `is_causal`
    masks keys after each query (no attn_mask then). `scale` defaults to 1/sqrt(E). Dropout with
    probability `dropout_p` is applied to the weights whenever dropout_p > 0 (pass 0 in eval mode).
    `enable_gqa` lets key/value have fewer heads (dimension -3) than query, shared by groups.
    A query whose keys are all masked gets a zero output (and zero gradients), as in PyTorch.

    Without dropout this is one fused `attention` primitive on the tape (weights above
    KEEP_WEIGHTS_BYTES) or the fused weights (`attention_weights`) and one matmul; with dropout it is
    the fused weights, the dropout and one matmul.
    """
    fn = "scaled_dot_product_attention"
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise fail(fn, "query, key and value need at least two dimensions (…, sequence, features), got "
                        f"shapes {tuple(query.shape)}, {tuple(key.shape)} and {tuple(value.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise fail(fn, f"query (…, L, E), key (…, S, E) and value (…, S, Ev) do not fit: got shapes "
                        f"{tuple(query.shape)}, {tuple(key.shape)} and {tuple(value.shape)}")
    if not 0.0 <= dropout_p <= 1.0:
        raise fail(fn, f"dropout_p must lie in [0, 1], got {dropout_p}", AvalonError)
    if enable_gqa and key.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        heads, kv_heads = query.shape[-3], key.shape[-3]
        if heads % kv_heads or value.shape[-3] != kv_heads:
            raise fail(fn, f"with enable_gqa the query's {heads} heads must be a multiple of the key and "
                            f"value heads, got {kv_heads} and {value.shape[-3]}")
        key = npa.repeat(key, heads // kv_heads, axis=key.ndim - 3)
        value = npa.repeat(value, heads // kv_heads, axis=value.ndim - 3)
    if is_causal and attn_mask is not None:
        raise fail(fn, "give either attn_mask or is_causal=True, not both", AvalonError)
    if attn_mask is not None:
        _check_broadcast(fn, "attn_mask", attn_mask.shape, query.shape[:-2] + (query.shape[-2], key.shape[-2]))
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    return _attend(query, key, value, attn_mask, dropout_p, scale, causal=is_causal)[0]


def _check_broadcast(fn, name, shape, target):
    try:
        np.broadcast_shapes(tuple(shape), tuple(target))
    except ValueError:
        raise fail(fn, f"{name} of shape {tuple(shape)} does not broadcast to the scores' shape "
                        f"{tuple(target)}") from None


def _as_bias(mask, dtype):
    """A mask in multi-head attention's convention (True = masked out) as an additive float bias."""
    if mask is None or not _is_bool(mask):
        return mask
    return ew.where(mask, _neg_inf(dtype), np.zeros((), dtype=dtype))


def _heads(x, num_heads):
    """(N, L, E) → (N, heads, L, E / heads)."""
    n, length, embed = x.shape
    return npa.transpose(npa.reshape(x, (n, length, num_heads, embed // num_heads)), (0, 2, 1, 3))


def _pad_last(x, value=0):
    return npa.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, 1)], constant_values=value)


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False, batch_first=False):
    """PyTorch's `F.multi_head_attention_forward`: inputs (L, N, E) (or (N, L, E) with `batch_first`,
    an Avalon addition that saves two transposes; or unbatched (L, E)). Masks follow
    `nn.MultiheadAttention`: True (or -inf) = may NOT attend. Returns (output, weights or None)."""
    fn = "multi_head_attention_forward"
    if static_k is not None or static_v is not None:
        raise fail(fn, "static_k / static_v are not supported: pass the keys and values as key and value",
                    AvalonError)
    if is_causal and attn_mask is None:
        raise fail(fn, "is_causal needs attn_mask as well (it is only a hint): pass "
                        "attn_mask=nn.Transformer.generate_square_subsequent_mask(L)", AvalonError)
    batched = query.ndim == 3
    if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
        raise fail(fn, f"query, key and value must all be 3-D (batched) or 2-D (unbatched), got shapes "
                        f"{tuple(query.shape)}, {tuple(key.shape)} and {tuple(value.shape)}")
    if not batched:
        query, key, value = (npa.expand_dims(a, 0) for a in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = npa.expand_dims(key_padding_mask, 0)
    elif not batch_first:
        query, key, value = (npa.swapaxes(a, 0, 1) for a in (query, key, value))
    n, length, embed = query.shape
    source_length = key.shape[1]
    if embed != embed_dim_to_check:
        raise fail(fn, f"query has {embed} features, the layer expects embed_dim={embed_dim_to_check}")
    if key.shape[:2] != value.shape[:2] or key.shape[0] != n:
        raise fail(fn, f"query, key and value do not fit: shapes (batch first) {tuple(query.shape)}, "
                        f"{tuple(key.shape)} and {tuple(value.shape)}")
    if embed % num_heads:
        raise fail(fn, f"embed_dim {embed} is not divisible by num_heads {num_heads}", AvalonError)
    q, k, v = _project(query, key, value, in_proj_weight, in_proj_bias, use_separate_proj_weight,
                       q_proj_weight, k_proj_weight, v_proj_weight)
    attn_mask = _check_attn_mask(fn, attn_mask, n, num_heads, length, source_length)
    if key_padding_mask is not None and tuple(key_padding_mask.shape) != (n, source_length):
        raise fail(fn, f"key_padding_mask of shape {tuple(key_padding_mask.shape)} must have shape "
                        f"(batch, source length) = {(n, source_length)}")
    if bias_k is not None and bias_v is not None:
        k = npa.concatenate([k, npa.broadcast_to(npa.reshape(bias_k, (1, 1, embed)), (n, 1, embed))], axis=1)
        v = npa.concatenate([v, npa.broadcast_to(npa.reshape(bias_v, (1, 1, embed)), (n, 1, embed))], axis=1)
        attn_mask = None if attn_mask is None else _pad_last(attn_mask)
        key_padding_mask = None if key_padding_mask is None else _pad_last(key_padding_mask)
    if add_zero_attn:
        k = npa.concatenate([k, np.zeros((n, 1, embed), dtype=k.dtype)], axis=1)
        v = npa.concatenate([v, np.zeros((n, 1, embed), dtype=v.dtype)], axis=1)
        attn_mask = None if attn_mask is None else _pad_last(attn_mask)
        key_padding_mask = None if key_padding_mask is None else _pad_last(key_padding_mask)
    mask = _as_bias(attn_mask, q.dtype)
    if key_padding_mask is not None:
        padding = npa.reshape(_as_bias(key_padding_mask, q.dtype), (n, 1, 1, key_padding_mask.shape[-1]))
        mask = padding if mask is None else mask + padding
    q, k, v = (_heads(a, num_heads) for a in (q, k, v))
    out, weights = _attend(q, k, v, mask, dropout_p if training else 0.0, 1.0 / math.sqrt(embed // num_heads),
                           need_weights=need_weights)
    out = npa.reshape(npa.transpose(out, (0, 2, 1, 3)), (n, length, embed))
    out = linear(out, out_proj_weight, out_proj_bias)
    if not batched:
        out = npa.squeeze(out, 0)
    elif not batch_first:
        out = npa.swapaxes(out, 0, 1)
    if not need_weights:
        return out, None
    if average_attn_weights:
        weights = rd.mean(weights, axis=1)
    return out, (weights if batched else npa.squeeze(weights, 0))


def _project(query, key, value, in_proj_weight, in_proj_bias, separate, q_weight, k_weight, v_weight):
    embed = query.shape[-1]
    biases = [None] * 3 if in_proj_bias is None else [in_proj_bias[i * embed:(i + 1) * embed] for i in range(3)]
    if separate:
        return tuple(linear(x, w, b) for x, w, b in zip((query, key, value), (q_weight, k_weight, v_weight), biases))
    if query is key and key is value:  # self-attention: one product for q, k and v
        qkv = linear(query, in_proj_weight, in_proj_bias)
        return tuple(qkv[..., i * embed:(i + 1) * embed] for i in range(3))
    weights = [in_proj_weight[i * embed:(i + 1) * embed] for i in range(3)]
    return tuple(linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases))


def _check_attn_mask(fn, attn_mask, n, num_heads, length, source_length):
    """attn_mask as (L, S) or (N, heads, L, S), from PyTorch's (L, S) or (N·heads, L, S)."""
    if attn_mask is None:
        return None
    if attn_mask.ndim == 2 and tuple(attn_mask.shape) == (length, source_length):
        return attn_mask
    if attn_mask.ndim == 3 and tuple(attn_mask.shape) == (n * num_heads, length, source_length):
        return npa.reshape(attn_mask, (n, num_heads, length, source_length))
    raise fail(fn, f"attn_mask of shape {tuple(attn_mask.shape)} must be (L, S) = {(length, source_length)} "
                    f"or (N·num_heads, L, S) = {(n * num_heads, length, source_length)}")
