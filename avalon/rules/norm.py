"""Rule of the fused normalisation primitive, written with primitives so it can be differentiated again.

With x̂ = (x - mean) / σ and gy = g·weight, the gradient through x and its own moments is
σ⁻¹ (gy - mean(gy) - x̂·mean(gy·x̂)) over the normalised axes; the weight gets g·x̂ and the bias g
(the engine sums them down to their shapes).
"""
from ..ops import elementwise as ew
from ..ops import norm as nm
from ..ops import reduce as rd
from .registry import rule


@rule(nm.normalize)
def _normalize(g, out, x, mean, var, weight, bias, eps, axes):
    inv_std = 1.0 / ew.sqrt(var + eps)
    xhat = (x - mean) * inv_std
    gy = g if weight is None else g * weight
    gx = inv_std * (gy - rd.mean(gy, axis=axes, keepdims=True)
                    - xhat * rd.mean(gy * xhat, axis=axes, keepdims=True))
    gw = None if weight is None else g * xhat
    gb = None if bias is None else g
    return gx, None, None, gw, gb
