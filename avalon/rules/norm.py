"""Rules of the normalisation primitives, written with primitives so they can be differentiated again.

With σ⁻¹ = 1/sqrt(var + eps) and gy = g·weight, `normalize`'s gradient in its centred input, through
c and through var = mean(c²), is σ⁻¹·(gy - c·σ⁻²·mean(gy·c)) (`normalize_grad`); `center` then removes
its mean, which is the path through the mean. The weight gets Σ g·c·σ⁻¹ over the axes it is
broadcast along (one einsum), the bias g (the engine sums it down to its shape).
"""
from ..ops import elementwise as ew
from ..ops import linalg as la
from ..ops import norm as nm
from ..ops import reduce as rd
from ..ops import shape as sh
from .registry import rule


@rule(nm.center)
def _center(g, out, x, mean, axes):
    return nm.center(g, nm.mean_over(g, axes), axes=axes), None


@rule(nm.normalize)
def _normalize(g, out, c, var, weight, bias, eps, axes):
    gc = nm.normalize_grad(g, c, var, weight, eps=eps, axes=axes)
    gw = None if weight is None else _weight_grad(g, c, var, weight, eps, axes)
    return gc, None, gw, None if bias is None else g


def _weight_grad(g, c, var, weight, eps, axes):
    """Σ g·c·σ⁻¹ over the axes `weight` is broadcast along, without storing a product as large as c:
    the normalised axes the weight is constant along are summed first (one einsum: the rest is small);
    when there are none (layer norm) σ⁻¹ joins the einsum."""
    letters = "abcdefghijklmnopqrstuvwxyz"[:c.ndim]
    lead = c.ndim - weight.ndim
    along = [i for i in range(lead, c.ndim) if weight.shape[i - lead] != 1]
    inv_std = 1.0 / ew.sqrt(var + eps)
    first = [i for i in axes if i not in along]
    kept = [i for i in range(c.ndim) if i not in first]
    statistic = [i for i in range(c.ndim) if i not in axes]
    word = "".join  # the einsum subscripts of a list of axes
    if first:
        t = la.einsum(g, c, subscripts=f"{letters},{letters}->{word(letters[i] for i in kept)}")
        t = t * sh.reshape(inv_std, shape=tuple(c.shape[i] if i in statistic else 1 for i in kept))
        summed = tuple(k for k, i in enumerate(kept) if i not in along)
        t = rd.sum(t, axis=summed) if summed else t
    else:
        inv_std = sh.reshape(inv_std, shape=tuple(c.shape[i] for i in statistic))
        t = la.einsum(g, c, inv_std, subscripts=f"{letters},{letters},{word(letters[i] for i in statistic)}"
                                                f"->{word(letters[i] for i in along)}")
    return sh.reshape(t, shape=tuple(weight.shape))


@rule(nm.normalize_grad)
def _normalize_grad(h, out, g, c, var, weight, eps, axes):
    # out = σ⁻¹·gy - σ⁻³·c·m with m = mean(gy·c): linear and self-adjoint in gy, so gy's gradient is the
    # same operation applied to h; c and var enter through σ⁻¹, m and the product c·m
    inv_std = 1.0 / ew.sqrt(var + eps)
    inv_cube = inv_std * inv_std * inv_std
    through_gy = nm.normalize_grad(h, c, var, None, eps=eps, axes=axes)
    gy = g if weight is None else g * weight
    m = rd.mean(gy * c, axis=axes, keepdims=True)
    hc = rd.mean(h * c, axis=axes, keepdims=True)
    gc = -inv_cube * (h * m + gy * hc)
    count = float(nm.count(c.shape, axes))
    gvar = (-0.5 * inv_cube) * rd.sum(h * gy, axis=axes, keepdims=True) \
        + (1.5 * count) * inv_cube * inv_std * inv_std * m * hc
    if weight is None:
        return through_gy, gc, gvar, None
    return through_gy * weight, gc, gvar, through_gy * g
