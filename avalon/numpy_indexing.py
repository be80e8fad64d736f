"""numpy's indexing, sorting and searching functions on arrays and tracers.

Index arguments may be what numpy accepts: arrays, tracers, lists, tuples and ints (`x[[0, 2]]`,
`np.take(x, [3, 1], axis=1)`). Constant ones become integer arrays, constants of the tape; a list that
holds traced values is stacked into a traced index. Picking values is one `getitem` (its gradient a
`scatter_add`); sorted values are the values picked at `argsort`'s positions, so their gradient goes
back to where each came from. What has a data-dependent length (`nonzero`, `argwhere`, a traced
`compress` condition) runs on concrete arrays and is refused on traced ones.
"""
import operator

import numpy as np

from . import axes as dimcheck
from . import numpy_api as npa
from .errors import ShapeError
from .numpy_api import _refuse, _refuse_keywords, arraylike, implements
from .ops import elementwise as ew
from .ops import index as ix
from .ops import sort as so


def index_array(x):
    """An index argument as an array: lists, tuples and numbers become a constant integer array (an
    empty list too), a list holding traced values a stacked traced array; arrays and tracers stay."""
    if arraylike(x):
        return x
    if isinstance(x, (list, tuple)) and any(arraylike(v) or isinstance(v, (list, tuple)) for v in x):
        parts = [index_array(v) for v in x]
        if any(_traced(p) for p in parts):
            return npa.stack(parts)
    array = np.asarray(x)
    return array.astype(np.intp) if array.size == 0 else array


def _traced(x):
    return getattr(type(x), "_avalon_tracer", False)


def index_key(a, key):
    """Split an index key into (static key with `Slot`s, index-array operands). As in numpy, a list
    or a tuple inside the key is an index array, and a constant boolean mask stands for its
    `nonzero()` positions."""
    key = key if isinstance(key, tuple) else (key,)
    static, arrays = [], []
    for k in key:
        if isinstance(k, (list, tuple)) or (arraylike(k) and not isinstance(k, np.generic)):
            k = index_array(k)
            if k.dtype == bool and not _traced(k):  # a traced mask is refused by Tracer.__getitem__
                for part in np.nonzero(np.asarray(k)):
                    static.append(ix.Slot(len(arrays)))
                    arrays.append(part)
                continue
            static.append(ix.Slot(len(arrays)))
            arrays.append(k)
        else:
            static.append(k)
    return tuple(static), arrays


def getitem(a, key):
    """a[key] with numpy's basic and advanced indexing (index arrays become operands of the call)."""
    static, arrays = index_key(a, key)
    return ix.getitem(a, *_in_range(a, static, arrays), key=static)


def _in_range(a, static, arrays):
    """The index arrays of a key, each checked at every call against the axis of `a` it indexes
    (negative ones count from the end, as in numpy and torch)."""
    def width(k):  # how many axes of `a` an entry of the key consumes
        if isinstance(k, ix.Slot):
            index = arrays[k.i]
            return index.ndim if getattr(index, "dtype", None) == bool else 1
        return 0 if k is None or k is Ellipsis else 1

    widths = [width(k) for k in static]
    checked, axis = list(arrays), 0
    for k, w in zip(static, widths):
        if k is Ellipsis:
            axis += a.ndim - sum(widths)
        elif isinstance(k, ix.Slot) and w == 1 and axis < a.ndim:
            checked[k.i] = ix.in_range(arrays[k.i], a.shape[axis], "indexing", negative=True)
        axis += w
    return checked


def _in_bounds(indices, n, mode):
    """numpy's `mode` for indices past an axis of length `n`: 'raise' (an error), 'wrap' (modulo n)
    or 'clip' (to [0, n - 1]; negative indices too)."""
    if mode in (None, "raise"):
        return indices
    if mode == "wrap":
        return ew.remainder(indices, n)
    if mode == "clip":
        return ew.clip(indices, 0, n - 1)
    raise ShapeError(f"mode={mode!r}: numpy's modes are 'raise', 'wrap' and 'clip'")


@implements(np.take)
def take(a, indices, axis=None, out=None, mode="raise"):
    _refuse_keywords("take", out)
    if axis is None:
        a, axis = npa.ravel(a), 0
    axis = dimcheck.axis(axis, a.ndim, "take", a.shape)
    indices = _in_bounds(index_array(indices), a.shape[axis], mode)
    if mode in (None, "raise"):  # 'wrap' and 'clip' made them fit
        indices = ix.in_range(indices, a.shape[axis], "take", negative=True)
    return ix.getitem(a, indices, key=(slice(None),) * axis + (ix.Slot(0),))


@implements(np.take_along_axis)
def take_along_axis(arr, indices, axis=-1):
    indices = index_array(indices)
    if axis is None:
        arr, axis = npa.ravel(arr), 0
    if indices.ndim != arr.ndim:
        raise ShapeError(f"take_along_axis: indices have {indices.ndim} dimensions, the array {arr.ndim}",
                         fix="give the indices as many dimensions as the array (length 1 where they broadcast)")
    indices = ix.in_range(indices, arr.shape[axis], "take_along_axis", negative=True)
    return gather_along(arr, indices, axis, arr.shape)


def gather_along(arr, indices, axis, grid):
    """arr indexed by `indices` along `axis` and by aranges of `grid` lengths along the other axes,
    which broadcast against `indices` (numpy's take_along_axis: arr's lengths; torch's gather:
    index's). One getitem, so one scatter_add back."""
    operands, key = along_axis(arr, index_array(indices), axis, grid)
    return ix.getitem(arr, *operands, key=key)


def along_axis(arr, indices, axis, grid):
    """(index operands, key) that pick `indices` along `axis` and arange(grid[d]) along each other
    axis d: the key of gather and of its adjoint, scatter-add."""
    axis = axis % arr.ndim
    xp = npa._value_namespace(arr)
    operands, key = [index_array(indices)], []
    for dim in range(arr.ndim):
        if dim == axis:
            key.append(ix.Slot(0))
            continue
        grid_shape = [1] * arr.ndim
        grid_shape[dim] = grid[dim]
        key.append(ix.Slot(len(operands)))
        operands.append(xp.reshape(xp.arange(grid[dim]), tuple(grid_shape)))
    return operands, tuple(key)


@implements(np.choose)
def choose(a, choices, out=None, mode="raise"):
    """numpy's choose: out[i] = choices[a[i]][i] (all broadcast); the gradient goes to the choices."""
    _refuse_keywords("choose", out)
    a = index_array(a)
    if mode in (None, "raise"):  # numpy refuses negative choices ('wrap' and 'clip' make them fit)
        a = ix.in_range(a, len(choices), "choose")
    choices = [choices[i] for i in range(len(choices))] if arraylike(choices) else list(choices)
    dtype = np.result_type(*(c.dtype if arraylike(c) else c for c in choices))  # numbers as numpy: weak
    choices = [npa.astype(c, dtype, copy=False) if arraylike(c) else np.asarray(c, dtype) for c in choices]
    shape = np.broadcast_shapes(tuple(a.shape), *(tuple(c.shape) for c in choices))
    stacked = npa.stack([npa.broadcast_to(c, shape) for c in choices])
    index = npa.broadcast_to(_in_bounds(a, len(choices), mode), shape)
    return npa.squeeze(take_along_axis(stacked, npa.expand_dims(index, 0), 0), 0)


@implements(np.compress)
def compress(condition, a, axis=None, out=None):
    """numpy's compress: the slices of `a` along `axis` where the constant `condition` holds."""
    _refuse_keywords("compress", out)
    if _traced(condition):
        return _data_dependent("np.compress with a traced condition", "the number of kept slices",
                               lambda: compress(npa._concrete(condition), npa._concrete(a), axis))
    return take(a, np.flatnonzero(np.asarray(condition)), axis)


# sorting and searching

def _flat(a, axis):
    """numpy's axis=None: the flattened array, along its only axis."""
    return (npa.ravel(a), 0) if axis is None else (a, dimcheck.axis(axis, a.ndim, "axis", a.shape))


@implements(np.argsort)
def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    _refuse_keywords("argsort", **({} if order is None else {"order": order}))
    a, axis = _flat(a, axis)
    return so.argsort(a, axis=axis, kind="stable" if stable else kind)


@implements(np.sort)
def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    a, axis = _flat(a, axis)
    return take_along_axis(a, argsort(a, axis, kind, order, stable=stable), axis)


def _kth(kth):
    return operator.index(kth) if np.ndim(kth) == 0 else tuple(operator.index(k) for k in kth)


@implements(np.argpartition)
def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    _refuse_keywords("argpartition", **({} if order is None else {"order": order}))
    a, axis = _flat(a, axis)
    return so.argpartition(a, kth=_kth(kth), axis=axis)


@implements(np.partition)
def partition(a, kth, axis=-1, kind="introselect", order=None):
    a, axis = _flat(a, axis)
    return take_along_axis(a, argpartition(a, kth, axis, kind, order), axis)


@implements(np.searchsorted)
def searchsorted(a, v, side="left", sorter=None):
    if sorter is not None:
        a = take(a, sorter)
    return so.searchsorted(a, v if arraylike(v) or np.ndim(v) == 0 else np.asarray(v), side=side)


# data-dependent lengths: concrete arrays only

def _data_dependent(construct, what, fallback):
    return _refuse(f"{construct} in traced code",
                   f"{what} depends on the values, so the shapes after it would too (a replay with "
                   "other data would need other shapes)",
                   "keep the shape: a mask multiplied in, or np.where(mask, x, 0), then reduce; or "
                   "compute the indices outside the traced function and pass them in", fallback)


@implements(np.argwhere)
def argwhere(a):
    """The indices of the non-zero elements, one row each (torch's `nonzero()`)."""
    if _traced(a):
        return _data_dependent("np.argwhere / x.nonzero() of a traced array", "the number of non-zero "
                               "elements", lambda: so.argwhere(npa._concrete(a)))
    return so.argwhere(a)


@implements(np.nonzero)
def nonzero(a):
    if npa.ndim(a) == 0:
        raise ShapeError("nonzero of a 0-d array (numpy refuses it too)", fix="use np.atleast_1d(x).nonzero()")
    rows = argwhere(a)
    return tuple(rows[:, i] for i in range(npa.ndim(a)))


@implements(np.flatnonzero)
def flatnonzero(a):
    return nonzero(npa.ravel(a))[0]
