"""numpy's functions, written with Avalon primitives: what `np.sum(tracer)` and friends run.

Each function here works on plain arrays and tracers alike and keeps numpy's signature and
semantics. `HANDLED` maps numpy functions to them (used by `Tracer.__array_function__`); ufuncs are in
`avalon.numpy_ufuncs`. A keyword that would change the meaning in a way no rule covers (`out=`,
`where=`, `initial=` …) is refused with `UnsupportedConstruct` rather than ignored.
"""
import builtins
import operator

import numpy as np

from . import axes as dimcheck
from .backend import is_array, namespace
from .errors import ShapeError
from .ops import elementwise as ew
from .ops import index as ix
from .ops import reduce as rd
from .ops import shape as sh

HANDLED = {}


def implements(*numpy_functions):
    """Decorator: `fn` is what `numpy_functions` run on tracers (its docstring defaults to naming them)."""
    def register(fn):
        for f in numpy_functions:
            HANDLED[f] = fn
        if not fn.__doc__:
            names = " / ".join(f"np{f.__module__[5:]}.{f.__name__}" for f in numpy_functions)
            fn.__doc__ = f"{names} on arrays and tracers, with numpy's signature and meaning."
        return fn

    return register


def _user_line():
    from .tracing import user_location

    return user_location()


def _refuse(construct, why, fix, fallback=lambda: None):
    from .tracing.context import refuse

    return refuse(construct, why, fix, fallback)


def _refuse_keywords(name, out=None, where=True, **unused):
    """Refuse what traced code cannot do: write into `out=`, mask with `where=`, or any keyword in
    `unused` that numpy would act on (rather than silently ignoring it)."""
    if out is not None:
        _refuse(f"np.{name}(..., out=...) writing into an array",
                "in-place writes into an array change values other recorded operations already read",
                f"use the returned value: `y = np.{name}(...)`")
    if where is not True:
        _refuse(f"np.{name}(..., where=...) in traced code", f"the rule of np.{name} has no mask",
                f"select afterwards: `np.where(mask, x, fill)`, then np.{name}")
    for key in unused:
        _refuse(f"np.{name}(..., {key}=...) in traced code",
                f"Avalon's version of np.{name} has no rule for {key}=",
                "leave the keyword out, or compute the same thing with functions that have rules")


def _axes(axis, a, who):
    """`axis` (None, an int or a tuple) checked against `a`'s dimensions and made non-negative."""
    return dimcheck.axes(axis, a.ndim, who, a.shape)


def _cast(x, dtype):
    return x if dtype is None or np.dtype(dtype) == x.dtype else ew.astype(x, dtype=np.dtype(dtype))


# reductions

def _reducer(prim, name):
    """sum, mean, prod: numpy's signature takes a `dtype` to compute in."""
    def reduce(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
        _refuse_keywords(name, out, **kw)
        return prim(_cast(a, dtype), axis=_axes(axis, a, name), keepdims=keepdims)

    reduce.__name__ = reduce.__qualname__ = name
    return reduce


def _selecting_reducer(prim, name):
    """max, min, any, all: the result is one of the input's values (or a bool), so there is no `dtype`."""
    def reduce(a, axis=None, out=None, keepdims=False, **kw):
        _refuse_keywords(name, out, **kw)
        return prim(a, axis=_axes(axis, a, name), keepdims=keepdims)

    reduce.__name__ = reduce.__qualname__ = name
    return reduce


sum = implements(np.sum)(_reducer(rd.sum, "sum"))
mean = implements(np.mean)(_reducer(rd.mean, "mean"))
prod = implements(np.prod)(_reducer(rd.prod, "prod"))
max = implements(np.max, np.amax)(_selecting_reducer(rd.max, "max"))
min = implements(np.min, np.amin)(_selecting_reducer(rd.min, "min"))
any = implements(np.any)(_selecting_reducer(rd.any, "any"))
all = implements(np.all)(_selecting_reducer(rd.all, "all"))


@implements(np.argmax)
def argmax(a, axis=None, out=None, keepdims=False):
    _refuse_keywords("argmax", out)
    return rd.argmax(a, axis=_axes(axis, a, "argmax"), keepdims=keepdims)


@implements(np.argmin)
def argmin(a, axis=None, out=None, keepdims=False):
    _refuse_keywords("argmin", out)
    return rd.argmin(a, axis=_axes(axis, a, "argmin"), keepdims=keepdims)


@implements(np.var)
def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    ddof = kw.pop("correction", ddof)
    _refuse_keywords("var", out, **kw)
    return rd.var(_cast(a, dtype), axis=_axes(axis, a, "var"), keepdims=keepdims, ddof=ddof)


@implements(np.std)
def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    return ew.sqrt(var(a, axis, dtype, out, ddof, keepdims, **kw))


def _accumulator(prim, name):
    """cumsum, cumprod: with no `axis`, numpy accumulates over the flattened array."""
    def accumulate(a, axis=None, dtype=None, out=None):
        _refuse_keywords(name, out)
        a = _cast(a, dtype)
        if axis is None:
            a, axis = ravel(a), 0
        return prim(a, axis=dimcheck.axis(axis, a.ndim, name, a.shape))

    accumulate.__name__ = accumulate.__qualname__ = name
    return accumulate


cumsum = implements(np.cumsum)(_accumulator(rd.cumsum, "cumsum"))
cumprod = implements(np.cumprod)(_accumulator(rd.cumprod, "cumprod"))


def logsumexp(a, axis=None, keepdims=False):
    """log(sum(exp(a))) over `axis`, stable for large values."""
    return rd.logsumexp(a, axis=_axes(axis, a, "logsumexp"), keepdims=keepdims)


# shapes

@implements(np.shape)
def shape(a):
    return tuple(a.shape)


@implements(np.ndim)
def ndim(a):
    return len(getattr(a, "shape", ()))


@implements(np.result_type)
def result_type(*arrays_and_dtypes):
    return np.result_type(*(np.dtype(a.dtype) if arraylike(a) else a for a in arrays_and_dtypes))


@implements(np.size)
def size(a, axis=None):
    return int(np.prod(a.shape)) if axis is None else a.shape[axis]


@implements(np.reshape)
def reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    shape = dimcheck.new_shape(newshape if newshape is not None else shape, a.shape)
    order = _layout(a, order)
    if order == "F":  # read and write in Fortran order: the C-order reshape of the reversed axes
        return transpose(reshape(transpose(a), shape[::-1]))
    return a if tuple(a.shape) == shape else sh.reshape(a, shape=shape)


def _layout(a, order):
    """numpy's `order` as 'C' or 'F'. 'A' and 'K' follow the memory layout: F for a Fortran-ordered
    array, else C (a traced array has no layout of its own: C)."""
    if order in ("A", "K"):
        return "F" if is_array(a) and a.flags.f_contiguous and not a.flags.c_contiguous else "C"
    if order not in ("C", "F"):
        raise ShapeError(f"order={order!r}: numpy's orders are 'C', 'F', 'A' and 'K'")
    return order


@implements(np.ravel)
def ravel(a, order="C"):
    return reshape(a, (-1,), order)


@implements(np.resize)
def resize(a, new_shape):
    """numpy's resize: the values repeated in C order until they fill `new_shape`."""
    new_shape = (new_shape,) if isinstance(new_shape, int) else tuple(new_shape)
    total, flat = int(np.prod(new_shape)), ravel(a)
    if total == 0 or flat.shape[0] == 0:
        return zeros_like(a, shape=new_shape)
    copies = -(-total // flat.shape[0])
    whole = concatenate([flat] * copies) if copies > 1 else flat
    return reshape(slice_axis(whole, 0, 0, total), new_shape)


@implements(np.transpose)
def transpose(a, axes=None):
    axes = tuple(reversed(range(a.ndim))) if axes is None else dimcheck.axes(tuple(axes), a.ndim, "transpose", a.shape)
    return a if axes == tuple(range(a.ndim)) else sh.transpose(a, axes=axes)


@implements(np.permute_dims)
def permute_dims(a, axes=None):
    return transpose(a, axes)


@implements(np.matrix_transpose)
def matrix_transpose(x):
    return swapaxes(x, -1, -2)


@implements(np.swapaxes)
def swapaxes(a, axis1, axis2):
    axes = list(range(a.ndim))
    axis1, axis2 = dimcheck.axes((axis1, axis2), a.ndim, "transpose", a.shape)
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(a, axes)


@implements(np.moveaxis)
def moveaxis(a, source, destination):
    source = [source] if isinstance(source, int) else list(source)
    destination = [destination] if isinstance(destination, int) else list(destination)
    source = list(dimcheck.axes(source, a.ndim, "movedim", a.shape))
    destination = list(dimcheck.axes(destination, a.ndim, "movedim", a.shape))
    order = [n for n in range(a.ndim) if n not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return transpose(a, order)


@implements(np.expand_dims)
def expand_dims(a, axis):
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    axis = sorted(dimcheck.axes(axis, a.ndim, "unsqueeze", a.shape, new=len(axis)))
    shape = list(a.shape)
    for ax in axis:
        shape.insert(ax, 1)
    return sh.reshape(a, shape=tuple(shape))


@implements(np.squeeze)
def squeeze(a, axis=None):
    if axis is None:
        axis = tuple(i for i, n in enumerate(a.shape) if n == 1)
    axis = set(dimcheck.axes(tuple(axis) if isinstance(axis, (list, tuple)) else (axis,), a.ndim, "squeeze", a.shape))
    for ax in axis:
        if a.shape[ax] != 1:
            raise ShapeError(f"squeeze: axis {ax} has size {a.shape[ax]}, not 1 (array of shape {tuple(a.shape)})")
    shape = tuple(n for i, n in enumerate(a.shape) if i not in axis)
    return a if shape == tuple(a.shape) else sh.reshape(a, shape=shape)


@implements(np.broadcast_to)
def broadcast_to(a, shape):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return a if tuple(a.shape) == shape else sh.broadcast_to(a, shape=shape)


@implements(np.broadcast_arrays)
def broadcast_arrays(*args, subok=False):
    shape = np.broadcast_shapes(*(tuple(a.shape) for a in args))
    return tuple(broadcast_to(a, shape) for a in args)


@implements(np.atleast_1d)
def atleast_1d(*arys):
    out = tuple(reshape(a, (1,)) if a.ndim == 0 else a for a in arys)
    return out[0] if len(out) == 1 else out


@implements(np.atleast_2d)
def atleast_2d(*arys):
    out = tuple(reshape(a, (1,) * (2 - a.ndim) + tuple(a.shape)) if a.ndim < 2 else a for a in arys)
    return out[0] if len(out) == 1 else out


@implements(np.concatenate)
def concatenate(arrays, axis=0, out=None, dtype=None):
    _refuse_keywords("concatenate", out)
    arrays = [_cast(a, dtype) for a in arrays]
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    if not arrays:
        raise ShapeError("concatenate: got an empty list of arrays", "concatenate", location=_user_line(),
                         why="there is nothing to join, and no shape or dtype to give the result",
                         fix="pass at least one array (check the list you built is not empty)")
    return sh.concatenate(*arrays, axis=dimcheck.axis(axis, arrays[0].ndim, "cat", arrays[0].shape))


@implements(np.stack)
def stack(arrays, axis=0, out=None, dtype=None):
    _refuse_keywords("stack", out)
    arrays = list(arrays)
    if not arrays:
        return concatenate(arrays)  # its error: nothing to stack
    axis = dimcheck.axis(axis, arrays[0].ndim, "stack", arrays[0].shape, new=1)
    return concatenate([expand_dims(a, axis) for a in arrays], axis=axis, dtype=dtype)


@implements(np.hstack)
def hstack(tup, dtype=None):
    arrays = [atleast_1d(a) for a in tup]
    return concatenate(arrays, axis=0 if arrays[0].ndim == 1 else 1, dtype=dtype)


@implements(np.vstack)
def vstack(tup, dtype=None):
    return concatenate([atleast_2d(a) for a in tup], axis=0, dtype=dtype)


@implements(np.split)
def split(ary, indices_or_sections, axis=0):
    n = ary.shape[axis]
    if isinstance(indices_or_sections, int) and n % indices_or_sections:
        raise ValueError("array split does not result in an equal division")
    return array_split(ary, indices_or_sections, axis)


@implements(np.array_split)
def array_split(ary, indices_or_sections, axis=0):
    n = ary.shape[axis]
    if isinstance(indices_or_sections, int):
        sections = indices_or_sections
        base, extra = divmod(n, sections)
        sizes = [base + 1] * extra + [base] * (sections - extra)
        bounds = np.cumsum([0] + sizes).tolist()
    else:
        bounds = [0] + [builtins.min(builtins.max(int(i), 0), n) for i in indices_or_sections] + [n]
    return [slice_axis(ary, axis, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


@implements(np.roll)
def roll(a, shift, axis=None):
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), tuple(a.shape))
    shifts, axes = np.broadcast_arrays(np.asarray(shift), np.asarray(axis))
    for s, ax in zip(shifts.reshape(-1).tolist(), axes.reshape(-1).tolist()):
        n = a.shape[ax]
        s = s % n if n else 0
        if s:
            a = concatenate([slice_axis(a, ax, n - s, n), slice_axis(a, ax, 0, n - s)], axis=ax)
    return a


@implements(np.diff)
def diff(a, n=1, axis=-1, **kw):
    _refuse_keywords("diff", None, **kw)
    for _ in range(n):
        a = slice_axis(a, axis, 1, None) - slice_axis(a, axis, 0, -1)
    return a


@implements(np.diagonal)
def diagonal(a, offset=0, axis1=0, axis2=1):
    a = moveaxis(a, (axis1, axis2), (-2, -1))
    rows, cols = a.shape[-2], a.shape[-1]
    first_row, first_col = builtins.max(0, -offset), builtins.max(0, offset)
    length = builtins.max(0, builtins.min(rows - first_row, cols - first_col))
    xp = _value_namespace(a)
    return ix.getitem(a, xp.arange(first_row, first_row + length), xp.arange(first_col, first_col + length),
                      key=(Ellipsis, ix.Slot(0), ix.Slot(1)))


@implements(np.trace)
def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _refuse_keywords("trace", out)
    return sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


def slice_axis(a, axis, start, stop, step=1):
    """a[..., start:stop:step, ...] along `axis`."""
    key = (slice(None),) * dimcheck.axis(axis, a.ndim, "slice", a.shape) + (slice(start, stop, step),)
    return ix.getitem(a, key=key)


@implements(np.pad)
def pad(array, pad_width, mode="constant", constant_values=0):
    if mode != "constant":
        _refuse(f"np.pad(..., mode={mode!r}) in traced code", "only mode='constant' has a rule",
                "pad with a constant, or build the border with slices and np.concatenate")
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (array.ndim, 2))
    return sh.pad(array, widths=tuple(map(tuple, widths.tolist())), value=constant_values)


@implements(np.flip)
def flip(m, axis=None):
    axis = tuple(range(m.ndim)) if axis is None else _axes(axis, m, "flip")
    return sh.flip(m, axis=(axis,) if isinstance(axis, int) else axis)


@implements(np.tile)
def tile(A, reps):
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    if len(reps) < A.ndim:
        reps = (1,) * (A.ndim - len(reps)) + reps
    if len(reps) > A.ndim:
        A = reshape(A, (1,) * (len(reps) - A.ndim) + tuple(A.shape))
    return sh.tile(A, reps=reps)


@implements(np.repeat)
def repeat(a, repeats, axis=None):
    if axis is None:
        a, axis = ravel(a), 0
    axis = dimcheck.axis(axis, a.ndim, "repeat", a.shape)
    if getattr(type(repeats), "_avalon_tracer", False):
        return _refuse("np.repeat with traced repeat counts",
                       "the result's shape would depend on the counts' values",
                       "repeat by constant counts (an int, a list or a plain array)",
                       lambda: repeat(a, _concrete(repeats), axis))
    if np.ndim(repeats) == 0:
        return sh.repeat(a, repeats=operator.index(repeats), axis=axis)
    # Constant counts: each position listed as often as its count, then one gather.
    return take(a, np.repeat(np.arange(a.shape[axis]), np.asarray(repeats)), axis)


# indexing, sorting and searching live beside (numpy_indexing registers np.take, np.sort … in HANDLED)

@implements(np.where)
def where(condition, x=None, y=None):
    if x is None or y is None:
        return _refuse("np.where(condition) with one argument (the indices where it holds)",
                       "the number of indices depends on the data, so the shapes after it would too",
                       "keep the shape: `np.where(condition, x, y)`, or a mask multiplied in",
                       lambda: np.where(_concrete(condition)))
    return ew.where(condition, x, y)


@implements(np.clip)
def clip(a, a_min=None, a_max=None, out=None, *, min=None, max=None, **kw):
    _refuse_keywords("clip", out, **kw)
    return ew.clip(a, a_min if min is None else min, a_max if max is None else max)


def _below(m, k):
    """The mask of entries on and below diagonal k of m's last two axes (in m's array module)."""
    xp = _value_namespace(m)
    rows, cols = m.shape[-2], m.shape[-1]
    return xp.reshape(xp.arange(rows), (rows, 1)) + k >= xp.reshape(xp.arange(cols), (1, cols))


@implements(np.tril)
def tril(m, k=0):
    return ew.where(_below(m, k), m, _value_namespace(m).zeros((), dtype=m.dtype))


@implements(np.triu)
def triu(m, k=0):
    return ew.where(_below(m, k - 1), _value_namespace(m).zeros((), dtype=m.dtype), m)


@implements(np.copy)
def copy(a, order="K", subok=False):
    return ew.astype(a, dtype=np.dtype(a.dtype))


@implements(np.astype)
def astype(x, dtype, /, *, copy=True, device=None):
    """np.astype: a converted copy; `copy=False` returns `x` itself when it already has `dtype`."""
    return ew.astype(x, dtype=np.dtype(dtype)) if copy else _cast(x, dtype)


def _real_valued(a, name):
    if np.issubdtype(a.dtype, np.complexfloating):
        _refuse(f"np.{name} of a complex traced array", "Avalon has no rules for complex values",
                "keep the real and imaginary parts as two real arrays")


@implements(np.real)
def real(val):
    _real_valued(val, "real")
    return val


@implements(np.imag)
def imag(val):
    """The imaginary part of a real array: zeros (a constant, as numpy's read-only zeros)."""
    _real_valued(val, "imag")
    return zeros_like(val)


@implements(np.round, np.around)
def round(a, decimals=0, out=None):
    _refuse_keywords("round", out)
    if decimals > 0:
        scale = 10.0 ** decimals
        return ew.rint(a * scale) / scale
    if decimals < 0:  # as numpy: divide by the power of ten, so e.g. 10 ** 1 stays exact
        scale = 10.0 ** -decimals
        return ew.rint(a / scale) * scale
    return ew.rint(a)


# new arrays shaped like a traced one: plain arrays, constants of the tape

@implements(np.zeros_like)
def zeros_like(a, dtype=None, order="K", subok=True, shape=None, **kw):
    return _value_namespace(a).zeros(_like_shape(a, shape), dtype=dtype or a.dtype)


@implements(np.ones_like)
def ones_like(a, dtype=None, order="K", subok=True, shape=None, **kw):
    return _value_namespace(a).ones(_like_shape(a, shape), dtype=dtype or a.dtype)


@implements(np.empty_like)
def empty_like(a, dtype=None, order="K", subok=True, shape=None, **kw):
    return _value_namespace(a).empty(_like_shape(a, shape), dtype=dtype or a.dtype)


@implements(np.full_like)
def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, **kw):
    return _value_namespace(a).full(_like_shape(a, shape), fill_value, dtype=dtype or a.dtype)


def _like_shape(a, shape):
    return tuple(a.shape) if shape is None else ((shape,) if isinstance(shape, int) else tuple(shape))


def _concrete(a):
    node = getattr(a, "_node", None)
    return node.value if node is not None else a


def arraylike(x):
    """An array or a tracer (not a dtype, a scalar type or a number)."""
    return is_array(x) or getattr(type(x), "_avalon_tracer", False)


def _value_namespace(a):
    return namespace(_concrete(a))


# linear algebra lives beside (numpy_linalg registers np.dot, np.einsum … in HANDLED)
from .numpy_linalg import dot, einsum, inner, matmul, norm, normalize_einsum, outer, tensordot, vdot  # noqa: E402,F401
from .numpy_indexing import (along_axis, argpartition, argsort, argwhere, choose, compress, flatnonzero,  # noqa: E402,F401
                             gather_along, getitem, index_array, index_key, nonzero, partition, searchsorted,
                             sort, take, take_along_axis)
