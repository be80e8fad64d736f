"""The fused normalisation primitive behind batch, layer, group and instance norm.

`normalize(x, mean, var, weight, bias)` is (x - mean) / sqrt(var + eps) * weight + bias where `mean`
and `var` are x's own (biased) moments over `axes`, computed by the caller (once: batch norm also
needs them for its running statistics). Its rule differentiates through those moments, so they are
operands for speed only and receive no gradient of their own; passing anything other than x's
moments gives wrong gradients.
"""
from ..backend import is_numpy_like, namespace
from .primitive import primitive


@primitive("normalize")
def normalize(x, mean, var, weight, bias, eps, axes):
    """x normalised by its moments `mean`, `var` (keepdims over `axes`), then scaled and shifted by
    `weight` and `bias` (broadcastable to x, or None)."""
    xp = namespace(x)
    scale = 1.0 / xp.sqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    # two passes over x: scale and shift are as small as the statistics whenever the weight is per channel
    y = x * scale
    if is_numpy_like(xp):
        y += shift
        return y
    return y + shift
