"""Rules of the fused batch-norm primitives (avalon/ops/batch_norm.py), written with primitives so they
differentiate again.

`batch_norm_apply`'s rule is one `batch_norm_backward` call, whose flat result holds x's gradient (a
view) and weight's and bias's (copied out, so the large buffer is not kept alive with them).
`batch_norm_backward`'s rule is that of the same gradient written with the decomposed primitives of
ops/norm.py (c = x - mean, r = normalize_grad(g, c, var, weight), x's gradient = r - mean(r), weight's
Σ g·c·σ⁻¹, bias's Σ g), so second derivatives follow the decomposed path's rules.
"""
from ..ops import batch_norm as bn
from ..ops import elementwise as ew
from ..ops import norm as nm
from ..ops import reduce as rd
from ..ops import shape as sh
from . import norm as norm_rules
from .registry import rule


def _channel_shape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _row(a, k, x):
    """Row k of a (2, C) statistics array (or its cotangent), shaped to broadcast over x."""
    return sh.reshape(a[k], shape=_channel_shape(x))


@rule(bn.batch_norm_stats)
def _stats(h, out, x):
    # mean: each value's share 1/n; biased var: 2·(x - mean)/n (the centred values sum to zero)
    n = float(bn.count(x.shape))
    centred = nm.center(x, _row(out, 0, x), axes=bn.axes_of(x.ndim))
    return (_row(h, 0, x) * (1.0 / n) + centred * (_row(h, 1, x) * (2.0 / n)),)


@rule(bn.batch_norm_apply)
def _apply(g, out, x, stats, weight, bias, eps):
    flat = bn.batch_norm_backward(g, x, stats, weight, eps=eps)
    size, channels = x.size, x.shape[1]
    gx = sh.reshape(flat[:size], shape=tuple(x.shape))
    gw = None if weight is None else copied(flat[size:size + channels])
    gb = None if bias is None else copied(flat[size + channels:])
    return gx, None, gw, gb


def copied(v):
    """A copy of `v` by a primitive the compiler knows allocates (a product): the weight and bias
    gradients outlive the step, and a view or cast of the flat buffer would keep its x.size values
    alive with them, and out of the compiled replay's reused buffers."""
    return ew.multiply(v, 1.0)


@rule(bn.batch_norm_backward)
def _backward(h, out, g, x, stats, weight, eps):
    axes, shape = bn.axes_of(x.ndim), _channel_shape(x)
    size, channels, n = x.size, x.shape[1], float(bn.count(x.shape))
    mean, var = _row(stats, 0, x), _row(stats, 1, x)
    w = None if weight is None else sh.reshape(weight, shape=shape)
    h_gx = sh.reshape(h[:size], shape=tuple(x.shape))
    h_gw = sh.reshape(h[size:size + channels], shape=shape)
    h_gb = sh.reshape(h[size + channels:], shape=shape)
    c = nm.center(x, mean, axes=axes)
    inv_std = 1.0 / ew.sqrt(var + eps)
    # x's gradient r - mean(r), r = normalize_grad(g, c, var, w): back through the centring, then r
    h_r = nm.center(h_gx, nm.mean_over(h_gx, axes), axes=axes)
    d_g, d_c, d_var, d_w = norm_rules._normalize_grad(h_r, None, g, c, var, w, eps, axes)
    # weight's Σ g·c·σ⁻¹ and bias's Σ g
    d_g = d_g + h_gw * c * inv_std + h_gb
    d_c = d_c + h_gw * g * inv_std
    d_var = d_var + h_gw * rd.sum(g * c, axis=axes, keepdims=True) * (-0.5 * inv_std * inv_std * inv_std)
    # c = x - mean(x) and var = mean(c²): x's own statistics
    through_c = d_c + c * (d_var * (2.0 / n))
    d_x = nm.center(through_c, nm.mean_over(through_c, axes), axes=axes)
    d_weight = None if weight is None else sh.reshape(rd.sum(d_w, axis=axes), shape=(channels,))
    return d_g, d_x, None, d_weight
