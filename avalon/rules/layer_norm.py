"""Rules of the fused layer-norm primitives (avalon/ops/layer_norm.py), written with primitives so they
differentiate again; they follow batch norm's (rules/batch_norm.py) with the statistics per row over
the trailing k axes and the weight along those axes.

`layer_norm_apply`'s rule is one `layer_norm_backward` call, whose flat result holds x's gradient (a
view) and weight's and bias's (copied out: `batch_norm.copied`). `layer_norm_backward`'s rule is that
of the same gradient written with the decomposed primitives of ops/norm.py (c = x - mean, r =
normalize_grad(g, c, var, weight), x's gradient = r - mean(r), weight's Σ g·c·σ⁻¹ and bias's Σ g over
the leading axes), so second derivatives follow the decomposed path's rules.
"""
from ..ops import elementwise as ew
from ..ops import layer_norm as ln
from ..ops import norm as nm
from ..ops import reduce as rd
from ..ops import shape as sh
from . import norm as norm_rules
from .batch_norm import copied
from .registry import rule


def _trailing(x, k):
    return tuple(range(x.ndim - k, x.ndim))


def _row(a, i, x, k):
    """Row i of a (2, *lead) statistics array (or its cotangent), shaped (*lead, 1, …) to broadcast over x."""
    return sh.reshape(a[i], shape=tuple(x.shape[:x.ndim - k]) + (1,) * k)


@rule(ln.layer_norm_stats)
def _stats(h, out, x, k):
    # mean: each value's share 1/D; biased var: 2·(x - mean)/D (the centred values sum to zero)
    d = float(ln.size_of(x.shape, k))
    centred = nm.center(x, _row(out, 0, x, k), axes=_trailing(x, k))
    return (_row(h, 0, x, k) * (1.0 / d) + centred * (_row(h, 1, x, k) * (2.0 / d)),)


@rule(ln.layer_norm_apply)
def _apply(g, out, x, stats, weight, bias, eps, k):
    flat = ln.layer_norm_backward(g, x, stats, weight, eps=eps, k=k)
    size, d, shape = x.size, ln.size_of(x.shape, k), tuple(x.shape[x.ndim - k:])
    gx = sh.reshape(flat[:size], shape=tuple(x.shape))
    gw = None if weight is None else sh.reshape(copied(flat[size:size + d]), shape=shape)
    gb = None if bias is None else sh.reshape(copied(flat[size + d:]), shape=shape)
    return gx, None, gw, gb


@rule(ln.layer_norm_backward)
def _backward(h, out, g, x, stats, weight, eps, k):
    axes, lead = _trailing(x, k), tuple(range(x.ndim - k))
    size, d, shape = x.size, ln.size_of(x.shape, k), tuple(x.shape[x.ndim - k:])
    mean, var = _row(stats, 0, x, k), _row(stats, 1, x, k)
    h_gx = sh.reshape(h[:size], shape=tuple(x.shape))
    h_gw = sh.reshape(h[size:size + d], shape=shape)
    h_gb = sh.reshape(h[size + d:], shape=shape)
    c = nm.center(x, mean, axes=axes)
    inv_std = 1.0 / ew.sqrt(var + eps)
    # x's gradient r - mean(r), r = normalize_grad(g, c, var, weight): back through the centring, then r
    h_r = nm.center(h_gx, nm.mean_over(h_gx, axes), axes=axes)
    d_g, d_c, d_var, d_w = norm_rules._normalize_grad(h_r, None, g, c, var, weight, eps, axes)
    # weight's Σ g·c·σ⁻¹ and bias's Σ g over the rows; h_gw runs along the normalised axes, so it stays
    # inside var's sum (batch norm's is constant along them)
    d_g = d_g + h_gw * c * inv_std + h_gb
    d_c = d_c + h_gw * g * inv_std
    d_var = d_var + rd.sum(h_gw * g * c, axis=axes, keepdims=True) * (-0.5 * inv_std * inv_std * inv_std)
    # c = x - mean(x) and var = mean(c²): x's own statistics
    through_c = d_c + c * (d_var * (2.0 / d))
    d_x = nm.center(through_c, nm.mean_over(through_c, axes), axes=axes)
    d_weight = None if weight is None else (rd.sum(d_w, axis=lead) if lead else d_w)
    return d_g, d_x, None, d_weight
