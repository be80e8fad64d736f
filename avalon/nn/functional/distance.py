"""Vector norms along a dimension: `normalize`, `cosine_similarity`."""
from ... import torch_api as ta
from ...ops import elementwise as ew
from ...ops import nn as nn_ops

__all__ = ["normalize", "cosine_similarity"]


def _safe_norm(input, p, dim):
    # The norm's gradient is 0 for an all-zero vector (as PyTorch), not 0/0: the root is taken of 1
    # there, and that branch is discarded.
    if p == 2:
        total = ta.sum(input * input, dim, keepdim=True)
    else:
        total = ta.sum(ew.absolute(input) ** p, dim, keepdim=True)
    nonzero = total > 0
    safe = ew.where(nonzero, total, ta.ones_like(total))
    root = ew.sqrt(safe) if p == 2 else safe ** (1.0 / p)
    return ew.where(nonzero, root, ta.zeros_like(total))


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(‖input‖_p, eps) along `dim`: unit vectors (zero vectors stay zero)."""
    if out is not None:
        raise TypeError("normalize(out=...) is not supported: use the returned array")
    return input / ew.maximum(_safe_norm(input, p, dim), eps)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """x1·x2 / (‖x1‖·‖x2‖) along `dim` (inputs broadcast), each norm at least `eps`.

    As in PyTorch, the floor at `eps` is invisible to the gradient (it flows as if through the norm).
    """
    def unit(x):
        norm = _safe_norm(x, 2, dim)
        floored = norm + nn_ops.stop_gradient(ew.maximum(norm, eps) - norm)
        return x / floored

    return ta.sum(unit(x1) * unit(x2), dim)
