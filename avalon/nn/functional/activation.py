"""Activation functions with PyTorch's names, signatures and defaults (`torch.nn.functional`).

They work on plain arrays and on tracers alike. Each is written with primitives whose rules give
PyTorch's gradient, including at the kinks (relu'(0) = 0, hardtanh' = 0 on its bounds). Branches that
`where` discards are computed on clamped arguments, so an overflow there never turns a zero gradient
into NaN. `inplace=` is accepted for source compatibility; the result is always a new array.
"""
import math

from ... import axes as dimcheck
from ... import numpy_api as npa
from ... import torch_api as ta
from ...errors import AvalonError
from ...ops import elementwise as ew
from ...ops import nn as nn_ops
from ...ops import special

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

__all__ = ["relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "sigmoid", "tanh",
           "hardtanh", "hardsigmoid", "hardswish", "softplus", "softsign", "softmax", "log_softmax", "prelu",
           "logsigmoid", "softmin", "threshold", "glu", "hardshrink", "softshrink", "tanhshrink"]


def _nonpositive(x):
    # x where x <= 0, else 0: the safe argument of a branch used only there (no tie-splitting at 0)
    return ew.where(x > 0, 0.0, x)


def relu(input, inplace=False):
    """max(x, 0); the gradient at 0 is 0."""
    return ew.relu(input)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """x clipped to [min_val, max_val]; the gradient is 1 strictly inside, 0 elsewhere."""
    if min_val > max_val:
        raise AvalonError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    inside = ew.logical_and(input > min_val, input < max_val)
    # the clipped values carry no gradient, so the bounds themselves get none (as PyTorch)
    return ew.where(inside, input, nn_ops.stop_gradient(ew.clip(input, min_val, max_val)))


def relu6(input, inplace=False):
    """min(max(x, 0), 6)."""
    return hardtanh(input, 0.0, 6.0)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x for x > 0, negative_slope·x otherwise."""
    return ew.where(input > 0, input, input * negative_slope)


def elu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha·(exp(x) - 1) otherwise."""
    return ew.where(input > 0, input, alpha * ew.expm1(_nonpositive(input)))


def selu(input, inplace=False):
    """scale·elu(x, alpha) with the self-normalising constants."""
    return _SELU_SCALE * elu(input, _SELU_ALPHA)


def celu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha·(exp(x / alpha) - 1) otherwise."""
    if alpha == 0:
        raise AvalonError("celu: alpha must not be 0 (it divides x)")
    return ew.where(input > 0, input, alpha * ew.expm1(_nonpositive(input) / alpha))


def gelu(input, approximate="none"):
    """x·Φ(x) (exact, with erf), or its tanh approximation with `approximate='tanh'`."""
    if approximate == "none":
        return input * (0.5 * (1.0 + special.erf(input * (1.0 / math.sqrt(2.0)))))
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (input + 0.044715 * (input * input * input))
        return 0.5 * input * (1.0 + ew.tanh(inner))
    raise AvalonError(f"gelu: approximate={approximate!r} is not one of 'none', 'tanh'")


def sigmoid(input):
    """1 / (1 + exp(-x))."""
    return ew.sigmoid(input)


def tanh(input):
    """Hyperbolic tangent."""
    return ew.tanh(input)


def silu(input, inplace=False):
    """x·sigmoid(x) (also called swish)."""
    return input * ew.sigmoid(input)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta·x)) / beta, and x itself where beta·x > threshold (as PyTorch)."""
    scaled = input * beta
    smooth = ew.log1p(ew.exp(ew.where(scaled > threshold, 0.0, scaled))) / beta
    return ew.where(scaled > threshold, input, smooth)


def mish(input, inplace=False):
    """x·tanh(softplus(x))."""
    return input * ew.tanh(softplus(input))


def hardsigmoid(input, inplace=False):
    """relu6(x + 3) / 6."""
    return relu6(input + 3.0) / 6.0


def hardswish(input, inplace=False):
    """x·relu6(x + 3) / 6."""
    return input * hardsigmoid(input)


def softsign(input):
    """x / (1 + |x|)."""
    return input / (ew.absolute(input) + 1.0)


def logsigmoid(input):
    """log(sigmoid(x)) = -softplus(-x), computed stably."""
    return -softplus(-input)


def _softmax_dim(ndim):
    # PyTorch's choice when no dim is given (deprecated there, kept for old code)
    return 0 if ndim in (0, 1, 3) else 1


def _along_dim(primitive, input, dim, dtype):
    input = npa._cast(input, dtype)
    dim = _softmax_dim(input.ndim) if dim is None else dim
    return primitive(input, axis=dimcheck.axis(dim, input.ndim, primitive.name, input.shape))


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(x) / sum(exp(x)) along `dim` (one fused primitive); `dtype` casts the input first."""
    return _along_dim(nn_ops.softmax, input, dim, dtype)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """softmax(-x) along `dim`."""
    return softmax(-npa._cast(input, dtype), dim)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """x - logsumexp(x) along `dim` (one fused primitive); `dtype` casts the input first."""
    return _along_dim(nn_ops.log_softmax, input, dim, dtype)


def prelu(input, weight):
    """x for x > 0, weight·x otherwise; `weight` has one slope, or one per channel (dimension 1)."""
    if weight.ndim != 1:
        raise AvalonError(f"prelu: weight must be 1-D, got shape {tuple(weight.shape)}")
    count = weight.shape[0]
    if count != 1:
        channels = input.shape[1] if input.ndim >= 2 else input.shape[0] if input.ndim == 1 else 1
        if channels != count:
            raise AvalonError(f"prelu: {count} slopes for {channels} channels (input of shape "
                              f"{tuple(input.shape)}; channels are dimension 1)")
        if input.ndim >= 2:
            weight = weight.reshape((count,) + (1,) * (input.ndim - 2))
    return ew.where(input > 0, input, input * weight)


def threshold(input, threshold, value, inplace=False):
    """x where x > threshold, else `value`."""
    return ew.where(input > threshold, input, float(value))


def glu(input, dim=-1):
    """a·sigmoid(b), with a and b the two halves of `input` along `dim` (gated linear unit)."""
    if input.shape[dim] % 2:
        raise AvalonError(f"glu: dimension {dim} of the input (shape {tuple(input.shape)}) must have even "
                          "length, to be split in halves")
    a, b = ta.chunk(input, 2, dim)
    return a * ew.sigmoid(b)


def hardshrink(input, lambd=0.5):
    """x where |x| > lambd, else 0."""
    return ew.where(ew.absolute(input) > lambd, input, 0.0)


def softshrink(input, lambd=0.5):
    """x - lambd above lambd, x + lambd below -lambd, 0 in between."""
    shrunk = ew.where(input > lambd, input - lambd, input + lambd)
    return ew.where(ew.absolute(input) > lambd, shrunk, 0.0)


def tanhshrink(input):
    """x - tanh(x)."""
    return input - ew.tanh(input)
