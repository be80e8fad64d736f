"""Rules of the attention primitives, written with primitives so that they differentiate again.

With p = softmax(s), s = q·kᵀ·scale + mask and out = p·v, a gradient g at the output gives
  dv = pᵀ·g,  ds = p·(g·vᵀ - Σ_keys g·vᵀ·p)  (attention_scores_grad),
  dq = ds·k·scale,  dk = dsᵀ·q·scale,
and a float mask receives ds itself; a boolean mask receives nothing. The rule of `attention`
recomputes p with one `attention_weights` call rather than keeping it from the forward pass.
"""
from .. import numpy_api as npa
from ..backend import is_inexact
from ..ops import attention as A
from ..ops import linalg as la
from ..ops import reduce as rd
from .registry import rule


def _score_grads(ds, q, k, mask, scale):
    """(dq, dk, *dmask) from the gradient `ds` of the scores."""
    gq = la.matmul(ds, k) * scale
    gk = la.matmul(npa.swapaxes(ds, -1, -2), q) * scale
    return (gq, gk) + tuple(ds if is_inexact(m.dtype) else None for m in mask)


@rule(A.attention)
def _attention(g, out, q, k, v, *mask, scale, causal=False):
    p = A.attention_weights(q, k, *mask, scale=scale, causal=causal)
    gv = la.matmul(npa.swapaxes(p, -1, -2), g)
    ds = A.attention_scores_grad(la.matmul(g, npa.swapaxes(v, -1, -2)), p)
    gq, gk, *gmask = _score_grads(ds, q, k, mask, scale)
    return (gq, gk, gv, *gmask)


@rule(A.attention_weights)
def _attention_weights(g, out, q, k, *mask, scale, causal=False):
    return _score_grads(A.attention_scores_grad(g, out), q, k, mask, scale)


@rule(A.attention_scores_grad)
def _attention_scores_grad(h, out, dp, p):
    # out = p·(dp - r) with r = Σ dp·p over the last axis; it is linear in dp through the softmax
    # Jacobian (symmetric), so dp's gradient is the same operation applied to h
    row = rd.sum(dp * p, axis=-1, keepdims=True)
    gp = h * (dp - row) - dp * rd.sum(h * p, axis=-1, keepdims=True)
    return A.attention_scores_grad(h, p), gp
