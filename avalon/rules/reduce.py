"""Rules of the reductions and scans."""
import numpy as np

from .. import numpy_api as npa
from ..ops import elementwise as ew
from ..ops import reduce as rd
from ..ops import shape as sh
from .registry import rule


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


@rule(rd.prod)
def _prod(g, out, x, axis=None, keepdims=False):
    return (expand_like(g * out, x, axis, keepdims) / x,)


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
rule(rd.cumprod)(lambda g, out, x, axis: (_reverse_cumsum(g * out, axis) / x,))
