"""Rules of the reductions and scans."""
import numpy as np

from .. import numpy_api as npa
from ..ops import elementwise as ew
from ..ops import reduce as rd
from ..ops import shape as sh
from .registry import array_module, rule


def expand_like(g, x, axis, keepdims):
    """A reduced gradient broadcast back to `x`'s shape."""
    if not keepdims:
        axes = rd.normalize_axis(axis, x.ndim)
        g = sh.reshape(g, shape=tuple(1 if i in axes else n for i, n in enumerate(x.shape)))
    return npa.broadcast_to(g, x.shape)


def _count(x, axis):
    return int(np.prod([x.shape[a] for a in rd.normalize_axis(axis, x.ndim)]))


rule(rd.sum)(lambda g, out, x, axis=None, keepdims=False: (expand_like(g, x, axis, keepdims),))
rule(rd.mean)(lambda g, out, x, axis=None, keepdims=False:
              (expand_like(g, x, axis, keepdims) / _count(x, axis),))
rule(rd.sum_to)(lambda g, out, x, shape: (npa.broadcast_to(g, x.shape),))


def _zero_one(x):
    xp = array_module(x)
    return xp.zeros((), dtype=x.dtype), xp.ones((), dtype=x.dtype)


@rule(rd.prod)
def _prod(g, out, x, axis=None, keepdims=False):
    # d prod / d x_i is the product of the other elements; out / x_i only where no element is 0.
    # With one zero in a slice only that element gets a gradient (the product of the rest); with two
    # or more every element's "other elements" include a zero.
    zero, one = _zero_one(x)
    is_zero = ew.equal(x, zero)
    nonzero_x = ew.where(is_zero, one, x)
    zeros = rd.sum(ew.astype(is_zero, dtype=x.dtype), axis=axis, keepdims=True)
    others = rd.prod(nonzero_x, axis=axis, keepdims=True)
    share = ew.where(ew.equal(zeros, zero), others / nonzero_x,
                     ew.where(ew.logical_and(is_zero, ew.equal(zeros, one)), others, zero))
    return (expand_like(g, x, axis, keepdims) * share,)


def _extreme(g, out, x, axis=None, keepdims=False):
    # Ties share the gradient equally, as torch's amax/amin.
    hit = ew.astype(ew.equal(x, expand_like(out, x, axis, keepdims)), dtype=g.dtype)
    share = hit / rd.sum(hit, axis=axis, keepdims=True)
    return (expand_like(g, x, axis, keepdims) * share,)


rule(rd.max)(_extreme)
rule(rd.min)(_extreme)


@rule(rd.var)
def _var(g, out, x, axis=None, keepdims=False, ddof=0):
    centred = x - rd.mean(x, axis=axis, keepdims=True)
    return (expand_like(g, x, axis, keepdims) * centred * (2.0 / (_count(x, axis) - ddof)),)


@rule(rd.logsumexp)
def _logsumexp(g, out, x, axis=None, keepdims=False):
    return (expand_like(g, x, axis, keepdims) * ew.exp(x - expand_like(out, x, axis, keepdims)),)


def _reverse_cumsum(g, axis):
    return sh.flip(rd.cumsum(sh.flip(g, axis=(axis,)), axis=axis), axis=(axis,))


rule(rd.cumsum)(lambda g, out, x, axis: (_reverse_cumsum(g, axis),))


@rule(rd.cumprod)
def _cumprod(g, out, x, axis):
    # d out_k / d x_i = prod_{j<=k, j!=i} x_j (k >= i). Before a slice's first zero x_i != 0, so this
    # is out_k / x_i; after the first zero every such product contains it, so 0; at the first zero z,
    # it is the running product of x with x_z replaced by 1.
    zero, one = _zero_one(x)
    is_zero = ew.equal(x, zero)
    zeros_so_far = rd.cumsum(ew.astype(is_zero, dtype=x.dtype), axis=axis)
    before = ew.equal(zeros_so_far, zero)
    first_zero = ew.logical_and(is_zero, ew.equal(zeros_so_far, one))
    before_part = _reverse_cumsum(g * out, axis) / ew.where(before, x, one)
    at_zero_part = _reverse_cumsum(g * rd.cumprod(ew.where(first_zero, one, x), axis=axis), axis)
    return (ew.where(before, before_part, ew.where(first_zero, at_zero_part, zero)),)
