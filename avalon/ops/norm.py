"""The fused normalisation primitives behind batch, layer, group and instance norm.

A normalisation over `axes` is recorded as four steps, each keeping what the next needs:

    mean = mean(x)                       (keepdims over axes)
    c    = center(x, mean)               x - mean
    var  = mean of c·c                   (an einsum: one pass, no temporary)
    y    = normalize(c, var, w, b)       c / sqrt(var + eps) · w + b

The backward pass then reuses `c` instead of recomputing it, and splits as the forward does: the
rule of `normalize` returns the gradient through `c` *and through var* (`normalize_grad`: var is
c's mean square, so it is an operand for speed only and gets no gradient of its own), and the rule
of `center` removes the gradient's mean (the path through `mean`, likewise an operand for speed).
So both contracts must hold: `mean` is x's own mean and `var` c's own mean square over `axes`.

Speed: each primitive allocates one array and works in place on it; the small per-statistic factors
(1/σ, folded with the weight where it is constant along the axes) are computed once.
Large passes run in row blocks on both cores when the process has two threads (threads_split.py):
the elementwise ones bit for bit, the sums over the batch to summation order.
"""
import math

import numpy as np

from ..backend import is_numpy_like, namespace
from . import linalg as la
from . import shape as sh
from . import threads_split
from .primitive import primitive


def _constant_along(v, axes, ndim):
    """True when `v` (None, or broadcast against an ndim array from the right) has length 1 on every
    axis in `axes`: a per-statistic weight (batch and instance norm) rather than a per-element one."""
    if v is None:
        return True
    lead = ndim - v.ndim
    return all(a < lead or v.shape[a - lead] == 1 for a in axes)


def count(shape, axes):
    """How many values each statistic summarises."""
    return math.prod(shape[a] for a in axes)


def _letters(ndim):
    return "abcdefghijklmnopqrstuvwxyz"[:ndim]


def mean_over(x, axes):
    """x's mean over `axes` (keepdims), recorded as one einsum: numpy's einsum sums along an axis
    two to three times faster than its mean (measured), the pairwise summation being what it skips."""
    letters = _letters(x.ndim)
    kept = "".join(letters[i] for i in range(x.ndim) if i not in axes)
    total = la.einsum(x, subscripts=f"{letters}->{kept}")
    return sh.reshape(total, shape=tuple(1 if i in axes else n for i, n in enumerate(x.shape))) \
        * (1.0 / count(x.shape, axes))


def _sum_of_product(a, b, axes):
    """Σ a·b over `axes` (keepdims), for two arrays of one shape: an einsum where the array module
    has one (one pass, no temporary), else a product and a sum."""
    xp = namespace(a, b)
    if not hasattr(xp, "einsum"):
        return xp.sum(a * b, axis=axes, keepdims=True)
    letters = _letters(a.ndim)
    kept = "".join(letters[i] for i in range(a.ndim) if i not in axes)
    spec = f"{letters},{letters}->{kept}"
    if 0 in axes:  # a sum over the batch: the sum of its row blocks' sums, on both cores when large
        total = threads_split.sum_over_rows(lambda a, b: xp.einsum(spec, a, b), a.shape[0], a.nbytes, a, b)
    else:
        total = xp.einsum(spec, a, b)
    return xp.reshape(total, tuple(1 if i in axes else n for i, n in enumerate(a.shape)))


@primitive("center", out=True)
def center(x, mean, axes, out=None):
    """x - mean, where `mean` is x's own mean over `axes` (keepdims). Its rule takes the mean out of
    the gradient (the path through `mean`), so `mean` itself gets none."""
    xp = namespace(x)
    return _by_rows(lambda x, mean, out: x - mean if out is None else xp.subtract(x, mean, out=out),
                    out, (x, mean), x, mean)


@primitive("normalize", out=True)
def normalize(c, var, weight, bias, eps, axes, out=None):
    """The centred `c` divided by sqrt(var + eps), then scaled by `weight` and shifted by `bias` (each
    broadcastable to c, or None); `var` is c's mean square over `axes` (keepdims)."""
    xp = namespace(c)
    inv_std = 1.0 / xp.sqrt(var + eps)
    shapes = [inv_std.shape] + [v.shape for v in (weight, bias) if v is not None]
    if math.prod(np.broadcast_shapes(*shapes)) < math.prod(c.shape):
        # σ⁻¹ and the weight fold into one small scale (batch, group and instance norm): two passes
        first, then = (inv_std if weight is None else inv_std * weight), None
    else:
        # the weight runs along the normalised axes (layer norm): a folded scale would be as large as c
        first, then = inv_std, weight

    def rows(c, first, then, bias, out):
        y = _product(xp, c, first, out)
        if then is not None:
            y = _apply(xp, y, None, then)
        return y if bias is None else _apply(xp, y, bias, None)

    return _by_rows(rows, out, (c, first), c, first, then, bias)


@primitive("normalize_grad", out=True)
def normalize_grad(g, c, var, weight, eps, axes, out=None):
    """The gradient of `normalize` in its centred input `c`, through c and through var:
    σ⁻¹·(gy - c·σ⁻²·mean(gy·c)) with gy = g·weight and σ⁻¹ = 1/sqrt(var + eps).

    (The mean of this gradient is removed by `center`'s rule.)
    """
    xp = namespace(g, c)
    inv_std = 1.0 / xp.sqrt(var + eps)
    n = 1.0 / count(c.shape, axes)
    if _constant_along(weight, axes, c.ndim):
        # batch and instance norm: the weight is a per-statistic factor and joins σ⁻¹ at the end
        factor = inv_std if weight is None else inv_std * weight
        k = -(inv_std * inv_std * n) * _sum_of_product(g, c, axes)

        def rows(c, k, g, factor, out):
            return _apply(xp, _apply(xp, _product(xp, c, k, out), g, None), None, factor)

        return _by_rows(rows, out, (c, k), c, k, g, factor)
    scale_shape = np.broadcast_shapes(inv_std.shape, weight.shape)  # σ⁻¹·weight made only where small
    if math.prod(scale_shape) < math.prod(c.shape):
        # group norm: σ⁻¹·weight is small (constant along the positions); sum g·c along those first
        scale = inv_std * weight
        constant = tuple(a for a in axes if scale.shape[a] == 1)
        m = xp.sum(_sum_of_product(g, c, constant) * weight, axis=axes, keepdims=True) * n
        out = _product(xp, c, -(inv_std * inv_std * inv_std) * m, out)
        return _apply(xp, out, g * scale, None)
    # layer norm: the weight runs along the normalised axes, so g·weight is as large as c
    gy = g * weight
    out = _product(xp, c, -(inv_std * inv_std * n) * _sum_of_product(gy, c, axes), out)
    out = _apply(xp, out, gy, None)
    return _apply(xp, out, None, inv_std)


def _by_rows(part, out, result_of, *operands):
    """`part(*operands, out=out)` (an elementwise pass writing `out`, or returning a fresh array when
    `out` is None), in row blocks on both cores when large (threads_split.py). The result is that of
    `result_of`'s two arrays' product or difference, whose shape and dtype make `out` when none is given."""
    if out is None:
        a, b = result_of
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or \
                threads_split.workers(np, a.shape[0] if a.ndim else 0, a.nbytes) == 1:
            return part(*operands, out=None)
        out = np.empty(np.broadcast_shapes(a.shape, b.shape), np.result_type(a, b))
    return threads_split.elementwise(out, part, *operands)


def _product(xp, a, b, out):
    """a * b, into `out` when the compiled replay hands one over (a dead buffer of the result's shape)."""
    return a * b if out is None else xp.multiply(a, b, out=out)


def _apply(xp, y, add, multiply):
    """y + add or y * multiply, in place where the array module allows it (y is a fresh array)."""
    if is_numpy_like(xp):
        if add is not None:
            y += add
        else:
            y *= multiply
        return y
    return y + add if add is not None else y * multiply
