"""Elementwise arithmetic, activations, comparisons, casts and the softmax family."""
import numpy as np

from ... import erf as _erf
from ...nn import functional as F
from ...ops import elementwise as ew
from ..node import is_array_constant
from . import operator


def cast(x, dtype):
    dtype = np.dtype(dtype)
    if is_array_constant(x):
        return np.asarray(x).astype(dtype)
    return x if x.dtype == dtype else ew.astype(x, dtype=dtype)


@operator("Add")
def add(n, a, b):
    return a + b


@operator("Sub")
def sub(n, a, b):
    return a - b


@operator("Mul")
def mul(n, a, b):
    return a * b


@operator("Div")
def div(n, a, b):
    if np.issubdtype(a.dtype, np.integer):  # ONNX integer division truncates toward zero
        return np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))
    return a / b


@operator("Pow")
def power(n, a, b):
    return cast(a ** b, a.dtype)  # the result has the base's type


_UNARY = {"Neg": np.negative, "Abs": np.abs, "Sqrt": np.sqrt, "Exp": np.exp, "Log": np.log, "Tanh": np.tanh,
          "Reciprocal": np.reciprocal, "Floor": np.floor, "Ceil": np.ceil, "Sin": np.sin, "Cos": np.cos,
          "Erf": _erf, "Sigmoid": F.sigmoid, "Relu": F.relu, "Softsign": F.softsign}


@operator(*_UNARY)
def unary(n, x):
    return _UNARY[n.op_type](x)


@operator("LeakyRelu")
def leaky_relu(n, x):
    return F.leaky_relu(x, n.attr("alpha", 0.01))


@operator("Elu")
def elu(n, x):
    return F.elu(x, n.attr("alpha", 1.0))


@operator("Gelu")
def gelu(n, x):
    return F.gelu(x, approximate=n.attr("approximate", "none"))


@operator("HardSigmoid")
def hard_sigmoid(n, x):
    alpha, beta = n.attr("alpha", 0.2), n.attr("beta", 0.5)
    return np.minimum(np.maximum(x * alpha + beta, 0.0), 1.0)


@operator("HardSwish")
def hard_swish(n, x):
    return F.hardswish(x)


@operator("Softplus")
def softplus(n, x):
    return F.softplus(x)


def _along_axis(n, x, fn):
    """Softmax-like `fn(x, dim)`: before opset 13 over the input coerced to 2-D at `axis` (default 1),
    from 13 along `axis` (default -1)."""
    if n.opset >= 13:
        return fn(x, n.attr("axis", -1))
    axis = n.attr("axis", 1) % max(x.ndim, 1)
    rows = int(np.prod(x.shape[:axis], dtype=np.int64))
    return np.reshape(fn(np.reshape(x, (rows, -1)), 1), x.shape)


@operator("Softmax")
def softmax(n, x):
    return _along_axis(n, x, lambda v, d: F.softmax(v, dim=d))


@operator("LogSoftmax")
def log_softmax(n, x):
    return _along_axis(n, x, lambda v, d: F.log_softmax(v, dim=d))


@operator("Equal")
def equal(n, a, b):
    return a == b


@operator("Where")
def where(n, condition, a, b):
    return np.where(condition, a, b)


@operator("Cast")
def cast_op(n, x):
    from onnx.helper import tensor_dtype_to_np_dtype
    return cast(x, tensor_dtype_to_np_dtype(n.attr("to")))


@operator("Clip")
def clip(n, x, low=None, high=None):
    if n.opset < 11:
        low, high = n.attr("min"), n.attr("max")
    if low is not None:
        x = np.maximum(x, np.asarray(low, dtype=x.dtype) if is_array_constant(low) else low)
    if high is not None:
        x = np.minimum(x, np.asarray(high, dtype=x.dtype) if is_array_constant(high) else high)
    return x


@operator("Identity")
def identity(n, x):
    return x


@operator("Dropout")
def dropout(n, x, ratio=None, training_mode=None):
    """Dropout drops only when the module is in training mode (module.train()); an export's
    training_mode input says how it was exported, not how the imported model is used."""
    p = float(n.attr("ratio", 0.5) if ratio is None else n.constant(ratio, "the ratio"))
    if not (n.module.training and p > 0):
        return (x, np.ones(x.shape, dtype=bool)) if len(n.outputs) > 1 else x
    if len(n.outputs) > 1 and n.outputs[1]:
        raise n.error("Dropout's mask output is not supported in training mode")
    return F.dropout(x, p, training=True)


_VARIADIC = {"Max": np.maximum, "Min": np.minimum, "Sum": np.add}


@operator("Max", "Min", "Sum", "Mean")
def variadic(n, *xs):
    combine = _VARIADIC.get(n.op_type, np.add)
    y = xs[0]
    for x in xs[1:]:
        y = combine(y, x)
    return y / len(xs) if n.op_type == "Mean" else y


_COMPARE = {"Less": np.less, "LessOrEqual": np.less_equal, "Greater": np.greater,
            "GreaterOrEqual": np.greater_equal, "And": np.logical_and, "Or": np.logical_or,
            "Xor": np.logical_xor}


@operator(*_COMPARE)
def compare(n, a, b):
    return _COMPARE[n.op_type](a, b)


@operator("Not")
def logical_not(n, x):
    return np.logical_not(x)


@operator("Sign")
def sign(n, x):
    return np.sign(x)


@operator("PRelu")
def prelu(n, x, slope):
    if n.opset < 7 and slope.ndim == 1 and x.ndim > 2 and slope.shape[0] == x.shape[1] != 1:
        # before opset 7 a slope per channel lines up with axis 1 (numpy's broadcasting came with 7)
        slope = np.reshape(slope, (-1,) + (1,) * (x.ndim - 2))
    return np.where(x < 0, x * slope, x)


@operator("Selu")
def selu(n, x):
    alpha, gamma = n.attr("alpha", 1.67326319217681884765625), n.attr("gamma", 1.05070102214813232421875)
    return np.where(x > 0, x * gamma, (np.exp(np.minimum(x, 0.0)) - 1.0) * (alpha * gamma))


@operator("Celu")
def celu(n, x):
    return F.celu(x, n.attr("alpha", 1.0))


@operator("Mish")
def mish(n, x):
    return F.mish(x)


@operator("ThresholdedRelu")
def thresholded_relu(n, x):
    return np.where(x > n.attr("alpha", 1.0), x, np.zeros((), x.dtype))


@operator("CastLike")
def cast_like(n, x, target):
    return cast(x, target.dtype)


@operator("Mod")
def mod(n, a, b):
    """fmod=1: the remainder has the dividend's sign (C's fmod); fmod=0: the divisor's (Python's %)."""
    remainder = np.mod(a, b)
    if not n.attr("fmod", 0):
        return remainder
    # np.mod's remainder has b's sign; where that differs from a's, step back by b
    return np.where((remainder != 0) & ((remainder < 0) != (a < 0)), remainder - b, remainder)


_MORE_UNARY = {"Tan": np.tan, "Asin": np.arcsin, "Acos": np.arccos, "Atan": np.arctan, "Sinh": np.sinh,
               "Cosh": np.cosh, "Asinh": np.arcsinh, "Acosh": np.arccosh, "Atanh": np.arctanh, "Round": np.round,
               "IsNaN": np.isnan, "BitwiseNot": np.invert}


@operator(*_MORE_UNARY)
def more_unary(n, x):
    return _MORE_UNARY[n.op_type](x)


@operator("IsInf")
def is_inf(n, x):
    negative, positive = n.attr("detect_negative", 1), n.attr("detect_positive", 1)
    return np.isinf(x) & ((x < 0) if not positive else True) & ((x > 0) if not negative else True)


@operator("Swish")
def swish(n, x):
    return x * F.sigmoid(x * n.attr("alpha", 1.0))


_BITWISE = {"BitwiseAnd": np.bitwise_and, "BitwiseOr": np.bitwise_or, "BitwiseXor": np.bitwise_xor}


@operator(*_BITWISE)
def bitwise(n, a, b):
    return _BITWISE[n.op_type](a, b)


@operator("Hardmax")
def hardmax(n, x):
    """1 at the first maximum along `axis`, 0 elsewhere (before opset 13 over the input coerced to 2-D)."""
    def first_max(v, axis):
        top = np.argmax(v, axis=axis)
        positions = np.arange(v.shape[axis]).reshape([-1 if a == axis % v.ndim else 1 for a in range(v.ndim)])
        return cast(np.expand_dims(top, axis) == positions, v.dtype)
    return _along_axis(n, x, first_max)


@operator("LpNormalization")
def lp_normalization(n, x):
    axis, p = n.attr("axis", -1), n.attr("p", 2)
    norm = np.sum(np.abs(x), axis=axis, keepdims=True) if p == 1 else \
        np.sqrt(np.sum(x * x, axis=axis, keepdims=True))
    return x / np.where(norm == 0, np.ones((), x.dtype), norm)  # a zero vector stays zero


@operator("Shrink")
def shrink(n, x):
    lambd, bias = n.attr("lambd", 0.5), np.asarray(n.attr("bias", 0.0)).astype(x.dtype)
    zero = np.zeros((), x.dtype)
    return np.where(x < -lambd, x + bias, np.where(x > lambd, x - bias, zero))


@operator("SwiGLU")
def swiglu(n, gate, value):
    return gate * F.sigmoid(gate * np.asarray(n.attr("alpha", 1.0), gate.dtype)) * value


@operator("BitShift")
def bit_shift(n, x, y):
    """Shifts as products and floor divisions by powers of two (integers wrap as the bits do); an amount
    outside the type's bits gives what the sign alone gives: -1 for a negative right-shifted signed
    value, 0 otherwise."""
    bits, signed = x.dtype.itemsize * 8, np.issubdtype(x.dtype, np.signedinteger)
    right = n.attr("direction") == "RIGHT"
    # a signed right shift by bits-1 is the sign alone too, and 2**(bits-1) does not fit the type
    usable = (y >= 0) & (y < bits - (1 if right and signed else 0))
    powers = np.power(np.ones((), x.dtype) * 2, np.where(usable, y, np.zeros((), y.dtype)).astype(x.dtype))
    if not right:
        return np.where(usable, x * powers, np.zeros((), x.dtype))
    sign_only = np.where(x < 0, -np.ones((), x.dtype), np.zeros((), x.dtype)) if signed else np.zeros((), x.dtype)
    return np.where(usable, x // powers, sign_only)


@operator("BitCast")
def bit_cast(n, x):
    """The same bits read as the `to` type, which must be as wide (no value conversion)."""
    from onnx.helper import tensor_dtype_to_np_dtype
    dtype = np.dtype(tensor_dtype_to_np_dtype(n.attr("to")))
    if dtype.itemsize != x.dtype.itemsize:
        raise n.error(f"BitCast from {x.dtype} to {dtype} changes the width ({x.dtype.itemsize * 8} to "
                      f"{dtype.itemsize * 8} bits); the spec needs equal widths")
    return np.asarray(x).view(dtype) if is_array_constant(x) else ew.bitcast(x, dtype=dtype)
