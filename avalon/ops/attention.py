"""Scaled dot-product attention as fused primitives (their rules are in avalon/rules/attention.py).

`attention(q, k, v, *mask)` is softmax(q·kᵀ·scale + mask)·v in one call: the (…, L, S) weights live
only inside it, and its rule recomputes them once (as flash attention does) instead of keeping them
alive between the forward and the backward pass. `attention_weights` is that softmax alone, for the
callers that must see the weights (multi-head attention's `need_weights`, dropout on the weights),
and `attention_scores_grad` carries a gradient from the weights back to the scores.

Masks follow `F.scaled_dot_product_attention`: an optional trailing operand, boolean (True = may
attend) or float (added to the scores), broadcast against the scores; `causal` masks the keys after
each query (top-left aligned, as PyTorch's `is_causal`). A query whose keys are all masked gets zero
weights, hence a zero output and zero gradients, as PyTorch's scaled_dot_product_attention gives.
"""
import numpy as np

from ..backend import is_numpy_like, namespace
from ..kernels.onednn import softmax
from .linalg import product
from .primitive import primitive


_NEG_INF = float("-inf")


def _is_bool(xp, dtype):
    return dtype == getattr(xp, "bool", getattr(xp, "bool_", bool))


def _swap(xp, x):
    """x with its last two axes exchanged (a view)."""
    return xp.swapaxes(x, -1, -2) if is_numpy_like(xp) else xp.matrix_transpose(x)


def _masked_scores(xp, q, k, mask, scale, causal, into=None):
    """q·kᵀ·scale with masked entries at -inf (or the float mask added): a fresh array (or `into`, a
    numpy array of the product's shape and dtype), so numpy may finish it in place."""
    numpy = is_numpy_like(xp)
    shape = np.broadcast_shapes(tuple(q.shape[:-2]), tuple(k.shape[:-2])) + (q.shape[-2], k.shape[-2])
    if numpy and into is not None and into.shape == shape and into.dtype == xp.result_type(q, k) and \
            into.flags.c_contiguous:  # another layout would sum the rows in another order: other bits
        scores = product(xp, q, _swap(xp, k), out=into, alpha=scale)
    else:
        scores = product(xp, q, _swap(xp, k), alpha=scale)
    if causal:
        length, source_length = scores.shape[-2:]
        rows = xp.reshape(xp.arange(length), (length, 1))
        above = xp.arange(source_length) > rows  # causal: no query may see a later key
        if numpy:
            xp.copyto(scores, _NEG_INF, where=above)
        else:
            scores = xp.where(above, xp.asarray(_NEG_INF, dtype=scores.dtype), scores)
    if mask:
        mask = mask[0]
        in_place = numpy and np.broadcast_shapes(tuple(mask.shape), tuple(scores.shape)) == tuple(scores.shape)
        if _is_bool(xp, mask.dtype):
            if in_place:
                xp.copyto(scores, _NEG_INF, where=~mask)
            else:
                scores = xp.where(mask, scores, xp.asarray(_NEG_INF, dtype=scores.dtype))
        elif in_place and xp.result_type(scores, mask) == scores.dtype:
            scores += mask
        else:
            scores = scores + mask
    return scores


def _softmax_rows(xp, scores):
    """softmax over the last axis, with zeros (not 0/0) in rows where every score is -inf; numpy
    overwrites `scores` with the result."""
    top = xp.max(scores, axis=-1, keepdims=True)
    if is_numpy_like(xp):
        top[top == _NEG_INF] = 0  # a fully masked row: exp(-inf - 0) = 0 everywhere
        scores -= top
        e = xp.exp(scores, out=scores)
        total = xp.sum(e, axis=-1, keepdims=True)
        total[total == 0] = 1
        e /= total
        return e
    zero = xp.zeros((), dtype=scores.dtype)
    e = xp.exp(scores - xp.where(top == _NEG_INF, zero, top))
    total = xp.sum(e, axis=-1, keepdims=True)
    return e / xp.where(total == 0, xp.ones((), dtype=total.dtype), total)


@primitive("attention_weights", out=True)
def attention_weights(q, k, *mask, scale, causal=False, out=None):
    """softmax(q·kᵀ·scale + mask) over the keys: q (…, L, E), k (…, S, E) → weights (…, L, S).

    `mask` is nothing, or one boolean (True = may attend) or float (added) array broadcasting to
    (…, L, S); `causal` also masks every key after its query. Fully masked rows get zero weights.
    `out=` (numpy) lets a replay write them into a planned buffer.
    """
    xp = namespace(q, k)
    scores = _masked_scores(xp, q, k, mask, scale, causal, out)
    # oneDNN's softmax where no row can be fully masked (it would give NaN there, numpy's path zeros)
    weights = scores if not mask and softmax.forward(scores, scores) else _softmax_rows(xp, scores)
    if out is None or weights is out:
        return weights
    out[...] = weights  # (a mask that broadcast the scores to more dimensions made a new array)
    return out


@primitive("attention", fresh=True)
def attention(q, k, v, *mask, scale, causal=False):
    """softmax(q·kᵀ·scale + mask)·v: q (…, L, E), k (…, S, E), v (…, S, Ev) → (…, L, Ev), leading
    dimensions broadcast. Masks as in `attention_weights`; a fully masked query gives zeros.

    >>> out = attention(q, k, v, scale=1 / math.sqrt(q.shape[-1]), causal=True)
    """
    xp = namespace(q, k, v)
    return product(xp, attention_weights.impl(q, k, *mask, scale=scale, causal=causal), v)


@primitive("attention_scores_grad", out=True)
def attention_scores_grad(dp, p, out=None):
    """The gradient of the scores from the gradient `dp` of the softmax weights `p` (over the last
    axis): p·(dp - Σ dp·p). Rows of zero weights (fully masked) get zero. `out=` as a ufunc's (numpy)."""
    xp = namespace(dp, p)
    ds = softmax.backward(dp, p, out) if xp is np else None  # oneDNN's, where it applies
    if ds is not None:
        return ds
    if is_numpy_like(xp):
        # einsum sums each row's products in one pass, without the (…, L, S) temporary that dp·p then a
        # sum over the last axis write and read: (16, 4, 128, 128), one thread, 1.41 -> 0.82 ms
        row = xp.einsum("...i,...i->...", dp, p)[..., None]
        ds = xp.subtract(dp, row, out=out)
        ds *= p
        return ds
    return (dp - xp.sum(dp * p, axis=-1, keepdims=True)) * p
