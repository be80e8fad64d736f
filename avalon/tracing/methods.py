"""The array methods of tracers and of `avalon.Tensor`: torch.Tensor's, and numpy's ndarray's.

One table serves both hosts: `Tracer` (inside traced code) and `avalon.Tensor` (a numpy array outside
it). Every method calls the generic functions (`avalon.numpy_api`, `avalon.torch_api`, `avalon.ops`),
which record on tracers and compute on arrays, so a method means the same on both.

Where torch and numpy share a method name, the spelling decides: torch's spelling gets torch's
meaning, and numpy's keywords (`axis=`, `keepdims=`, `ddof=`, `out=`, `kind=`, `order=`, `a_min=`,
`mode=` …) get numpy's — positional arguments then count as numpy's too (`x.max(0, keepdims=True)`).
numpy's functions (`np.max(x, 0)`, `np.repeat(x, 2)`) always mean numpy's. The collisions:

- `max(dim)` / `min(dim)` return a (values, indices) pair, `max()` the largest value; `max(axis=0)`,
  `min(axis=1, keepdims=True)` are numpy's arrays.
- `var()` / `std()` are unbiased (correction=1), also `std(0)`; `std(ddof=0)`, `var(axis=0)` are numpy's
  (ddof 0 unless given).
- `sum(dim, keepdim, dtype)`, `mean`, `prod`, `argmax`, `all`, `any`: the same values either way;
  positional arguments follow torch's order, so numpy's `x.sum(0, np.float64)` must name `dtype=`.
- `repeat(*sizes)` tiles the array; `repeat(2, axis=0)` repeats each element (numpy's).
- `transpose(d0, d1)` swaps two axes (also on a 2-D array, where numpy's `transpose(0, 1)` would keep
  it); `transpose()`, `transpose(None)`, `transpose((1, 0, 2))` and `transpose(1, 0, 2)` are numpy's
  permutations.
- `flatten(start_dim=0, end_dim=-1)` merges a range of axes; `flatten('F')` / `flatten(order=...)` is
  numpy's copy in that order.
- `squeeze(dim)` leaves an axis of length > 1 alone; `squeeze(axis=...)` is numpy's (an error there).
- `sort(dim=-1, descending=False, stable=False)` returns (values, indices); `sort(axis=..., kind=...)` is
  numpy's in-place sort: a Tensor sorts itself, a tracer refuses it (write `np.sort(x, axis=...)`).
  `argsort` is the same split (torch's `descending=`, numpy's `kind=`), without the in-place part.
- `put(index, source, accumulate=False)` is torch's out-of-place put; `put(ind, v, mode=...)` is numpy's
  in-place one (refused on tracers).
- `nonzero()` is torch's (n, ndim) index array, `nonzero(as_tuple=True)` numpy's tuple; both are refused
  on tracers (their length depends on the values).
- `view(*shape)` reshapes; `view(dtype)` reinterprets memory (refused on tracers).
- `x.size` is the element count (numpy's attribute) and, called, torch's `x.size()` (the shape) or
  `x.size(dim)`.
- `astype(dtype)` is numpy's (a copy; `copy=False` keeps the array when the dtype matches); torch's
  conversions (`float()`, `to(dtype)`, `type_as`) return the array itself when nothing changes.

numpy's methods that torch lacks have numpy's meaning: `take`, `diagonal`, `trace`, `compress`,
`choose`, `searchsorted`, `argpartition`, `conjugate`, `ravel(order)`, `swapaxes`, `dot`, `cumsum(axis)`,
`round(decimals)`, `clip(a_min, a_max)`. On tracers, numpy's attributes `itemsize`, `nbytes`, `real`,
`imag` and `flat` (read-only: `x.flat[i]`) work too; what writes into an array (`fill`, `partition`,
`resize`, `setfield`, `setflags`), exposes its memory (`base`, `ctypes`, `flags`, `strides`,
`byteswap`, `getfield`, `tobytes`, `tofile`, `dump`, `dumps`), moves it (`to_device`) or reads its values
into Python (`item`, `tolist`) is refused with `avalon.UnsupportedConstruct` and a rewrite. torch's
in-place methods (`add_`, `zero_` …) exist on tracers but are refused when called.
"""
import math
import numbers

import numpy as np

from .. import numpy_api as npa
from .. import torch_api as ta
from .. import torch_scatter as tsc
from .. import torch_select as tsel
from ..errors import DtypeError, ShapeError
from ..ops import elementwise as ew
from ..ops import index as ix
from ..ops import sort as so
from ..tensor import device
from .missing import WRITES, missing_attribute
from .source import user_location


def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _numpy_args(method, kw, **torch_args):
    """A call's numpy keywords `kw`, with the torch-named arguments it also gave (other than their
    defaults) under their numpy names: `torch_args` maps a numpy name to (value, torch's default)."""
    for name, (value, default) in torch_args.items():
        if value is default or (type(value) is type(default) and value == default):
            continue
        if name in kw:
            raise TypeError(f".{method}() got {name}= twice (once by torch's name or position)")
        kw[name] = value
    return kw


def _reduction(name, torch_fn, numpy_fn, shared=()):
    """A reduction method: torch's `(dim, keepdim)` (and the keywords both share, `shared`) mean
    `torch_fn`; any numpy keyword (`axis=`, `keepdims=`, `out=` …) means `numpy_fn`."""
    def method(self, dim=None, keepdim=False, **kw):
        if set(kw) - set(shared):
            return numpy_fn(self, **_numpy_args(name, kw, axis=(dim, None), keepdims=(keepdim, False)))
        return torch_fn(self, dim, keepdim, **kw)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = (f"torch's `{name}(dim=None, keepdim=False)`; with numpy's keywords "
                      f"(`axis=`, `keepdims=`, `out=` …) numpy's `{name}`.")
    return method


def _spread(name, torch_fn, numpy_fn):
    """var / std: torch's `(dim, unbiased, keepdim, *, correction)` (unbiased by default) or, with a
    numpy keyword (`axis=`, `ddof=`, `dtype=` …), numpy's (ddof 0 by default)."""
    def method(self, dim=None, unbiased=None, keepdim=False, *, correction=None, **kw):
        if kw:
            return numpy_fn(self, **_numpy_args(name, kw, axis=(dim, None), keepdims=(keepdim, False),
                                                correction=(correction, None)))
        return torch_fn(self, dim, unbiased, keepdim, correction=correction)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = (f"torch's unbiased `{name}(dim, unbiased, keepdim, *, correction)`; with numpy's "
                      f"keywords (`axis=`, `ddof=` …) numpy's `{name}` (ddof=0 by default).")
    return method


class Size(int):
    """`x.size`: the number of elements (numpy's attribute), and called, torch's `x.size()` (the
    shape) or `x.size(dim)` (one axis's length)."""

    def __new__(cls, shape):
        size = super().__new__(cls, math.prod(shape))
        size._dims = tuple(shape)
        return size

    def __call__(self, dim=None):
        return self._dims if dim is None else self._dims[dim]


class TorchMethods:
    """The methods of `Tracer` and `avalon.Tensor`: torch.Tensor's with torch's signatures and
    meanings, and numpy's where torch has none or numpy's keywords are used (see the module
    docstring for the collisions)."""

    __slots__ = ()

    def _in_place(self, name, kw, fix):
        """numpy's in-place method `name` (called with numpy's keywords `kw`): an ndarray host (a
        Tensor) runs numpy's own; a tracer refuses it."""
        if isinstance(self, np.ndarray):
            return getattr(np.ndarray, name)(self, **kw)
        return self._trace.refuse(f"numpy's in-place .{name}(...) on a traced array", WRITES, fix,
                                  lambda: None)

    # shape

    @property
    def size(self):
        return Size(self.shape)

    def dim(self):
        return self.ndim

    def numel(self):
        return int(np.prod(self.shape))

    def view(self, *shape):
        if not shape:  # numpy's view(): the same array
            return self
        if len(shape) == 1 and not isinstance(shape[0], (numbers.Integral, tuple, list)):
            return self._trace.refuse(
                f"view({shape[0]!r}): reinterpreting a traced array's memory as another dtype",
                "the bits of one dtype read as another have no gradient",
                "convert the values instead: `x.astype(dtype)` (or `x.to(dtype)`)",
                lambda: self)
        return npa.reshape(self, _shape_args(shape))

    def reshape(self, *shape_args, shape=None, order="C", copy=None):
        out = npa.reshape(self, _shape_args(shape_args) if shape_args else shape, order)
        return npa.copy(out) if copy else out

    def view_as(self, other):
        return npa.reshape(self, other.shape)

    reshape_as = view_as

    def permute(self, *dims):
        return npa.transpose(self, _shape_args(dims))

    def transpose(self, *dims):
        if len(dims) == 2 and all(isinstance(d, numbers.Integral) for d in dims):
            return npa.swapaxes(self, *dims)
        dims = _shape_args(dims)
        return npa.transpose(self, None if dims in ((), (None,)) else dims)

    def swapaxes(self, axis0, axis1):
        return npa.swapaxes(self, axis0, axis1)

    def t(self):
        return npa.transpose(self)

    def unsqueeze(self, dim):
        return npa.expand_dims(self, dim)

    def squeeze(self, dim=None, axis=None):
        return ta.squeeze(self, dim) if axis is None else npa.squeeze(self, axis)

    def flatten(self, start_dim=0, end_dim=-1, order=None):
        if isinstance(start_dim, str) or order is not None:  # numpy's flatten(order): a copy
            return npa.copy(npa.ravel(self, start_dim if order is None else order))
        return ta.flatten(self, start_dim, end_dim)

    def unflatten(self, dim, sizes):
        return ta.unflatten(self, dim, sizes)

    def ravel(self, order="C"):
        return npa.ravel(self, order)

    def expand(self, *sizes):
        sizes = _shape_args(sizes)
        lead = len(sizes) - self.ndim
        shape = tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes))
        return npa.broadcast_to(self, shape)

    def expand_as(self, other):
        return npa.broadcast_to(self, other.shape)

    def broadcast_to(self, shape):
        return npa.broadcast_to(self, shape)

    def repeat(self, *sizes, **kw):
        if "axis" in kw:  # numpy's repeat(repeats, axis): each element repeated
            return npa.repeat(self, *sizes, **kw)
        sizes = _shape_args(sizes)
        if len(sizes) < self.ndim:  # numpy's tile would pad them with 1s; torch refuses
            raise ShapeError(f"repeat{sizes}: {len(sizes)} repeat counts for an array of shape {tuple(self.shape)}",
                             "repeat", [tuple(self.shape)], user_location(),
                             why="torch's repeat takes one count per dimension (numpy's tile would pad with 1s)",
                             fix=f"give {self.ndim} counts, e.g. repeat({', '.join(['1'] * (self.ndim - 1) + ['n'])})")
        return npa.tile(self, sizes)

    def repeat_interleave(self, repeats, dim=None):
        return ta.repeat_interleave(self, repeats, dim)

    def flip(self, *dims):
        return npa.flip(self, _shape_args(dims) if dims else None)

    def chunk(self, chunks, dim=0):
        return ta.chunk(self, chunks, dim)

    def split(self, split_size, dim=0):
        return ta.split(self, split_size, dim)

    def unbind(self, dim=0):
        return ta.unbind(self, dim)

    def narrow(self, dim, start, length):
        return ta.narrow(self, dim, start, length)

    def contiguous(self):
        return self

    def clone(self):
        return npa.copy(self)

    def copy(self, order="C"):
        return npa.copy(self)

    # dtype and device

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if not np.can_cast(self.dtype, dtype, casting):
            raise DtypeError(f"astype: cannot cast {np.dtype(self.dtype)} to {np.dtype(dtype)} under "
                             f"casting={casting!r}; pass casting='unsafe' (numpy's default) to convert anyway")
        return npa.astype(self, dtype, copy=copy)

    def float(self):
        return npa.astype(self, np.float32, copy=False)

    def double(self):
        return npa.astype(self, np.float64, copy=False)

    def half(self):
        return npa.astype(self, np.float16, copy=False)

    def long(self):
        return npa.astype(self, np.int64, copy=False)

    def int(self):
        return npa.astype(self, np.int32, copy=False)

    def bool(self):
        return npa.astype(self, np.bool_, copy=False)

    def type_as(self, other):
        return npa.astype(self, other.dtype, copy=False)

    def to(self, *args, dtype=None, **kw):
        """`x.to(dtype)`, `x.to(other)` (its dtype); devices ('cpu', `avalon.device`) leave the array alone."""
        for a in args:
            if npa.arraylike(a):
                dtype = a.dtype
            elif not isinstance(a, (str, device)):
                dtype = a
        return self if dtype is None else npa.astype(self, dtype, copy=False)

    def detach(self):
        return ta.detach(self)

    def register_hook(self, hook):
        """`hook(grad)` sees the gradient flowing into this value at every `avalon.grad` call, and
        may return a replacement; see `avalon.tracing.callbacks.register_hook`."""
        from .callbacks import register_hook  # callbacks builds on tracers, which carry this table

        return register_hook(self, hook)

    # reductions (torch's dim/keepdim; numpy's axis/keepdims/out/ddof make them numpy's)

    sum = _reduction("sum", ta.sum, npa.sum, shared=("dtype",))
    mean = _reduction("mean", ta.mean, npa.mean, shared=("dtype",))
    prod = _reduction("prod", ta.prod, npa.prod, shared=("dtype",))
    max = _reduction("max", ta.max, npa.max)
    min = _reduction("min", ta.min, npa.min)
    argmax = _reduction("argmax", ta.argmax, npa.argmax)
    argmin = _reduction("argmin", ta.argmin, npa.argmin)
    all = _reduction("all", ta.all, npa.all)
    any = _reduction("any", ta.any, npa.any)
    var = _spread("var", ta.var, npa.var)
    std = _spread("std", ta.std, npa.std)

    def amax(self, dim=None, keepdim=False, **kw):
        return ta.amax(self, dim, keepdim, **kw)

    def amin(self, dim=None, keepdim=False, **kw):
        return ta.amin(self, dim, keepdim, **kw)

    def logsumexp(self, dim, keepdim=False):
        return ta.logsumexp(self, dim, keepdim)

    def cumsum(self, dim=None, **kw):
        return npa.cumsum(self, **_numpy_args("cumsum", kw, axis=(dim, None)))

    def cumprod(self, dim=None, **kw):
        return npa.cumprod(self, **_numpy_args("cumprod", kw, axis=(dim, None)))

    def trace(self, offset=0, axis1=0, axis2=1, dtype=None, out=None):
        return npa.trace(self, offset, axis1, axis2, dtype, out)

    def norm(self, p="fro", dim=None, keepdim=False):
        return ta.norm(self, p, dim, keepdim)

    # sorting and searching

    def sort(self, dim=-1, descending=False, stable=False, **kw):
        if kw:
            kw = _numpy_args("sort", kw, axis=(dim, -1), stable=(stable, False))
            return self._in_place("sort", kw, f"sort a copy: `x = np.sort(x, axis={kw.get('axis', -1)})`, "
                                              "or take torch's `values, indices = x.sort(dim)`")
        indices = self.argsort(dim, descending, stable)
        return ta.values_indices(npa.take_along_axis(self, indices, dim), indices)

    def argsort(self, dim=-1, descending=False, stable=False, **kw):
        if kw:
            return npa.argsort(self, **_numpy_args("argsort", kw, axis=(dim, -1), stable=(stable, False)))
        # torch's order: ties keep their original order (stable), NaN sorts as the largest value
        return so.argsort(self, axis=dim % self.ndim, kind="stable", descending=descending)

    def argpartition(self, kth, axis=-1, kind="introselect", order=None):
        return npa.argpartition(self, kth, axis, kind, order)

    def searchsorted(self, v, side="left", sorter=None):
        return npa.searchsorted(self, v, side, sorter)

    def nonzero(self, *, as_tuple=False):
        return npa.nonzero(self) if as_tuple else npa.argwhere(self)

    # elementwise

    def abs(self): return ew.absolute(self)
    def exp(self): return ew.exp(self)
    def log(self): return ew.log(self)
    def log1p(self): return ew.log1p(self)
    def sqrt(self): return ew.sqrt(self)
    def rsqrt(self): return ta.rsqrt(self)
    def square(self): return ew.square(self)
    def sin(self): return ew.sin(self)
    def cos(self): return ew.cos(self)
    def tanh(self): return ew.tanh(self)
    def sigmoid(self): return ew.sigmoid(self)
    def relu(self): return ew.relu(self)
    def neg(self): return ew.negative(self)
    def reciprocal(self): return ew.reciprocal(self)
    def sign(self): return ew.sign(self)
    def floor(self): return ew.floor(self)
    def ceil(self): return ew.ceil(self)
    def isnan(self): return ew.isnan(self)
    def isfinite(self): return ew.isfinite(self)
    def isinf(self): return ew.isinf(self)

    def round(self, decimals=0, out=None):
        return npa.round(self, decimals, out)

    def conj(self):
        """The complex conjugate: the array itself for a real dtype (as torch's)."""
        return np.conjugate(self) if np.issubdtype(self.dtype, np.complexfloating) else self

    conjugate = conj

    def pow(self, exponent):
        return ew.power(self, exponent)

    def clamp(self, min=None, max=None):
        return ew.clip(self, min, max)

    def clip(self, min=None, max=None, out=None, **kw):
        return npa.clip(self, kw.pop("a_min", min), kw.pop("a_max", max), out, **kw)

    def softmax(self, dim):
        return ta.softmax(self, dim)

    def log_softmax(self, dim):
        return ta.log_softmax(self, dim)

    def maximum(self, other):
        return ew.maximum(self, other)

    def minimum(self, other):
        return ew.minimum(self, other)

    def matmul(self, other):
        return npa.matmul(self, other)

    def mm(self, other):
        return npa.matmul(self, other)

    def bmm(self, other):
        return ta.bmm(self, other)

    def dot(self, other, out=None):
        return npa.dot(self, other, out)

    def masked_fill(self, mask, value):
        return ta.masked_fill(self, mask, value)

    def where(self, condition, other):
        return ew.where(condition, self, other)

    # indexing

    def take(self, indices, axis=None, out=None, mode="raise"):
        return npa.take(self, indices, axis, out, mode)

    def take_along_dim(self, indices, dim=None):
        return ta.take_along_dim(self, indices, dim)

    def diagonal(self, offset=0, dim1=0, dim2=1, *, axis1=None, axis2=None):
        return npa.diagonal(self, offset, dim1 if axis1 is None else axis1, dim2 if axis2 is None else axis2)

    def compress(self, condition, axis=None, out=None):
        return npa.compress(condition, self, axis, out)

    def choose(self, choices, out=None, mode="raise"):
        return npa.choose(self, choices, out, mode)

    def gather(self, dim, index):
        return ta.gather(self, dim, index)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        return tsel.topk(self, k, dim, largest, sorted)

    def multinomial(self, num_samples, replacement=False, *, generator=None):
        return tsel.multinomial(self, num_samples, replacement, generator=generator)

    def index_select(self, dim, index):
        return ta.index_select(self, dim, index)

    def index_add(self, dim, index, source, alpha=1):
        return ta.index_add(self, dim, index, source, alpha=alpha)

    def scatter_add(self, dim, index, src):
        return ta.scatter_add(self, dim, index, src)

    def scatter(self, dim, index, src=None, value=None, *, reduce=None):
        return tsc.scatter(self, dim, index, src, value, reduce=reduce)

    def index_copy(self, dim, index, source):
        return tsc.index_copy(self, dim, index, source)

    def index_fill(self, dim, index, value):
        return tsc.index_fill(self, dim, index, value)

    def index_put(self, indices, values, accumulate=False):
        return tsc.index_put(self, indices, values, accumulate)

    def put(self, index, source, accumulate=False, **kw):
        """torch's put, out of place: the array (read flat) with `source` written at the flat
        positions `index` (added there with `accumulate`). numpy's `put(ind, v, mode=...)` writes in
        place: a Tensor does it, a tracer refuses it."""
        if kw:
            return self._in_place("put", dict(indices=index, values=source, **kw),
                                  "write out of place: `x = x.put(index, source)` (torch's put)")
        flat = npa.ravel(self)
        index = npa.ravel(ix.in_range(npa.index_array(index), flat.shape[0], "put", negative=True))
        index = ew.remainder(index, flat.shape[0])  # negatives from the end
        at = dict(key=(ix.Slot(0),), shape=tuple(flat.shape))
        if not accumulate:
            flat = ew.where(ix.scatter_add(npa.ones_like(index), index, **at) > 0, 0, flat)
        placed = ix.scatter_add(npa.astype(npa.ravel(source), self.dtype, copy=False), index, **at)
        return npa.reshape(flat + placed, self.shape)

    def tril(self, diagonal=0):
        return ta.tril(self, diagonal)

    def triu(self, diagonal=0):
        return ta.triu(self, diagonal)

    # comparisons and arithmetic

    def eq(self, other): return ew.equal(self, other)
    def ne(self, other): return ew.not_equal(self, other)
    def lt(self, other): return ew.less(self, other)
    def le(self, other): return ew.less_equal(self, other)
    def gt(self, other): return ew.greater(self, other)
    def ge(self, other): return ew.greater_equal(self, other)
    def add(self, other, alpha=1): return self + (other if alpha == 1 else other * alpha)
    def sub(self, other, alpha=1): return self - (other if alpha == 1 else other * alpha)
    def mul(self, other): return self * other
    def div(self, other): return self / other

    # new arrays like this one (plain arrays: constants of the tape)

    def new_zeros(self, *size, dtype=None):
        return ta.zeros(*size, dtype=dtype or self.dtype)

    def new_ones(self, *size, dtype=None):
        return ta.ones(*size, dtype=dtype or self.dtype)

    def new_full(self, size, fill_value, dtype=None):
        return ta.full(size, fill_value, dtype=dtype or self.dtype)

    def new_empty(self, *size, dtype=None):
        return ta.empty(*size, dtype=dtype or self.dtype)

    def new_tensor(self, data, dtype=None, **_):
        return ta.tensor(data, dtype=dtype or self.dtype)

    def is_floating_point(self):
        return bool(np.issubdtype(self.dtype, np.floating))

    def numpy(self):
        return np.asarray(self)  # refused by Tracer.__array__, at the user's line

    def __getattr__(self, name):
        # Reached only for names the class lacks (a Tensor has its own __getattr__, and ndarray's
        # attributes): torch's in-place methods and numpy's attributes, on tracers.
        return missing_attribute(self, name)
