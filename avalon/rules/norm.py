"""Rule of the fused normalisation primitive, written with primitives so it can be differentiated again.

With σ⁻¹ = 1/sqrt(var + eps), x̂ = (x - mean)·σ⁻¹ and gy = g·weight, the gradient through x and its
own moments is σ⁻¹·(gy - mean(gy) - x̂·mean(gy·x̂)) over the normalised axes; the weight gets g·x̂ and
the bias g (the engine sums them down to their shapes).
"""
from ..ops import elementwise as ew
from ..ops import norm as nm
from ..ops import reduce as rd
from .registry import rule


def _constant_along(v, axes, ndim):
    """True when `v` (broadcast against an ndim array from the right) has length 1 on every axis in axes."""
    if v is None:
        return True
    lead = ndim - v.ndim
    return all(a < lead or v.shape[a - lead] == 1 for a in axes)


@rule(nm.normalize)
def _normalize(g, out, x, mean, var, weight, bias, eps, axes):
    inv_std = 1.0 / ew.sqrt(var + eps)
    centred = x - mean
    count = 1
    for a in axes:
        count *= x.shape[a]
    if _constant_along(weight, axes, x.ndim) and _constant_along(bias, axes, x.ndim):
        # batch and instance norm: the weight is constant over the normalised axes, so it folds into
        # small per-statistic factors and the gradient is a·g + b·(x - mean) + c (eight passes, not fourteen)
        scale = inv_std if weight is None else inv_std * weight
        mean_g = rd.mean(g, axis=axes, keepdims=True)
        mean_gc = rd.mean(g * centred, axis=axes, keepdims=True)
        gx = g * scale - centred * (scale * inv_std * inv_std * mean_gc) - scale * mean_g
        gw = None if weight is None else mean_gc * inv_std * float(count)
        gb = None if bias is None else mean_g * float(count)
        return gx, None, None, gw, gb
    xhat = centred * inv_std
    gy = g if weight is None else g * weight
    gx = inv_std * (gy - rd.mean(gy, axis=axes, keepdims=True)
                    - xhat * rd.mean(gy * xhat, axis=axes, keepdims=True))
    gw = None if weight is None else g * xhat
    gb = None if bias is None else g
    return gx, None, None, gw, gb
