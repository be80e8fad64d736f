"""Elementwise primitives: arithmetic, comparisons, transcendental functions, where, clip, casts.

Names are numpy's; each one is the namespace function of the same name (array-API spelling tried
first), so generated code calls `np.tanh` directly.
"""
from ..backend import namespace
from . import threads_split
from .primitive import namespace_function, primitive

_ufunc = dict(out=True)

# arithmetic
add = namespace_function("add", **_ufunc)
subtract = namespace_function("subtract", **_ufunc)
multiply = namespace_function("multiply", **_ufunc)
divide = namespace_function("divide", **_ufunc)
power = namespace_function("power", "pow", "power", **_ufunc)
negative = namespace_function("negative", **_ufunc)
floor_divide = namespace_function("floor_divide", differentiable=False, **_ufunc)
remainder = namespace_function("remainder", **_ufunc)
maximum = namespace_function("maximum", **_ufunc)
minimum = namespace_function("minimum", **_ufunc)
arctan2 = namespace_function("arctan2", "atan2", "arctan2", **_ufunc)

# one-argument functions
exp = namespace_function("exp", **_ufunc)
log = namespace_function("log", **_ufunc)
log2 = namespace_function("log2", **_ufunc)
log10 = namespace_function("log10", **_ufunc)
log1p = namespace_function("log1p", **_ufunc)
expm1 = namespace_function("expm1", **_ufunc)
sqrt = namespace_function("sqrt", **_ufunc)
square = namespace_function("square", **_ufunc)
reciprocal = namespace_function("reciprocal", "reciprocal", **_ufunc)
absolute = namespace_function("abs", "abs", "absolute", **_ufunc)
sin = namespace_function("sin", **_ufunc)
cos = namespace_function("cos", **_ufunc)
tan = namespace_function("tan", **_ufunc)
arcsin = namespace_function("arcsin", "asin", "arcsin", **_ufunc)
arccos = namespace_function("arccos", "acos", "arccos", **_ufunc)
arctan = namespace_function("arctan", "atan", "arctan", **_ufunc)
sinh = namespace_function("sinh", **_ufunc)
cosh = namespace_function("cosh", **_ufunc)
tanh = namespace_function("tanh", **_ufunc)
arcsinh = namespace_function("arcsinh", "asinh", "arcsinh", **_ufunc)
arccosh = namespace_function("arccosh", "acosh", "arccosh", **_ufunc)
arctanh = namespace_function("arctanh", "atanh", "arctanh", **_ufunc)

# piecewise constant: zero gradient almost everywhere, so no rule is needed
_flat = dict(differentiable=False, **_ufunc)
sign = namespace_function("sign", **_flat)
floor = namespace_function("floor", **_flat)
ceil = namespace_function("ceil", **_flat)
trunc = namespace_function("trunc", **_flat)
rint = namespace_function("rint", "round", **_flat)
equal = namespace_function("equal", **_flat)
not_equal = namespace_function("not_equal", **_flat)
less = namespace_function("less", **_flat)
less_equal = namespace_function("less_equal", **_flat)
greater = namespace_function("greater", **_flat)
greater_equal = namespace_function("greater_equal", **_flat)
logical_and = namespace_function("logical_and", **_flat)
logical_or = namespace_function("logical_or", **_flat)
logical_xor = namespace_function("logical_xor", **_flat)
logical_not = namespace_function("logical_not", **_flat)
isfinite = namespace_function("isfinite", **_flat)
isnan = namespace_function("isnan", **_flat)
isinf = namespace_function("isinf", **_flat)
bitwise_and = namespace_function("bitwise_and", **_flat)
bitwise_or = namespace_function("bitwise_or", **_flat)
bitwise_xor = namespace_function("bitwise_xor", **_flat)
invert = namespace_function("invert", "bitwise_invert", "invert", **_flat)

where = namespace_function("where")


@primitive("exp2", xp_name=("exp2",), out=True)
def exp2(x):
    """2 ** x (the array API has no exp2; there it is pow(2, x))."""
    xp = namespace(x)
    return xp.exp2(x) if hasattr(xp, "exp2") else xp.pow(2.0, x)


@primitive("clip")
def clip(x, lo, hi):
    """`x` limited to [lo, hi]; either bound may be None. Gradient flows where x is inside."""
    xp = namespace(x)
    if lo is not None:
        x = xp.maximum(x, lo)
    if hi is not None:
        x = xp.minimum(x, hi)
    return x


@primitive("sigmoid")
def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""
    xp = namespace(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


@primitive("relu", out=True)
def relu(x, out=None):
    """max(x, 0). `out=` (numpy, cupy) lets a replay write it into a dead buffer."""
    split = threads_split.like_x(lambda x, out: namespace(x).maximum(x, 0, out=out), x, out)  # both cores
    if split is not None:
        return split
    xp = namespace(x)
    return xp.maximum(x, 0) if out is None else xp.maximum(x, 0, out=out)


@primitive("astype")
def astype(x, dtype):
    """`x` converted to `dtype` (a copy)."""
    xp = namespace(x)
    return xp.astype(x, dtype) if hasattr(xp, "astype") else x.astype(dtype)


@primitive("bitcast", view=True, differentiable=False)
def bitcast(x, dtype):
    """`x`'s bits read as `dtype`, of the same width, without converting values (ONNX's BitCast)."""
    return x.view(dtype)
