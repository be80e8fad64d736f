"""PyTorch's tensor functions under their torch names and signatures (`dim=`, float32 defaults).

They work on plain arrays and on tracers alike, so `torch.cat([a, b], dim=1)` ports as
`avalon.cat([a, b], dim=1)`. Creation functions return plain arrays (inside traced code those are
constants of the tape), except the random ones, which are recorded so every replay draws afresh.
This module has creation, joining, shapes, indexing and reductions; `avalon.torch_math` has the
elementwise math, linear algebra and activations. Both are exported as `avalon.*`.
"""
import builtins
import numbers
from collections import namedtuple

import numpy as np

from . import axes as dimcheck
from .arguments import whole
from . import numpy_api as npa
from .backend import default_float
from .errors import AvalonError, DtypeError, ShapeError
from .ops import elementwise as ew
from .ops import index as ix
from .ops import random as rnd
from .tensor import is_torch_tensor, plain, wrap

values_indices = namedtuple("values_indices", ["values", "indices"])
values_indices.__doc__ = "(values, indices) of torch's max(dim) / min(dim)."


def _size(size):
    """torch accepts zeros(2, 3) and zeros((2, 3))."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def _user_line():
    from .tracing.source import user_location  # tracing builds on this module

    return user_location()


def _new_size(who, size):
    """`size` of a new array checked as torch checks it: whole numbers, none negative."""
    size = _size(size)
    for n in size:
        if not isinstance(n, (numbers.Integral, np.integer)) or isinstance(n, bool) or n < 0:
            raise ShapeError(f"{who}: size {size} is not a shape", who, location=_user_line(),
                             why=f"{n!r} is not a whole number >= 0",
                             fix="give the size as whole numbers >= 0, e.g. (2, 3)")
    return size


def _dtype(who, dtype):
    """`dtype` as numpy's dtype (None stays None), refused up front when numpy does not know it."""
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        raise DtypeError(f"{who}: dtype={dtype!r} is not a dtype\n  at {_user_line()}\n"
                         f"  fix: use avalon.float32, avalon.int64 … (or their names: 'float32', 'int64')") from None


def _xp(device):
    if device is not None and str(device).startswith("cuda"):
        import cupy

        return cupy
    return np


def _dim(dim, keepdim, kw):
    """torch's (dim, keepdim) with numpy's (axis, keepdims) accepted too."""
    dim = kw.pop("axis", dim)
    keepdim = kw.pop("keepdims", keepdim)
    if kw:
        raise TypeError(f"unexpected arguments {sorted(kw)}")
    return (tuple(dim) if isinstance(dim, list) else dim), keepdim


def _length(input, dim):
    """The length of axis `dim`, with torch's error for an axis the array does not have."""
    dim = dimcheck.axis(dim, input.ndim, "dim", input.shape)
    return input.shape[dim] if input.ndim else 1


# creation (each returns a Tensor outside traced code; inside, a constant of the tape)

def _made(array, requires_grad=False):
    """A new array as the user gets it: a Tensor (cupy arrays stay cupy), flagged as torch's; inside
    traced code a tracer of it, a constant only its maker holds, so that in-place writes into it
    (`outputs[t] = output` in a decoder loop) trace exactly (see Tracer.__setitem__)."""
    from .tracing.context import current  # tracing builds on this module
    from .tracing.tracer import Tracer

    if isinstance(array, Tracer):
        return array  # a random draw, recorded
    trace = current()
    if trace is not None:
        return Tracer(trace.const(array), trace)
    array = wrap(array)
    if requires_grad:
        array.requires_grad_()  # refused for integer arrays, as torch refuses them
    return array


def zeros(*size, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
    """A Tensor of zeros (float32 unless `dtype` says otherwise)."""
    return _made(_xp(device).zeros(_new_size("zeros", size), dtype=_dtype("zeros", dtype) or default_float()),
                 requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
    """A Tensor of ones (float32 unless `dtype` says otherwise)."""
    return _made(_xp(device).ones(_new_size("ones", size), dtype=_dtype("ones", dtype) or default_float()),
                 requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
    """An uninitialised Tensor (float32 unless `dtype` says otherwise)."""
    return _made(_xp(device).empty(_new_size("empty", size), dtype=_dtype("empty", dtype) or default_float()),
                 requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
    """A Tensor filled with `fill_value` (bool, int64 or float32 after the value's type, as torch)."""
    if dtype is None:
        dtype = np.bool_ if isinstance(fill_value, (bool, np.bool_)) else np.int64 \
            if isinstance(fill_value, numbers.Integral) else default_float()
    return _made(_xp(device).full(_new_size("full", (size,)), fill_value, dtype=_dtype("full", dtype)), requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
    """Evenly spaced values in [start, end): int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    if step == 0 or (end - start) * step < 0:
        raise ShapeError(f"arange: step={step!r} never goes from start={start!r} to end={end!r}", "arange",
                         location=_user_line(), why="the step must be nonzero and point from start towards end",
                         fix="use a positive step with start <= end, or a negative one with start >= end")
    dtype = _dtype("arange", dtype)
    if dtype is None:
        whole = builtins.all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = np.int64 if whole else default_float()
    return _made(_xp(device).arange(start, end, step, dtype=dtype), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
    """`steps` values evenly spaced from `start` to `end` inclusive."""
    return _made(_xp(device).linspace(start, end, steps, dtype=dtype or default_float()), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
    """The identity matrix (n×m)."""
    return _made(_xp(device).eye(n, m, dtype=dtype or default_float()), requires_grad)


def tensor(data, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
    """A new Tensor (a copy) from nested lists, numbers or an array (float32 for float data, as torch)."""
    dtype = _dtype("tensor", dtype)
    try:
        array = np.array(_plain_data(data))
    except ValueError as error:  # ragged nested lists
        raise ShapeError("tensor: the nested lists are ragged (rows of different lengths)", "tensor",
                         location=_user_line(), why=str(error).split(". ")[0],
                         fix="make every row the same length (pad them), or build one tensor per row") from None
    if array.dtype.kind not in "biufc":
        raise DtypeError(f"tensor: cannot make a tensor of {type(data).__name__} data (numpy reads it as "
                         f"dtype {array.dtype})\n  at {_user_line()}\n  fix: pass numbers, nested lists of "
                         f"numbers or a numeric array")
    if dtype is None and array.dtype == np.float64 and not _is_float64(data):
        dtype = default_float()
    array = array.astype(dtype, copy=False) if dtype is not None else array
    return _made(array if device is None or str(device) == "cpu" else _xp(device).asarray(array), requires_grad)


def as_tensor(data, dtype=None, device=None):
    """`data` as a Tensor, sharing memory with an array of the right dtype (torch's as_tensor)."""
    if isinstance(data, np.ndarray) or is_torch_tensor(data):
        array = plain(data)
        return _made(array if dtype is None else array.astype(dtype, copy=False))
    return tensor(data, dtype=dtype, device=device)


def from_numpy(ndarray):
    """The Tensor view of a numpy array (shares its memory, keeps its dtype)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(ndarray).__name__}")
    return wrap(ndarray)


def _plain_data(data):
    if isinstance(data, (list, tuple)):
        return [_plain_data(d) for d in data]
    return plain(data)


def _is_float64(data):
    """Data that already has dtype float64 keeps it (torch keeps a float64 tensor's dtype)."""
    return getattr(data, "dtype", None) is not None and np.dtype(str(data.dtype).replace("torch.", "")) == np.float64


def zeros_like(input, dtype=None, device=None, requires_grad=False, layout=None, memory_format=None):
    """Zeros of `input`'s shape and dtype (a Tensor, also for a traced `input`)."""
    return _made(npa.zeros_like(input, dtype=dtype))


def ones_like(input, dtype=None, device=None, requires_grad=False, layout=None, memory_format=None):
    """Ones of `input`'s shape and dtype (a Tensor, also for a traced `input`)."""
    return _made(npa.ones_like(input, dtype=dtype))


def empty_like(input, dtype=None, device=None, requires_grad=False, layout=None, memory_format=None):
    """An uninitialised Tensor of `input`'s shape and dtype."""
    return _made(npa.empty_like(input, dtype=dtype))


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False, layout=None, memory_format=None):
    """`fill_value` in `input`'s shape and dtype."""
    return _made(npa.full_like(input, fill_value, dtype=dtype))


# random (recorded inside traced code, so each replay draws afresh)

def _device_of(x):
    from .backend import device_of
    from .tracing.tracer import Tracer

    return device_of(x._node.value if isinstance(x, Tracer) else x)


def rand(*size, dtype=None, device=None, generator=None, requires_grad=False, layout=None, pin_memory=False):
    """Uniform samples in [0, 1) (float32 unless `dtype` says otherwise)."""
    return _made(rnd.uniform(shape=_size(size), dtype=np.dtype(dtype or default_float()),
                             device=str(device or "cpu")), requires_grad)


def randn(*size, dtype=None, device=None, generator=None, requires_grad=False, layout=None, pin_memory=False):
    """Standard normal samples (float32 unless `dtype` says otherwise)."""
    return _made(rnd.normal(shape=_size(size), dtype=np.dtype(dtype or default_float()),
                            device=str(device or "cpu")), requires_grad)


def randint(low=0, high=None, size=None, dtype=None, device=None, generator=None, requires_grad=False,
            layout=None, pin_memory=False):
    """Integers uniform in [low, high) (int64): `randint(high, size)` or `randint(low, high, size)`."""
    if size is None and isinstance(high, (tuple, list)):  # randint(high, size), torch's short form
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint() needs a size: randint(high, (n,)) or randint(low, high, (n,))")
    return _made(rnd.randint(low=low, high=high, shape=_size((size,)), dtype=np.dtype(dtype or np.int64),
                             device=str(device or "cpu")))


def rand_like(input, dtype=None, device=None, requires_grad=False, layout=None, memory_format=None):
    """Uniform samples in [0, 1) of `input`'s shape and dtype."""
    return rand(*input.shape, dtype=dtype or input.dtype, device=_device_of(input))


def randn_like(input, dtype=None, device=None, requires_grad=False, layout=None, memory_format=None):
    """Standard normal samples of `input`'s shape and dtype."""
    return randn(*input.shape, dtype=dtype or input.dtype, device=_device_of(input))


def randint_like(input, low=0, high=None, dtype=None, device=None, requires_grad=False, layout=None,
                 memory_format=None):
    """Integers uniform in [low, high) of `input`'s shape."""
    return randint(low, high, input.shape, dtype=dtype or input.dtype, device=_device_of(input))


def randperm(n, dtype=None, device=None, generator=None, requires_grad=False, layout=None, pin_memory=False):
    """A random permutation of 0 … n-1 (int64)."""
    return _made(rnd.randperm(n=n, dtype=np.dtype(dtype or np.int64), device=str(device or "cpu")))


def manual_seed(seed):
    """Seed every random draw (rand, randn, dropout masks, initialisation)."""
    rnd.manual_seed(whole("manual_seed", "seed", seed))


# joining and splitting

def cat(tensors, dim=0, **kw):
    """Join arrays along an existing dimension."""
    return npa.concatenate(list(tensors), axis=kw.pop("axis", dim))


concat = concatenate = cat


def stack(tensors, dim=0, **kw):
    """Join arrays along a new dimension."""
    return npa.stack(list(tensors), axis=kw.pop("axis", dim))


def hstack(tensors):
    """Join along the second dimension (the first for 1-D arrays)."""
    return npa.hstack(list(tensors))


def vstack(tensors):
    """Join along the first dimension, 1-D arrays as rows."""
    return npa.vstack(list(tensors))


def split(tensor, split_size_or_sections, dim=0):
    """Pieces of `split_size` along `dim` (the last may be smaller), or of the listed sizes."""
    n = _length(tensor, dim)
    if isinstance(split_size_or_sections, numbers.Integral):
        size = builtins.max(int(split_size_or_sections), 1)
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise ShapeError(f"split: sizes {sizes} do not add up to dimension {dim}'s length {n} (array of shape "
                             f"{tuple(tensor.shape)})", "split", location=_user_line(),
                             fix=f"give sizes summing to {n}, or one int for pieces of equal size")
    bounds = np.cumsum([0] + sizes).tolist()
    return tuple(npa.slice_axis(tensor, dim, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]))


def chunk(input, chunks, dim=0):
    """At most `chunks` pieces of equal size along `dim` (the last may be smaller), as torch."""
    whole("chunk", "chunks", chunks, 1)
    n = _length(input, dim)
    return split(input, builtins.max(-(-n // chunks), 1), dim)


def unbind(input, dim=0):
    """The slices along `dim`, without it."""
    return tuple(npa.squeeze(piece, dim) for piece in split(input, 1, dim))


# shapes

def reshape(input, *shape):
    """`input` with a new shape (one entry may be -1)."""
    return npa.reshape(input, _size(shape))


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dimensions start_dim..end_dim into one."""
    if input.ndim == 0:
        return npa.reshape(input, (1,))
    start, end = dimcheck.axes((start_dim, end_dim), input.ndim, "flatten", input.shape)
    if start > end:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                         f"(array of shape {tuple(input.shape)})")
    shape = tuple(input.shape[:start]) + (-1,) + tuple(input.shape[end + 1:])
    return npa.reshape(input, shape)


def unflatten(input, dim, sizes):
    """Split dimension `dim` into `sizes` (one entry may be -1)."""
    dim = dimcheck.axis(dim, input.ndim, "unflatten", input.shape)
    return npa.reshape(input, tuple(input.shape[:dim]) + tuple(sizes) + tuple(input.shape[dim + 1:]))


def transpose(input, dim0, dim1):
    """`input` with dimensions dim0 and dim1 swapped."""
    return npa.swapaxes(input, dim0, dim1)


swapaxes = swapdims = transpose


def t(input):
    """The transpose of a matrix (a 0-D or 1-D array unchanged)."""
    return npa.transpose(input) if input.ndim == 2 else input


def permute(input, *dims):
    """`input` with its dimensions in the order `dims`."""
    return npa.transpose(input, _size(dims))


def movedim(input, source, destination):
    """`input` with dimension(s) `source` moved to `destination`."""
    return npa.moveaxis(input, source, destination)


moveaxis = movedim


def unsqueeze(input, dim):
    """`input` with a new dimension of length 1 at `dim`."""
    return npa.expand_dims(input, dim)


def squeeze(input, dim=None):
    """`input` without its length-1 dimensions (only those of `dim`, when given; others are kept)."""
    if dim is not None:
        given = dimcheck.axes((dim,) if isinstance(dim, numbers.Integral) else tuple(dim), input.ndim, "squeeze",
                          input.shape)
        ones = tuple(d for d in given if input.shape[d] == 1)  # torch ignores non-1 dims
        return npa.squeeze(input, ones) if ones else input
    return npa.squeeze(input)


def broadcast_to(input, size):
    """`input` broadcast to `size` (a view, read-only)."""
    return npa.broadcast_to(input, tuple(size))


def broadcast_tensors(*tensors):
    """The arrays broadcast to their common shape."""
    return npa.broadcast_arrays(*tensors)


def flip(input, dims):
    """`input` reversed along `dims`."""
    return npa.flip(input, tuple(dims) if not isinstance(dims, numbers.Integral) else dims)


def roll(input, shifts, dims=None):
    """`input` rolled by `shifts` along `dims` (flattened, then restored, when dims is None)."""
    return npa.roll(input, shifts, dims)


def tile(input, dims):
    """`input` repeated `dims[i]` times along dimension i."""
    return npa.tile(input, dims)


def tril(input, diagonal=0):
    """The lower triangle of the last two dimensions (the rest zeroed)."""
    return npa.tril(input, diagonal)


def triu(input, diagonal=0):
    """The upper triangle of the last two dimensions (the rest zeroed)."""
    return npa.triu(input, diagonal)


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal of dimensions dim1 and dim2, as the last dimension."""
    return npa.diagonal(input, offset, dim1, dim2)


def repeat_interleave(input, repeats, dim=None):
    """Each element repeated `repeats` times along `dim` (of the flattened input when None)."""
    return npa.repeat(input, repeats, dim)


# indexing

def gather(input, dim, index):
    """out[i][j] = input[i][index[i][j]] along `dim` (index no larger than input elsewhere)."""
    if index.ndim != input.ndim:
        raise ShapeError(f"gather: index has {index.ndim} dimensions, input {input.ndim}")
    index = ix.in_range(npa.index_array(index), _length(input, dim), "gather")  # no negatives, as torch
    return npa.gather_along(input, index, dim, index.shape)


def take_along_dim(input, indices, dim=None):
    """`input` indexed by `indices` along `dim` (broadcasting elsewhere), as numpy's take_along_axis;
    without `dim`, both are read flat (torch's)."""
    if dim is None:  # torch refuses negative flat indices here (along a dim it reads them from the end)
        return npa.take(input, ix.in_range(npa.ravel(indices), int(np.prod(input.shape)), "take_along_dim"))
    return npa.take_along_axis(input, indices, dim)


def index_select(input, dim, index):
    """The entries `index` (a 1-D integer array) of `input` along `dim`."""
    return npa.take(input, ix.in_range(npa.index_array(index), _length(input, dim), "index_select"), axis=dim)


def narrow(input, dim, start, length):
    """`length` entries of `input` from `start` along `dim` (a negative start counts from the end)."""
    n = _length(input, dim)
    start = start + n if start < 0 else start
    if not 0 <= start <= start + length <= n:
        raise ShapeError(f"narrow: [{start}, {start + length}) is outside dimension {dim} of length {n}")
    return npa.slice_axis(input, dim, start, start + length)


def _scatter_into(input, source, operands, key):
    """input + source added at `key` (repeated indices accumulate): one differentiable scatter_add."""
    return input + ix.scatter_add(source, *operands, key=key, shape=tuple(input.shape))


def index_add(input, dim, index, source, alpha=1):
    """`input` with `alpha * source` added at `index` along `dim` (repeats accumulate), out of place.

    The functional form of `np.add.at(x, index, v)` and of torch's `index_add_`.
    """
    dim = dim % input.ndim
    source = source if alpha == 1 else source * alpha
    index = ix.in_range(npa.index_array(index), input.shape[dim], "index_add")  # no negatives, as torch
    return _scatter_into(input, source, [index], (slice(None),) * dim + (ix.Slot(0),))


def scatter_add(input, dim, index, src):
    """`input` with `src[i][j]` added at `[index[i][j]][j]` (for dim=0), out of place, as torch."""
    if tuple(src.shape) != tuple(index.shape):
        src = src[tuple(slice(0, n) for n in index.shape)]
    index = ix.in_range(npa.index_array(index), _length(input, dim), "scatter_add")  # no negatives, as torch
    operands, key = npa.along_axis(input, index, dim, index.shape)
    return _scatter_into(input, src, operands, key)


def masked_fill(input, mask, value):
    """`input` with `value` where `mask` is true (mask broadcasts)."""
    if not hasattr(value, "shape"):
        value = np.asarray(value, dtype=input.dtype)
    return ew.where(mask, value, input)


def where(condition, input=None, other=None):
    """`input` where `condition` holds, else `other` (all broadcast). With `condition` alone, the
    indices where it holds, `nonzero(condition, as_tuple=True)` (refused in traced code)."""
    if input is None and other is None:
        from .torch_select import nonzero

        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise AvalonError("where(condition, input, other) needs both input and other (or neither, for the "
                          "indices where condition holds)")
    return ew.where(condition, input, other)


# reductions

def sum(input, dim=None, keepdim=False, dtype=None, **kw):
    """Sum over `dim` (all dimensions when None)."""
    dim, keepdim = _dim(dim, keepdim, kw)
    return npa.sum(input, axis=dim, keepdims=keepdim, dtype=dtype)


def mean(input, dim=None, keepdim=False, dtype=None, **kw):
    """Mean over `dim` (all dimensions when None)."""
    dim, keepdim = _dim(dim, keepdim, kw)
    return npa.mean(input, axis=dim, keepdims=keepdim, dtype=dtype)


def prod(input, dim=None, keepdim=False, dtype=None, **kw):
    """Product over `dim` (all dimensions when None)."""
    dim, keepdim = _dim(dim, keepdim, kw)
    return npa.prod(input, axis=dim, keepdims=keepdim, dtype=dtype)


def _extreme(reduce, arg, input, dim, keepdim, kw):
    dim, keepdim = _dim(dim, keepdim, kw)
    if dim is None:
        return reduce(input)
    # The values are read at the indices, so their gradient goes to that one element, as torch's
    # (a whole-array max shares it between ties, as torch's does too).
    indices = arg(input, axis=dim, keepdims=True)
    values = npa.take_along_axis(input, indices, dim)
    if not keepdim:
        values, indices = npa.squeeze(values, dim), npa.squeeze(indices, dim)
    return values_indices(values, indices)


def max(input, dim=None, keepdim=False, **kw):
    """The largest value; with `dim`, a (values, indices) pair as torch; with an array, elementwise."""
    if hasattr(dim, "shape"):
        return ew.maximum(input, dim)
    return _extreme(npa.max, npa.argmax, input, dim, keepdim, kw)


def min(input, dim=None, keepdim=False, **kw):
    """The smallest value; with `dim`, a (values, indices) pair as torch; with an array, elementwise."""
    if hasattr(dim, "shape"):
        return ew.minimum(input, dim)
    return _extreme(npa.min, npa.argmin, input, dim, keepdim, kw)


def _reduction(reduce, name, doc):
    def fn(input, dim=None, keepdim=False, **kw):
        dim, keepdim = _dim(dim, keepdim, kw)
        return reduce(input, axis=dim, keepdims=keepdim)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


amax = _reduction(npa.max, "amax", "The largest values over `dim` (ties share the gradient).")
amin = _reduction(npa.min, "amin", "The smallest values over `dim` (ties share the gradient).")
argmax = _reduction(npa.argmax, "argmax",
                    "Index of the largest value along `dim` (of the flattened input when None).")
argmin = _reduction(npa.argmin, "argmin",
                    "Index of the smallest value along `dim` (of the flattened input when None).")
all = _reduction(npa.all, "all", "Whether every element (along `dim`) is true.")
any = _reduction(npa.any, "any", "Whether any element (along `dim`) is true.")


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    return 1 if unbiased in (None, True) else 0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None, **kw):
    """Variance; unbiased (correction=1) by default, as torch."""
    dim, keepdim = _dim(dim, keepdim, kw)
    return npa.var(input, axis=dim, ddof=_correction(unbiased, correction), keepdims=keepdim)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None, **kw):
    """Standard deviation; unbiased (correction=1) by default, as torch."""
    dim, keepdim = _dim(dim, keepdim, kw)
    return npa.std(input, axis=dim, ddof=_correction(unbiased, correction), keepdims=keepdim)


def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(input))) over `dim`, computed stably."""
    return npa.logsumexp(input, axis=dim, keepdims=keepdim)


def cumsum(input, dim, dtype=None):
    """Running sums along `dim`."""
    return npa.cumsum(input, axis=dim, dtype=dtype)


def cumprod(input, dim, dtype=None):
    """Running products along `dim`."""
    return npa.cumprod(input, axis=dim, dtype=dtype)


def numel(input):
    """The number of elements."""
    return int(np.prod(input.shape))


def is_tensor(obj):
    """True for arrays (numpy, cupy, array-API) and traced arrays."""
    from .backend import is_array
    from .tracing.tracer import Tracer

    return is_array(obj) or isinstance(obj, Tracer)


from .torch_math import *  # noqa: E402,F401,F403 - elementwise math, linear algebra, activations
from .torch_math import __all__ as _math_names  # noqa: E402

__all__ = [
    "values_indices", "zeros", "ones", "empty", "full", "arange", "linspace", "eye", "tensor",
    "as_tensor", "from_numpy", "zeros_like", "ones_like", "empty_like", "full_like", "rand", "randn",
    "randint", "rand_like", "randn_like", "randint_like", "randperm", "manual_seed", "cat", "concat",
    "concatenate", "stack", "hstack", "vstack", "split",
    "chunk", "unbind", "reshape", "flatten", "unflatten", "transpose", "swapaxes", "swapdims", "t",
    "permute", "movedim", "moveaxis", "unsqueeze", "squeeze", "broadcast_to", "broadcast_tensors",
    "flip", "roll", "tile", "tril", "triu", "diagonal", "repeat_interleave", "gather", "take_along_dim",
    "index_select", "narrow", "index_add", "scatter_add", "masked_fill", "where", "sum", "mean", "prod",
    "max", "min", "amax", "amin", "argmax", "argmin", "all", "any", "var", "std", "logsumexp", "cumsum",
    "cumprod", "numel", "is_tensor", *_math_names,
]
