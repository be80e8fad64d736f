"""numpy's ufuncs on tracers: `np.tanh(x)`, `a + b` with an ndarray on the left, `np.add.reduce(x)`.

`UFUNCS` maps each ufunc to a function of primitives with the ufunc's meaning. `apply` runs a ufunc
method (`__call__`, `reduce`, `accumulate`, `outer`) on tracers; it returns `UNSUPPORTED` with the
reason when the call has no rule, so the tracer can refuse it at the user's line.
"""
import math
from collections import namedtuple

import numpy as np

from . import numpy_api as npa
from .ops import elementwise as ew


def _float64(x):
    return ew.astype(x, dtype=np.dtype(np.float64)) if getattr(x, "dtype", None) != np.float64 else x


def _nan_ignoring(extreme):
    # fmax/fmin return the other operand where one is NaN (maximum/minimum propagate NaN).
    return lambda a, b: ew.where(ew.isnan(a), b, ew.where(ew.isnan(b), a, extreme(a, b)))


def _logaddexp(a, b):
    big = ew.maximum(a, b)
    big = ew.where(ew.isfinite(big), big, 0.0)
    return ew.log(ew.exp(a - big) + ew.exp(b - big)) + big


def _logaddexp2(a, b):
    return _logaddexp(a * math.log(2.0), b * math.log(2.0)) / math.log(2.0)


UFUNCS = {
    np.add: ew.add, np.subtract: ew.subtract, np.multiply: ew.multiply, np.divide: ew.divide,
    np.power: ew.power, np.float_power: lambda a, b: ew.power(_float64(a), _float64(b)),
    np.negative: ew.negative, np.positive: lambda x: x, np.floor_divide: ew.floor_divide,
    np.remainder: ew.remainder, np.maximum: ew.maximum, np.minimum: ew.minimum,
    np.fmax: _nan_ignoring(ew.maximum), np.fmin: _nan_ignoring(ew.minimum), np.arctan2: ew.arctan2,
    np.hypot: lambda a, b: ew.sqrt(a * a + b * b), np.logaddexp: _logaddexp, np.logaddexp2: _logaddexp2,
    np.exp: ew.exp, np.exp2: ew.exp2, np.log: ew.log, np.log2: ew.log2, np.log10: ew.log10,
    np.log1p: ew.log1p, np.expm1: ew.expm1, np.sqrt: ew.sqrt, np.square: ew.square,
    np.reciprocal: ew.reciprocal, np.absolute: ew.absolute, np.fabs: ew.absolute,
    np.sin: ew.sin, np.cos: ew.cos, np.tan: ew.tan, np.arcsin: ew.arcsin, np.arccos: ew.arccos,
    np.arctan: ew.arctan, np.sinh: ew.sinh, np.cosh: ew.cosh, np.tanh: ew.tanh,
    np.arcsinh: ew.arcsinh, np.arccosh: ew.arccosh, np.arctanh: ew.arctanh,
    np.deg2rad: lambda x: x * (math.pi / 180), np.rad2deg: lambda x: x * (180 / math.pi),
    np.sign: ew.sign, np.floor: ew.floor, np.ceil: ew.ceil, np.trunc: ew.trunc, np.rint: ew.rint,
    np.equal: ew.equal, np.not_equal: ew.not_equal, np.less: ew.less, np.less_equal: ew.less_equal,
    np.greater: ew.greater, np.greater_equal: ew.greater_equal, np.logical_and: ew.logical_and,
    np.logical_or: ew.logical_or, np.logical_xor: ew.logical_xor, np.logical_not: ew.logical_not,
    np.isfinite: ew.isfinite, np.isnan: ew.isnan, np.isinf: ew.isinf, np.bitwise_and: ew.bitwise_and,
    np.bitwise_or: ew.bitwise_or, np.bitwise_xor: ew.bitwise_xor, np.invert: ew.invert,
    np.matmul: lambda a, b: npa.matmul(a, b), np.vecdot: lambda a, b: npa.sum(a * b, axis=-1),
    np.matvec: lambda m, v: npa.matmul(m, npa.expand_dims(v, -1))[..., 0],
    np.vecmat: lambda v, m: npa.matmul(npa.expand_dims(v, -2), m)[..., 0, :],
}
UFUNCS[np.degrees], UFUNCS[np.radians] = UFUNCS[np.rad2deg], UFUNCS[np.deg2rad]

# ufunc.reduce and ufunc.accumulate that have a rule (numpy's default axis for both is 0)
REDUCE = {np.add: npa.sum, np.multiply: npa.prod, np.maximum: npa.max, np.minimum: npa.min,
          np.logical_and: npa.all, np.logical_or: npa.any}
ACCUMULATE = {np.add: npa.cumsum, np.multiply: npa.cumprod}

# Keywords every call may carry with these values (numpy's defaults); any other value has no rule.
_DEFAULTS = {"casting": "same_kind", "order": "K", "subok": True, "where": True, "signature": None}
_KEYWORDS = {"__call__": {"dtype"}, "reduce": {"axis", "dtype", "keepdims"},
             "accumulate": {"axis", "dtype"}, "outer": {"dtype"}}

Unsupported = namedtuple("Unsupported", ["construct", "why", "fix"])


def name(ufunc):
    """How the user reaches the ufunc: `np.tanh`, or `scipy.special.erf` for another library's."""
    if getattr(np, ufunc.__name__, None) is ufunc:
        return f"np.{ufunc.__name__}"
    from .tracing.source import public_name

    return public_name(ufunc)


def _bad_keyword(ufunc, method, kwargs):
    allowed = _KEYWORDS.get(method, set())
    for key, value in kwargs.items():
        if key in allowed or (key in _DEFAULTS and _same(value, _DEFAULTS[key])):
            continue
        call = name(ufunc) + ("" if method == "__call__" else f".{method}")
        fix = "select afterwards instead: `np.where(mask, f(x), other)`" if key == "where" else \
            "leave the keyword out, or compute the same thing with functions that have rules"
        return Unsupported(f"{call}(..., {key}=...) in traced code",
                           f"Avalon's rule for {name(ufunc)} covers its plain form, not {key}=", fix)
    return None


def _same(value, default):
    return value is default if default is None or isinstance(default, bool) else value == default


def apply(ufunc, method, inputs, kwargs, elementwise):
    """`getattr(ufunc, method)(*inputs, **kwargs)` recorded with primitives; an `Unsupported` for a
    keyword that has no rule, None for a ufunc or method that has none.

    `elementwise` is the function of primitives for the plain call (from `UFUNCS` or a user rule).
    """
    bad = _bad_keyword(ufunc, method, kwargs)
    if bad is not None:
        return bad
    dtype = kwargs.pop("dtype", None)
    if method == "__call__" and elementwise is not None:
        return elementwise(*(npa._cast(x, dtype) if hasattr(x, "dtype") else x for x in inputs))
    if method == "reduce" and ufunc in REDUCE:
        return REDUCE[ufunc](npa._cast(inputs[0], dtype), axis=kwargs.get("axis", 0),
                             keepdims=kwargs.get("keepdims", False))
    if method == "accumulate" and ufunc in ACCUMULATE:
        return ACCUMULATE[ufunc](inputs[0], axis=kwargs.get("axis", 0), dtype=dtype)
    if method == "outer" and elementwise is not None and len(inputs) == 2:
        a, b = inputs
        if _ndim(a) and _ndim(b):  # a's axes first, then b's: a gets b.ndim trailing axes of length 1
            a = npa.reshape(a, tuple(a.shape) + (1,) * _ndim(b))
        return npa._cast(elementwise(a, b), dtype)
    return None


def _ndim(x):
    return len(getattr(x, "shape", ()))
