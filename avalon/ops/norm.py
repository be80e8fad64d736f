"""The fused normalisation primitive behind batch, layer, group and instance norm.

`normalize(x, mean, var, weight, bias)` is (x - mean) / sqrt(var + eps) * weight + bias where `mean`
and `var` are x's own (biased) moments over `axes`, computed by the caller (once: batch norm also
needs them for its running statistics). Its rule differentiates through those moments, so they are
operands for speed only and receive no gradient of their own; passing anything other than x's
moments gives wrong gradients.
"""
import math

import numpy as np

from ..backend import is_numpy_like, namespace
from .primitive import primitive


@primitive("normalize")
def normalize(x, mean, var, weight, bias, eps, axes):
    """x normalised by its moments `mean`, `var` (keepdims over `axes`), then scaled and shifted by
    `weight` and `bias` (broadcastable to x, or None)."""
    xp = namespace(x)
    inv_std = 1.0 / xp.sqrt(var + eps)
    shapes = [inv_std.shape] + [v.shape for v in (weight, bias) if v is not None]
    if math.prod(np.broadcast_shapes(*shapes)) < math.prod(x.shape):
        # statistics and affine map fold into one small scale and shift (batch and group norm): two passes
        scale = inv_std if weight is None else inv_std * weight
        shift = -mean * scale if bias is None else bias - mean * scale
        return _apply(xp, x * scale, shift, None)
    # the affine map runs along the normalised axes (layer norm): a folded scale would be as large as x
    y = x - mean
    y = _apply(xp, y, None, inv_std)
    if weight is not None:
        y = _apply(xp, y, None, weight)
    return y if bias is None else _apply(xp, y, bias, None)


def _apply(xp, y, add, multiply):
    """y + add or y * multiply, in place where the array module allows it (y is a fresh array)."""
    if is_numpy_like(xp):
        if add is not None:
            y += add
        else:
            y *= multiply
        return y
    return y + add if add is not None else y * multiply
