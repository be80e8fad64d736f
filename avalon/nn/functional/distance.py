"""Vector norms along a dimension: `normalize`."""
from ... import torch_api as ta
from ...ops import elementwise as ew

__all__ = ["normalize"]


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
