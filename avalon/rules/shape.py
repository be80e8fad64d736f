"""Rules of the shape primitives and of indexing."""
import numpy as np

from .. import numpy_api as npa
from ..ops import index as ix
from ..ops import reduce as rd
from ..ops import shape as sh
from .registry import rule

rule(sh.reshape)(lambda g, out, x, shape: (sh.reshape(g, shape=x.shape),))
rule(sh.transpose)(lambda g, out, x, axes:
                   (sh.transpose(g, axes=tuple(np.argsort([a % x.ndim for a in axes]).tolist())),))
rule(sh.broadcast_to)(lambda g, out, x, shape: (rd.sum_to(g, shape=x.shape),))
rule(sh.flip)(lambda g, out, x, axis: (sh.flip(g, axis=axis),))


@rule(sh.concatenate)
def _concatenate(g, out, *xs, axis=0):
    bounds = np.cumsum([0] + [x.shape[axis] for x in xs]).tolist()
    return tuple(npa.slice_axis(g, axis, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]))


@rule(sh.pad)
def _pad(g, out, x, widths, value=0.0):
    key = tuple(slice(a, a + n) for n, (a, _) in zip(x.shape, widths))
    return (ix.getitem(g, key=key),)


@rule(sh.tile)
def _tile(g, out, x, reps):
    interleaved = tuple(v for r, n in zip(reps, x.shape) for v in (r, n))
    summed = rd.sum(sh.reshape(g, shape=interleaved), axis=tuple(range(0, 2 * x.ndim, 2)))
    return (summed,)


@rule(sh.repeat)
def _repeat(g, out, x, repeats, axis):
    axis = axis % x.ndim
    split = tuple(x.shape[:axis]) + (x.shape[axis], repeats) + tuple(x.shape[axis + 1:])
    return (rd.sum(sh.reshape(g, shape=split), axis=axis + 1),)


@rule(ix.getitem)
def _getitem(g, out, x, *index_arrays, key):
    return (ix.scatter_add(g, *index_arrays, key=key, shape=x.shape),) + (None,) * len(index_arrays)


@rule(ix.scatter_add)
def _scatter_add(g, out, values, *index_arrays, key, shape):
    return (ix.getitem(g, *index_arrays, key=key),) + (None,) * len(index_arrays)


@rule(ix.scatter_sum)
def _scatter_sum(g, out, *parts, keys, shape):
    return tuple(g if key == () else ix.getitem(g, key=key) for key in keys)
