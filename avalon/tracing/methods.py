"""torch.Tensor's methods on tracers, so PyTorch model code traces unchanged.

Where torch and numpy disagree on a method, torch wins; numpy's meaning stays reachable through the
numpy function. The collisions:

- `transpose(d0, d1)` swaps two axes; with no arguments or a full permutation it is numpy's.
- `repeat(*sizes)` tiles the array (numpy's `x.repeat(n)` repeats each element: `np.repeat(x, n)`).
- `flatten(start_dim=0, end_dim=-1)` merges a range of axes (numpy's `flatten(order)` is not taken).
- `view(*shape)` reshapes (numpy's `view(dtype)` reinterprets memory and is refused).
- `max(dim)` / `min(dim)` (also spelled `axis=`) return a (values, indices) pair; without `dim` the
  largest value (numpy's `x.max(axis=0)` is `np.max(x, axis=0)` or `x.amax(0)`).
- `var()` / `std()` are unbiased (correction=1) by default (numpy's: `x.var(ddof=0)`).
- Positional arguments follow torch's order: `sum(dim, keepdim, dtype)`, `mean`, `prod`,
  `max(dim, keepdim)`, `var(dim, unbiased, keepdim)`; numpy's positional `x.sum(0, np.float64)` or
  `x.std(0, None, None, 1)` must name its keywords.

Both spellings work where they do not collide: numpy's `axis=` / `keepdims=` / `ddof=` / `a_min=`
beside torch's `dim=` / `keepdim=` / `correction=` / `min=`; `astype` and `to`; `copy` and `clone`;
`T`, `mT`, `swapaxes`, `ravel`. `x.size` is the element count (numpy's attribute) and, called, torch's
`x.size()` (the shape) or `x.size(dim)`. In-place methods (`add_`, `zero_` …) exist but are refused
when called (`avalon.UnsupportedConstruct`).
"""
import math
import numbers

import numpy as np

from .. import numpy_api as npa
from .. import torch_api as ta
from ..ops import elementwise as ew
from ..tensor import device


def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


class Size(int):
    """`x.size`: the number of elements (numpy's attribute), and called, torch's `x.size()` (the
    shape) or `x.size(dim)` (one axis's length)."""

    def __new__(cls, shape):
        size = super().__new__(cls, math.prod(shape))
        size._dims = tuple(shape)
        return size

    def __call__(self, dim=None):
        return self._dims if dim is None else self._dims[dim]


# torch's in-place methods whose out-of-place forms are not methods here (the rest are `name_` of one)
_INPLACE_ONLY = {"zero_", "fill_", "copy_", "uniform_", "normal_", "bernoulli_", "exponential_",
                 "random_", "index_put_", "index_fill_", "index_copy_", "scatter_", "scatter_add_",
                 "masked_scatter_", "put_", "set_", "resize_", "requires_grad_", "fill_diagonal_"}


class TorchMethods:
    """torch.Tensor's methods for `Tracer`: each has torch's name, signature and meaning (see the
    module docstring for where numpy's spellings are accepted too, and where the two collide)."""

    __slots__ = ()

    # shape

    @property
    def size(self):
        return Size(self.shape)

    def dim(self):
        return self.ndim

    def numel(self):
        return int(np.prod(self.shape))

    def view(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (numbers.Integral, tuple, list)):
            return self._trace.refuse(
                f"view({shape[0]!r}): reinterpreting a traced array's memory as another dtype",
                "the bits of one dtype read as another have no gradient",
                "convert the values instead: `x.astype(dtype)` (or `x.to(dtype)`)",
                lambda: self)
        return npa.reshape(self, _shape_args(shape))

    def reshape(self, *shape, **kw):
        return npa.reshape(self, _shape_args(shape) if shape else kw["shape"])

    def view_as(self, other):
        return npa.reshape(self, other.shape)

    reshape_as = view_as

    def permute(self, *dims):
        return npa.transpose(self, _shape_args(dims))

    def transpose(self, *dims):
        if len(dims) == 2 and all(isinstance(d, numbers.Integral) for d in dims):
            return npa.swapaxes(self, *dims)
        return npa.transpose(self, _shape_args(dims) if dims else None)

    def swapaxes(self, axis0, axis1):
        return npa.swapaxes(self, axis0, axis1)

    def t(self):
        return npa.transpose(self)

    def unsqueeze(self, dim):
        return npa.expand_dims(self, dim)

    def squeeze(self, dim=None, axis=None):
        return ta.squeeze(self, axis if axis is not None else dim)

    def flatten(self, start_dim=0, end_dim=-1):
        return ta.flatten(self, start_dim, end_dim)

    def unflatten(self, dim, sizes):
        return ta.unflatten(self, dim, sizes)

    def ravel(self):
        return npa.ravel(self)

    def expand(self, *sizes):
        sizes = _shape_args(sizes)
        lead = len(sizes) - self.ndim
        shape = tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes))
        return npa.broadcast_to(self, shape)

    def expand_as(self, other):
        return npa.broadcast_to(self, other.shape)

    def broadcast_to(self, shape):
        return npa.broadcast_to(self, shape)

    def repeat(self, *sizes):
        return npa.tile(self, _shape_args(sizes))

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

    def copy(self):
        return npa.copy(self)

    # dtype and device

    def astype(self, dtype):
        return self if np.dtype(dtype) == self.dtype else ew.astype(self, dtype=np.dtype(dtype))

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def half(self):
        return self.astype(np.float16)

    def long(self):
        return self.astype(np.int64)

    def int(self):
        return self.astype(np.int32)

    def bool(self):
        return self.astype(np.bool_)

    def type_as(self, other):
        return self.astype(other.dtype)

    def to(self, *args, dtype=None, **kw):
        """`x.to(dtype)`, `x.to(other)` (its dtype); devices ('cpu', `avalon.device`) leave the array alone."""
        for a in args:
            if npa.arraylike(a):
                dtype = a.dtype
            elif not isinstance(a, (str, device)):
                dtype = a
        return self if dtype is None else self.astype(dtype)

    def detach(self):
        return ta.detach(self)

    # reductions (torch's dim/keepdim, numpy's axis/keepdims)

    def sum(self, dim=None, keepdim=False, dtype=None, **kw):
        return ta.sum(self, dim, keepdim, dtype, **kw)

    def mean(self, dim=None, keepdim=False, dtype=None, **kw):
        return ta.mean(self, dim, keepdim, dtype, **kw)

    def prod(self, dim=None, keepdim=False, dtype=None, **kw):
        return ta.prod(self, dim, keepdim, dtype, **kw)

    def max(self, dim=None, keepdim=False, **kw):
        return ta.max(self, dim, keepdim, **kw)

    def min(self, dim=None, keepdim=False, **kw):
        return ta.min(self, dim, keepdim, **kw)

    def amax(self, dim=None, keepdim=False, **kw):
        return ta.amax(self, dim, keepdim, **kw)

    def amin(self, dim=None, keepdim=False, **kw):
        return ta.amin(self, dim, keepdim, **kw)

    def argmax(self, dim=None, keepdim=False, **kw):
        return ta.argmax(self, dim, keepdim, **kw)

    def argmin(self, dim=None, keepdim=False, **kw):
        return ta.argmin(self, dim, keepdim, **kw)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, ddof=None, **kw):
        return ta.var(self, dim, unbiased, keepdim, correction=ddof if correction is None else correction, **kw)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None, ddof=None, **kw):
        return ta.std(self, dim, unbiased, keepdim, correction=ddof if correction is None else correction, **kw)

    def logsumexp(self, dim, keepdim=False):
        return ta.logsumexp(self, dim, keepdim)

    def cumsum(self, dim=None, **kw):
        return ta.cumsum(self, kw.pop("axis", dim), **kw)

    def cumprod(self, dim=None, **kw):
        return ta.cumprod(self, kw.pop("axis", dim), **kw)

    def all(self, dim=None, keepdim=False, **kw):
        dim, keepdim = ta._dim(dim, keepdim, kw)
        return npa.all(self, axis=dim, keepdims=keepdim)

    def any(self, dim=None, keepdim=False, **kw):
        dim, keepdim = ta._dim(dim, keepdim, kw)
        return npa.any(self, axis=dim, keepdims=keepdim)

    def norm(self, p="fro", dim=None, keepdim=False):
        return ta.norm(self, p, dim, keepdim)

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
    def round(self, decimals=0): return npa.round(self, decimals)
    def isnan(self): return ew.isnan(self)
    def isfinite(self): return ew.isfinite(self)
    def isinf(self): return ew.isinf(self)

    def pow(self, exponent):
        return ew.power(self, exponent)

    def clamp(self, min=None, max=None):
        return ew.clip(self, min, max)

    def clip(self, min=None, max=None, **kw):
        return ew.clip(self, kw.pop("a_min", min), kw.pop("a_max", max))

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

    def dot(self, other):
        return npa.dot(self, other)

    def masked_fill(self, mask, value):
        return ta.masked_fill(self, mask, value)

    def where(self, condition, other):
        return ew.where(condition, self, other)

    def gather(self, dim, index):
        return ta.gather(self, dim, index)

    def index_select(self, dim, index):
        return ta.index_select(self, dim, index)

    def index_add(self, dim, index, source, alpha=1):
        return ta.index_add(self, dim, index, source, alpha=alpha)

    def scatter_add(self, dim, index, src):
        return ta.scatter_add(self, dim, index, src)

    def tril(self, diagonal=0):
        return ta.tril(self, diagonal)

    def triu(self, diagonal=0):
        return ta.triu(self, diagonal)

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

    def is_floating_point(self):
        return bool(np.issubdtype(self.dtype, np.floating))

    def numpy(self):
        return np.asarray(self)  # refused by Tracer.__array__, at the user's line

    def __getattr__(self, name):
        # torch's in-place methods (`x.add_(1)`, `x.zero_()`) exist, so hasattr sees them; calling one
        # is refused at the user's line.
        stem = name[:-1]
        if name in _INPLACE_ONLY or (name.endswith("_") and not name.startswith("_") and
                                     callable(getattr(type(self), stem, None))):
            return lambda *args, **kwargs: self._trace.refuse(
                f"in-place method .{name}() on a traced array",
                "in-place updates change values that other recorded operations already read, so the "
                "tape (and its gradient) would not match what ran",
                f"use the out-of-place form and bind the result: `x = x.{stem}(...)`" if stem.isidentifier()
                and hasattr(type(self), stem) else
                "build a new array instead (avalon.zeros_like, np.where, masked_fill, avalon.index_add)",
                lambda: self)
        raise AttributeError(f"traced arrays have no attribute {name!r} (they follow numpy functions "
                             "and torch.Tensor methods; see avalon.tracing.methods)")
