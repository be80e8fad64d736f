"""Attention (opset 23+): scaled dot-product attention over 4-D (batch, heads, sequence, size) or 3-D
(batch, sequence, heads·size) inputs, with a key/value cache, grouped key/value heads, causal, boolean or
additive masks, softcap, and the optional QK output."""
import numpy as np

from . import operator


def _heads(x, count):
    """(batch, sequence, count·size) -> (batch, count, sequence, size)."""
    return np.transpose(np.reshape(x, (x.shape[0], x.shape[1], count, -1)), (0, 2, 1, 3))


def _allowed_bias(q_len, kv_len, offset, left, right, causal):
    """0 where a query may attend a key, -inf elsewhere (causal frontier and sliding window, both
    aligned so that query i sits at key position offset + i)."""
    i = np.arange(q_len).reshape(-1, 1) + np.reshape(offset, (-1, 1, 1))
    j = np.arange(kv_len).reshape(1, -1)
    allowed = np.ones(np.broadcast_shapes(i.shape, j.shape), bool)
    if causal:
        allowed &= j <= i
    if left >= 0:
        allowed &= i - j <= left
    if right >= 0:
        allowed &= j - i <= right
    return np.where(allowed, 0.0, -np.inf)[:, None]  # (batch or 1, 1, q, kv)


def _softmax_masked(scores):
    """Softmax over the last axis that gives 0, not nan, for a row whose every score is -inf."""
    top = np.max(scores, axis=-1, keepdims=True)
    top = np.where(top == -np.inf, np.zeros((), scores.dtype), top)
    e = np.exp(scores - top)
    total = np.sum(e, axis=-1, keepdims=True)
    return e / np.where(total == 0, np.ones((), scores.dtype), total)


@operator("Attention")
def attention(n, q, k, v, mask=None, past_key=None, past_value=None, nonpad_kv_seqlen=None):
    three_d = q.ndim == 3
    if three_d:
        kv_heads = n.attr("kv_num_heads")
        q, k, v = _heads(q, n.attr("q_num_heads")), _heads(k, kv_heads), _heads(v, kv_heads)
    if past_key is not None:
        k, v = np.concatenate([past_key, k], axis=2), np.concatenate([past_value, v], axis=2)
    present_key, present_value = k, v
    q_len, kv_len = q.shape[2], k.shape[2]
    scale = n.attr("scale", 1.0 / np.sqrt(q.shape[3]))

    offset = np.asarray(past_key.shape[2] if past_key is not None else 0)
    if nonpad_kv_seqlen is not None:
        lengths = n.constant(nonpad_kv_seqlen, "nonpad_kv_seqlen").reshape(-1)
        offset = lengths - q_len
    bias = _allowed_bias(q_len, kv_len, offset, n.attr("left_window_size", -1), n.attr("right_window_size", -1),
                         bool(n.attr("is_causal", 0))).astype(q.dtype)
    if nonpad_kv_seqlen is not None:
        padding = np.arange(kv_len) < lengths[:, None]
        bias = bias + np.where(padding, 0.0, -np.inf).astype(q.dtype).reshape(-1, 1, 1, kv_len)
    if mask is not None:
        if mask.shape[-1] < kv_len:  # a mask for the new keys only: the cache's are masked out
            blocked = False if mask.dtype == np.bool_ else -np.inf
            fill = np.full(mask.shape[:-1] + (kv_len - mask.shape[-1],), blocked, dtype=mask.dtype)
            mask = np.concatenate([mask, fill], axis=-1)
        if mask.dtype == np.bool_:
            mask = np.where(mask, np.zeros((), q.dtype), np.full((), -np.inf, q.dtype))
        bias = bias + mask

    groups = q.shape[1] // k.shape[1]
    if groups > 1:  # grouped-query attention: each key/value head serves `groups` query heads
        k, v = np.repeat(k, groups, axis=1), np.repeat(v, groups, axis=1)
    root = np.asarray(np.sqrt(scale), q.dtype)  # √scale on each side, as the spec's reference (float16 rounding)
    scores = (q * root) @ np.swapaxes(k * root, -1, -2)
    softcap = n.attr("softcap", 0.0)
    if softcap > 0:
        scores = np.tanh(scores / softcap) * softcap
    qk_output = scores
    scores = scores + bias
    mode = n.attr("qk_matmul_output_mode", 0)
    if mode == 2:
        qk_output = scores
    weights = _softmax_masked(scores)
    if mode == 3:
        qk_output = weights
    y = weights @ v
    if three_d:
        y = np.transpose(y, (0, 2, 1, 3))
        y = np.reshape(y, (y.shape[0], y.shape[1], -1))
    return y, present_key, present_value, qk_output


@operator("RotaryEmbedding")
def rotary_embedding(n, x, cos, sin, position_ids=None):
    """Rotary position embedding: pairs of the first `rotary_embedding_dim` features of each head (the two
    halves, or neighbours when `interleaved`) rotated by their position's angle. `x` is (batch, heads,
    sequence, size) or (batch, sequence, heads·size); the caches are (positions, dim/2) gathered at
    `position_ids`, or already (batch, sequence, dim/2)."""
    shape = x.shape
    if x.ndim == 4:
        x = np.transpose(x, (0, 2, 1, 3))  # (batch, sequence, heads, size)
    else:
        x = np.reshape(x, (shape[0], shape[1], n.attr("num_heads"), -1))
    size = x.shape[3]
    rotated = n.attr("rotary_embedding_dim", 0) or size
    if position_ids is not None:
        cos, sin = np.take(cos, position_ids, axis=0), np.take(sin, position_ids, axis=0)
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]
    part, rest = x[..., :rotated], x[..., rotated:]
    if n.attr("interleaved", 0):
        first, second = part[..., 0::2], part[..., 1::2]
    else:
        first, second = part[..., :rotated // 2], part[..., rotated // 2:]
    real, imaginary = cos * first - sin * second, sin * first + cos * second
    if n.attr("interleaved", 0):
        part = np.reshape(np.stack([real, imaginary], axis=-1), part.shape)
    else:
        part = np.concatenate([real, imaginary], axis=-1)
    y = np.concatenate([part, rest], axis=-1)
    return np.transpose(y, (0, 2, 1, 3)) if len(shape) == 4 else np.reshape(y, shape)


def _per_head(x, heads):
    """(batch, time, heads·size) -> (batch, heads, time, size)."""
    return np.transpose(np.reshape(x, (x.shape[0], x.shape[1], heads, -1)), (0, 2, 1, 3))


@operator("LinearAttention")
def linear_attention(n, q, k, v, past=None, decay=None, beta=None):
    """The recurrence of linear attention, one step per position (the spec's sequential semantics;
    chunk_size is a speed hint), in float32: a state S (batch, kv heads, d_k, d_v) decayed by exp(decay)
    ('gated' rules), corrected by beta·(v - Sᵀk) ('delta' rules), plus k⊗v; output scale·qᵀS, each kv
    head's state shared by q_num_heads / kv_num_heads query heads."""
    rule = n.attr("update_rule", "gated_delta")
    q_heads, kv_heads = n.attr("q_num_heads"), n.attr("kv_num_heads")
    wide = np.float32 if q.dtype == np.float16 else q.dtype
    q4, k4, v4 = (_per_head(x, h).astype(wide) for x, h in ((q, q_heads), (k, kv_heads), (v, kv_heads)))
    batch, steps, d_k, d_v = q.shape[0], q.shape[1], q4.shape[3], v4.shape[3]
    if decay is not None:
        decay = _per_head(decay, kv_heads).astype(wide)  # (batch, kv heads, time, 1 or d_k)
    if beta is not None:
        beta = _per_head(beta, beta.shape[2]).astype(wide)  # (batch, kv heads or 1, time, 1)
    state = np.zeros((batch, kv_heads, d_k, d_v), wide) if past is None else past.astype(wide)
    scale = n.attr("scale", 0.0) or 1.0 / np.sqrt(d_k)
    outputs = []
    for t in range(steps):
        k_t, v_t = k4[:, :, t, :], v4[:, :, t, :]
        if rule in ("gated", "gated_delta"):
            state = state * np.exp(decay[:, :, t, :])[..., None]
        if rule in ("delta", "gated_delta"):
            v_t = beta[:, :, t, :] * (v_t - np.einsum("bhdm,bhd->bhm", state, k_t))
        state = state + k_t[..., :, None] * v_t[..., None, :]
        shared = np.repeat(state, q_heads // kv_heads, axis=1) if q_heads != kv_heads else state
        outputs.append(np.einsum("bhd,bhdm->bhm", q4[:, :, t, :], shared) * np.asarray(scale, wide))
    y = np.transpose(np.stack(outputs, axis=2), (0, 2, 1, 3))
    y = np.reshape(y, (batch, steps, q_heads * d_v)).astype(q.dtype)
    return y, state.astype(q.dtype if past is None else past.dtype)
