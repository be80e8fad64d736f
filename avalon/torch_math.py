"""PyTorch's elementwise math, linear algebra and activations under their torch names, on plain
arrays and tracers alike (exported as `avalon.*` through `avalon.torch_api`)."""
import warnings

import numpy as np

from . import axes as dimcheck
from . import numpy_api as npa
from .errors import AvalonError, DtypeError, ShapeError
from .numpy_ufuncs import UFUNCS
from .ops import elementwise as ew
from .ops import nn as nn_ops


def _unary(prim, name):
    def fn(input):
        return prim(input)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise {name} (torch.{name})."
    fn.primitive = prim  # what @avalon.rule(avalon.tanh) gives a rule to
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
abs = absolute = _unary(ew.absolute, "abs")
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
asinh = arcsinh = _unary(ew.arcsinh, "asinh")
acosh = arccosh = _unary(ew.arccosh, "acosh")
atanh = arctanh = _unary(ew.arctanh, "atanh")
floor = _unary(ew.floor, "floor")
ceil = _unary(ew.ceil, "ceil")
trunc = _unary(ew.trunc, "trunc")
isfinite = _unary(ew.isfinite, "isfinite")
isnan = _unary(ew.isnan, "isnan")
isinf = _unary(ew.isinf, "isinf")
logical_not = _unary(ew.logical_not, "logical_not")


def round(input, decimals=0):
    """Round half to even, to `decimals` places (no gradient: piecewise constant)."""
    return npa.round(input, decimals)


def _binary(prim, name):
    def fn(input, other):
        return prim(input, other)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise {name} of two arrays or numbers (torch.{name})."
    fn.primitive = prim  # what @avalon.rule(avalon.maximum) gives a rule to
    return fn


maximum = _binary(ew.maximum, "maximum")
minimum = _binary(ew.minimum, "minimum")
atan2 = arctan2 = _binary(ew.arctan2, "atan2")
remainder = _binary(ew.remainder, "remainder")
floor_divide = _binary(ew.floor_divide, "floor_divide")
logaddexp = _binary(UFUNCS[np.logaddexp], "logaddexp")
eq = _binary(ew.equal, "eq")
ne = _binary(ew.not_equal, "ne")
lt = _binary(ew.less, "lt")
le = _binary(ew.less_equal, "le")
gt = _binary(ew.greater, "gt")
ge = _binary(ew.greater_equal, "ge")
logical_and = _binary(ew.logical_and, "logical_and")
logical_or = _binary(ew.logical_or, "logical_or")
logical_xor = _binary(ew.logical_xor, "logical_xor")
mul = multiply = _binary(ew.multiply, "mul")
div = divide = true_divide = _binary(ew.divide, "div")


def add(input, other, alpha=1):
    """input + alpha * other."""
    return ew.add(input, other if alpha == 1 else other * alpha)


def sub(input, other, alpha=1):
    """input - alpha * other."""
    return ew.subtract(input, other if alpha == 1 else other * alpha)


subtract = sub


def pow(input, exponent):
    """input ** exponent."""
    return ew.power(input, exponent)


def clamp(input, min=None, max=None):
    """`input` limited to [min, max] (either may be None)."""
    return ew.clip(input, min, max)


clip = clamp


def lerp(input, end, weight):
    """input + weight * (end - input)."""
    return input + weight * (end - input)


def addcmul(input, tensor1, tensor2, value=1):
    """input + value * tensor1 * tensor2."""
    return input + value * tensor1 * tensor2


def addcdiv(input, tensor1, tensor2, value=1):
    """input + value * tensor1 / tensor2."""
    return input + value * tensor1 / tensor2


# linear algebra

def matmul(input, other):
    """Matrix product with numpy's (and torch's) broadcasting and 1-D rules."""
    return npa.matmul(input, other)


def mm(input, mat2):
    """The product of two matrices."""
    _need(2, "mm", input, mat2)
    return npa.matmul(input, mat2)


def spmm(input, mat2):
    """torch.spmm: the product of a (sparse, in torch) matrix and a dense one. Avalon's arrays are
    dense, so it is `mm`."""
    _need(2, "spmm", input, mat2)
    return npa.matmul(input, mat2)


def bmm(input, mat2):
    """Batched matrix product of two 3-D arrays."""
    _need(3, "bmm", input, mat2)
    return npa.matmul(input, mat2)


def mv(input, vec):
    """Matrix-vector product."""
    return npa.matmul(input, vec)


def dot(input, other):
    """Inner product of two 1-D arrays."""
    _need(1, "dot", input, other)
    return npa.sum(input * other)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2)."""
    product = mm(mat1, mat2)
    return (input if beta == 1 else input * beta) + (product if alpha == 1 else product * alpha)


def _need(ndim, name, *arrays):
    if any(a.ndim != ndim for a in arrays):
        shapes = " and ".join(str(tuple(a.shape)) for a in arrays)
        raise ShapeError(f"{name} expects {ndim}-D arrays, got shapes {shapes}")


def einsum(equation, *operands):
    """Einstein summation (`einsum("bij,bjk->bik", a, b)`; operands may also come as one list)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return npa.einsum(equation, *operands)


def outer(input, vec2):
    """Outer product of two 1-D arrays."""
    return npa.outer(input, vec2)


def meshgrid(*tensors, indexing=None):
    """Coordinate grids from 1-D (or 0-D) arrays, given one by one or as one list: for n arrays of
    lengths L1 … Ln, n arrays of shape (L1, …, Ln) ('ij', the default) or, with `indexing='xy'`,
    with the first two dimensions swapped (numpy's and matplotlib's x, y). As torch, leaving
    `indexing` out warns (the default may change there); pass it to say which you mean.

    >>> ii, jj = avalon.meshgrid(avalon.arange(H), avalon.arange(W), indexing="ij")
    """
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("avalon.meshgrid: pass the indexing argument (indexing='ij' is the default used now, "
                      "indexing='xy' swaps the first two dimensions), as torch will require", UserWarning,
                      stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise AvalonError(f"meshgrid: indexing must be 'ij' or 'xy', not {indexing!r}")
    if not tensors:
        raise ShapeError("meshgrid needs at least one array")
    if any(t.ndim > 1 for t in tensors):
        raise ShapeError(f"meshgrid takes 0-D or 1-D arrays, got shapes {[tuple(t.shape) for t in tensors]}",
                         fix="flatten them first (x.reshape(-1))")
    if len({np.dtype(t.dtype) for t in tensors}) > 1:
        raise DtypeError(f"meshgrid: the arrays must have one dtype, got {[str(t.dtype) for t in tensors]}")
    axes = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        axes[0], axes[1] = 1, 0
    lengths = [1 if t.ndim == 0 else t.shape[0] for t in tensors]
    shape = [0] * len(tensors)
    for axis, length in zip(axes, lengths):
        shape[axis] = length
    grids = []
    for t, axis, length in zip(tensors, axes, lengths):
        along = [1] * len(tensors)
        along[axis] = length
        grids.append(npa.broadcast_to(npa.reshape(t, tuple(along)), tuple(shape)))
    return tuple(grids)


def norm(input, p="fro", dim=None, keepdim=False):
    """The 2-norm (Frobenius norm) over `dim` (all dimensions when None)."""
    if p not in ("fro", 2, 2.0):
        from .tracing.context import refuse

        refuse(f"avalon.norm(..., p={p!r})", "only the 2-norm has a rule here",
               "write it out: `avalon.abs(x).sum(dim)` for p=1, `avalon.abs(x).amax(dim)` for p=inf",
               lambda: None)
    return ew.sqrt(npa.sum(input * input, axis=dim, keepdims=keepdim))


# activations and the nn-flavoured functions

def softmax(input, dim, dtype=None):
    """exp(x) / sum(exp(x)) along `dim` (one fused primitive)."""
    input = npa._cast(input, dtype)
    return nn_ops.softmax(input, axis=dimcheck.axis(dim, input.ndim, "softmax", input.shape))


def log_softmax(input, dim, dtype=None):
    """x - logsumexp(x) along `dim` (one fused primitive)."""
    input = npa._cast(input, dtype)
    return nn_ops.log_softmax(input, axis=dimcheck.axis(dim, input.ndim, "log_softmax", input.shape))


def detach(input):
    """`input` with no gradient flowing back through it."""
    return nn_ops.stop_gradient(input)


stop_gradient = detach


__all__ = [
    "relu", "sigmoid", "tanh", "exp", "exp2", "log", "log2", "log10", "log1p", "expm1", "sqrt", "rsqrt",
    "square", "reciprocal", "abs", "absolute", "neg", "negative", "sign", "sin", "cos", "tan", "asin",
    "arcsin", "acos", "arccos", "atan", "arctan", "sinh", "cosh", "asinh", "arcsinh", "acosh", "arccosh",
    "atanh", "arctanh", "floor", "ceil", "trunc", "isfinite", "isnan", "isinf", "logical_not", "round",
    "maximum", "minimum", "atan2", "arctan2", "remainder", "floor_divide", "logaddexp", "eq", "ne", "lt",
    "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "mul", "multiply", "div", "divide",
    "true_divide", "add", "sub", "subtract", "pow", "clamp", "clip", "lerp", "addcmul", "addcdiv",
    "matmul", "mm", "spmm", "bmm", "mv", "dot", "addmm", "einsum", "outer", "meshgrid", "norm", "softmax",
    "log_softmax", "detach", "stop_gradient",
]
