"""PyTorch's tensor functions under their torch names and signatures (`dim=`, float32 defaults).

They work on plain arrays and on tracers alike, so `torch.cat([a, b], dim=1)` ports as
`avalon.cat([a, b], dim=1)`. Creation functions return plain arrays (inside traced code those are
constants of the tape), except the random ones, which are recorded so every replay draws afresh.
"""
import builtins
from collections import namedtuple

import numpy as np

from . import numpy_api as npa
from .backend import default_float
from .errors import AvalonError
from .ops import elementwise as ew
from .ops import nn as nn_ops
from .ops import random as rnd

values_indices = namedtuple("values_indices", ["values", "indices"])


def _size(size):
    """torch accepts zeros(2, 3) and zeros((2, 3))."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


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


# creation

def zeros(*size, dtype=None, device=None):
    """An array of zeros (float32 unless `dtype` says otherwise)."""
    return _xp(device).zeros(_size(size), dtype=dtype or default_float())


def ones(*size, dtype=None, device=None):
    """An array of ones (float32 unless `dtype` says otherwise)."""
    return _xp(device).ones(_size(size), dtype=dtype or default_float())


def empty(*size, dtype=None, device=None):
    """An uninitialised array (float32 unless `dtype` says otherwise)."""
    return _xp(device).empty(_size(size), dtype=dtype or default_float())


def full(size, fill_value, dtype=None, device=None):
    """An array filled with `fill_value` (float32 for a float value, int64 for an int, as torch)."""
    if dtype is None:
        dtype = np.bool_ if isinstance(fill_value, bool) else np.int64 if isinstance(fill_value, int) \
            else default_float()
    return _xp(device).full(_size((size,)), fill_value, dtype=dtype)


def arange(start, end=None, step=1, dtype=None, device=None):
    """Evenly spaced values in [start, end): int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = np.int64 if all(isinstance(v, int) for v in (start, end, step)) else default_float()
    return _xp(device).arange(start, end, step, dtype=dtype)


def linspace(start, end, steps, dtype=None, device=None):
    """`steps` values evenly spaced from `start` to `end` inclusive."""
    return _xp(device).linspace(start, end, steps, dtype=dtype or default_float())


def eye(n, m=None, dtype=None, device=None):
    """The identity matrix (n×m)."""
    return _xp(device).eye(n, m, dtype=dtype or default_float())


def tensor(data, dtype=None, device=None):
    """An array from nested lists or an array (float32 for float data, as torch)."""
    array = np.asarray(data)
    if dtype is None and array.dtype == np.float64:
        dtype = default_float()
    array = array.astype(dtype) if dtype is not None else array
    return array if device is None or str(device) == "cpu" else _xp(device).asarray(array)


def zeros_like(x, dtype=None):
    return npa.zeros_like(x, dtype=dtype)


def ones_like(x, dtype=None):
    return npa.ones_like(x, dtype=dtype)


def full_like(x, fill_value, dtype=None):
    return npa.full_like(x, fill_value, dtype=dtype)


# random (recorded inside traced code, so each replay draws afresh)

def _device_of(x):
    from .backend import device_of
    from .tracing.tracer import Tracer

    return device_of(x._node.value if isinstance(x, Tracer) else x)


def rand(*size, dtype=None, device=None):
    """Uniform samples in [0, 1)."""
    return rnd.uniform(shape=_size(size), dtype=np.dtype(dtype or default_float()), device=str(device or "cpu"))


def randn(*size, dtype=None, device=None):
    """Standard normal samples."""
    return rnd.normal(shape=_size(size), dtype=np.dtype(dtype or default_float()), device=str(device or "cpu"))


def randint(low, high=None, size=(), dtype=None, device=None):
    """Integers uniform in [low, high) (int64)."""
    if high is None:
        low, high = 0, low
    return rnd.randint(low=low, high=high, shape=tuple(size), dtype=np.dtype(dtype or np.int64),
                       device=str(device or "cpu"))


def rand_like(x, dtype=None):
    return rand(*x.shape, dtype=dtype or x.dtype, device=_device_of(x))


def randn_like(x, dtype=None):
    return randn(*x.shape, dtype=dtype or x.dtype, device=_device_of(x))


def manual_seed(seed):
    """Seed every random draw (rand, randn, dropout masks, initialisation)."""
    rnd.manual_seed(seed)


# joining and splitting

def cat(tensors, dim=0, **kw):
    """Join arrays along an existing dimension."""
    return npa.concatenate(list(tensors), axis=kw.pop("axis", dim))


concat = concatenate = cat


def stack(tensors, dim=0, **kw):
    """Join arrays along a new dimension."""
    return npa.stack(list(tensors), axis=kw.pop("axis", dim))


def split(tensor, split_size_or_sections, dim=0):
    """Pieces of `split_size` along `dim` (the last may be smaller), or of the listed sizes."""
    n = tensor.shape[dim]
    if isinstance(split_size_or_sections, int):
        sizes = [split_size_or_sections] * (n // split_size_or_sections)
        if n % split_size_or_sections:
            sizes.append(n % split_size_or_sections)
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise AvalonError(f"split: sizes {sizes} do not add up to dimension {dim}'s length {n}")
    bounds = np.cumsum([0] + sizes).tolist()
    return tuple(npa.slice_axis(tensor, dim, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]))


def chunk(input, chunks, dim=0):
    """`chunks` pieces of equal size along `dim` (the last may be smaller)."""
    n = input.shape[dim]
    return split(input, -(-n // chunks), dim)


def unbind(input, dim=0):
    """The slices along `dim`, without it."""
    return tuple(npa.squeeze(piece, dim) for piece in split(input, 1, dim))


# shapes

def reshape(input, *shape):
    return npa.reshape(input, _size(shape))


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dimensions start_dim..end_dim into one."""
    if input.ndim == 0:
        return npa.reshape(input, (1,))
    start, end = start_dim % input.ndim, end_dim % input.ndim
    shape = tuple(input.shape[:start]) + (-1,) + tuple(input.shape[end + 1:])
    return npa.reshape(input, shape)


def unflatten(input, dim, sizes):
    """Split dimension `dim` into `sizes`."""
    dim = dim % input.ndim
    return npa.reshape(input, tuple(input.shape[:dim]) + tuple(sizes) + tuple(input.shape[dim + 1:]))


def transpose(input, dim0, dim1):
    return npa.swapaxes(input, dim0, dim1)


def permute(input, *dims):
    return npa.transpose(input, _size(dims))


def unsqueeze(input, dim):
    return npa.expand_dims(input, dim)


def squeeze(input, dim=None):
    if dim is not None:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = tuple(d for d in dims if input.shape[d] == 1)  # torch ignores non-1 dims
        return npa.squeeze(input, dims) if dims else input
    return npa.squeeze(input)


def flip(input, dims):
    return npa.flip(input, tuple(dims) if not isinstance(dims, int) else dims)


def tril(input, diagonal=0):
    return npa.tril(input, diagonal)


def triu(input, diagonal=0):
    return npa.triu(input, diagonal)


def repeat_interleave(input, repeats, dim=None):
    return npa.repeat(input, repeats, dim)


# indexing

def gather(input, dim, index):
    """out[i][j] = input[i][index[i][j]] along `dim` (the same as take_along_axis)."""
    return npa.take_along_axis(input, index, dim)


def index_select(input, dim, index):
    return npa.take(input, index, axis=dim)


def narrow(input, dim, start, length):
    return npa.slice_axis(input, dim, start, start + length)


def masked_fill(input, mask, value):
    """`input` with `value` where `mask` is true."""
    return ew.where(mask, np.asarray(value, dtype=input.dtype) if not hasattr(value, "shape") else value, input)


def where(condition, input, other):
    return ew.where(condition, input, other)


# math

def matmul(input, other):
    return npa.matmul(input, other)


def mm(input, mat2):
    return npa.matmul(input, mat2)


def bmm(input, mat2):
    if input.ndim != 3 or mat2.ndim != 3:
        raise AvalonError(f"bmm expects two 3-D arrays, got shapes {tuple(input.shape)} and {tuple(mat2.shape)}")
    return npa.matmul(input, mat2)


def einsum(equation, *operands):
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return npa.einsum(equation, *operands)


def outer(input, vec2):
    return npa.outer(input, vec2)


def clamp(input, min=None, max=None):
    """`input` limited to [min, max] (either may be None)."""
    return ew.clip(input, min, max)


clip = clamp


def pow(input, exponent):
    return ew.power(input, exponent)


def sum(input, dim=None, keepdim=False, dtype=None, **kw):
    dim, keepdim = _dim(dim, keepdim, kw)
    return npa.sum(input, axis=dim, keepdims=keepdim, dtype=dtype)


def mean(input, dim=None, keepdim=False, dtype=None, **kw):
    dim, keepdim = _dim(dim, keepdim, kw)
    return npa.mean(input, axis=dim, keepdims=keepdim, dtype=dtype)


def prod(input, dim=None, keepdim=False, dtype=None, **kw):
    dim, keepdim = _dim(dim, keepdim, kw)
    return npa.prod(input, axis=dim, keepdims=keepdim, dtype=dtype)


def _extreme(reduce, arg, input, dim, keepdim, kw):
    dim, keepdim = _dim(dim, keepdim, kw)
    if dim is None:
        return reduce(input)
    return values_indices(reduce(input, axis=dim, keepdims=keepdim), arg(input, axis=dim, keepdims=keepdim))


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


def amax(input, dim=None, keepdim=False, **kw):
    dim, keepdim = _dim(dim, keepdim, kw)
    return npa.max(input, axis=dim, keepdims=keepdim)


def amin(input, dim=None, keepdim=False, **kw):
    dim, keepdim = _dim(dim, keepdim, kw)
    return npa.min(input, axis=dim, keepdims=keepdim)


def argmax(input, dim=None, keepdim=False, **kw):
    dim, keepdim = _dim(dim, keepdim, kw)
    return npa.argmax(input, axis=dim, keepdims=keepdim)


def argmin(input, dim=None, keepdim=False, **kw):
    dim, keepdim = _dim(dim, keepdim, kw)
    return npa.argmin(input, axis=dim, keepdims=keepdim)


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
    return npa.logsumexp(input, axis=dim, keepdims=keepdim)


def cumsum(input, dim, dtype=None):
    return npa.cumsum(input, axis=dim, dtype=dtype)


def cumprod(input, dim, dtype=None):
    return npa.cumprod(input, axis=dim, dtype=dtype)


def norm(input, p="fro", dim=None, keepdim=False):
    if p not in ("fro", 2, 2.0):
        raise AvalonError(f"norm: p={p!r} has no rule; only the 2-norm")
    return ew.sqrt(npa.sum(input * input, axis=dim, keepdims=keepdim))


def softmax(input, dim, dtype=None):
    """exp(x) / sum(exp(x)) along `dim` (one fused primitive)."""
    input = npa._cast(input, dtype)
    return nn_ops.softmax(input, axis=dim % input.ndim)


def log_softmax(input, dim, dtype=None):
    """x - logsumexp(x) along `dim` (one fused primitive)."""
    input = npa._cast(input, dtype)
    return nn_ops.log_softmax(input, axis=dim % input.ndim)


def detach(input):
    """`input` with no gradient flowing back through it."""
    return nn_ops.stop_gradient(input)


stop_gradient = detach


def maximum(input, other):
    return ew.maximum(input, other)


def minimum(input, other):
    return ew.minimum(input, other)


def _unary(prim, name):
    def fn(input):
        return prim(input)

    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name}."
    return fn


relu = _unary(ew.relu, "relu")
sigmoid = _unary(ew.sigmoid, "sigmoid")
tanh = _unary(ew.tanh, "tanh")
exp = _unary(ew.exp, "exp")
exp2 = _unary(ew.exp2, "exp2")
log = _unary(ew.log, "log")
log2 = _unary(ew.log2, "log2")
log10 = _unary(ew.log10, "log10")
log1p = _unary(ew.log1p, "log1p")
expm1 = _unary(ew.expm1, "expm1")
sqrt = _unary(ew.sqrt, "sqrt")
rsqrt = _unary(lambda x: ew.reciprocal(ew.sqrt(x)), "rsqrt")
square = _unary(ew.square, "square")
reciprocal = _unary(ew.reciprocal, "reciprocal")
abs = _unary(ew.absolute, "abs")
neg = negative = _unary(ew.negative, "neg")
sign = _unary(ew.sign, "sign")
sin = _unary(ew.sin, "sin")
cos = _unary(ew.cos, "cos")
tan = _unary(ew.tan, "tan")
asin = arcsin = _unary(ew.arcsin, "asin")
acos = arccos = _unary(ew.arccos, "acos")
atan = arctan = _unary(ew.arctan, "atan")
sinh = _unary(ew.sinh, "sinh")
cosh = _unary(ew.cosh, "cosh")
floor = _unary(ew.floor, "floor")
ceil = _unary(ew.ceil, "ceil")
round = _unary(ew.rint, "round")
isfinite = _unary(ew.isfinite, "isfinite")
isnan = _unary(ew.isnan, "isnan")
isinf = _unary(ew.isinf, "isinf")


def atan2(input, other):
    return ew.arctan2(input, other)


def numel(input):
    return int(np.prod(input.shape))


def is_tensor(obj):
    from .backend import is_array
    from .tracing.tracer import Tracer

    return is_array(obj) or isinstance(obj, Tracer)

