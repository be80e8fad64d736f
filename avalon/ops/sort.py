"""Sorting and searching: the index-valued primitives (argsort, argpartition, searchsorted, argwhere).

Their results are integer positions, so none carries a gradient; sorted values are a gather with the
positions (`take_along_axis`), whose rule sends each value's gradient back to where it came from.
"""
from ..backend import is_numpy_like, namespace
from .primitive import primitive


@primitive("argsort", differentiable=False)
def argsort(x, axis=-1, kind=None, descending=False):
    """Positions that sort `x` along `axis` (numpy's `kind`; `descending` keeps ties in their original
    order, as a stable descending sort)."""
    xp = namespace(x)
    if not is_numpy_like(xp):
        return xp.argsort(x, axis=axis, descending=descending, stable=True)
    if not descending:
        return xp.argsort(x, axis=axis, kind=kind)
    # Reversed, stably sorted, reversed again: largest first, ties (and NaN's place) as torch's.
    n = x.shape[axis] - 1
    return n - xp.flip(xp.argsort(xp.flip(x, axis), axis=axis, kind="stable"), axis)


@primitive("argpartition", differentiable=False)
def argpartition(x, kth, axis=-1):
    """numpy's argpartition: positions that put the `kth` smallest element(s) in sorted place."""
    return namespace(x).argpartition(x, kth, axis=axis)


@primitive("searchsorted", differentiable=False)
def searchsorted(a, v, side="left"):
    """Where the values `v` would go in the sorted 1-D `a` to keep it sorted."""
    return namespace(a, v).searchsorted(a, v, side=side)


@primitive("argwhere", differentiable=False)
def argwhere(x):
    """The indices of `x`'s non-zero elements, one row each (its length depends on the values, so
    traced code refuses it; it runs on concrete arrays only)."""
    xp = namespace(x)
    if is_numpy_like(xp):
        return xp.argwhere(x)
    return xp.stack(xp.nonzero(x), axis=-1)
