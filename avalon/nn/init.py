"""Weight initialisers with PyTorch's names and signatures (`torch.nn.init`).

Each one fills an array in place and returns it, drawing from Avalon's generator
(`avalon.ops.random.generator()`, seeded by `avalon.manual_seed`), so layers built after the same
seed start from the same weights.

>>> w = np.empty((64, 32), np.float32)
>>> nn.init.kaiming_uniform_(w, a=math.sqrt(5))
"""
import math
import warnings

import numpy as np

from ..backend import device_of, namespace
from ..errors import AvalonError
from ..ops.random import generator


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (PyTorch's values): 1 for linear, conv and sigmoid,
    5/3 for tanh, √2 for relu, √(2 / (1 + slope²)) for leaky_relu (slope `param`, default 0.01),
    3/4 for selu."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise AvalonError(f"negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise AvalonError(f"unsupported nonlinearity {nonlinearity!r}: use one of {', '.join(linear)}, tanh, "
                      "relu, leaky_relu, selu")


def _calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise AvalonError(f"fan in and fan out cannot be computed for an array of shape {tuple(tensor.shape)}: "
                          "it needs at least 2 dimensions (out_features, in_features, *kernel)")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _no_values(tensor):
    """A zero-element array (`Linear(0, 3)`) has no fan to scale by: torch leaves it as it is, with a warning."""
    if tensor.size:
        return False
    warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
    return True


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise AvalonError(f"mode {mode!r} is not supported: use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values):
    tensor[...] = namespace(tensor).asarray(values).astype(tensor.dtype, copy=False)
    return tensor


def _random(tensor):
    return generator(device_of(tensor)).random(tuple(tensor.shape))


def _standard_normal(tensor):
    return generator(device_of(tensor)).standard_normal(tuple(tensor.shape))


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with values drawn uniformly from [a, b)."""
    return _fill(tensor, a + (b - a) * _random(tensor))


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with values drawn from N(mean, std²)."""
    return _fill(tensor, mean + std * _standard_normal(tensor))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """Fill with N(mean, std²) values redrawn until they fall in [a, b] (absolute bounds, as PyTorch)."""
    if not a < b:
        raise AvalonError(f"trunc_normal_ needs a < b, got a={a}, b={b}")
    xp = namespace(tensor)
    values = mean + std * _standard_normal(tensor)
    outside = (values < a) | (values > b)
    while bool(outside.any()):
        redraw = mean + std * generator(device_of(tensor)).standard_normal(int(outside.sum()))
        values[outside] = redraw
        outside = (values < a) | (values > b)
    return _fill(tensor, xp.asarray(values))


def constant_(tensor, val):
    """Fill with `val`."""
    tensor[...] = val
    return tensor


def zeros_(tensor):
    """Fill with zeros."""
    return constant_(tensor, 0)


def ones_(tensor):
    """Fill with ones."""
    return constant_(tensor, 1)


def eye_(tensor):
    """Fill a 2-D array with the identity (ones on the diagonal, zeros elsewhere)."""
    if tensor.ndim != 2:
        raise AvalonError(f"eye_ needs a 2-D array, got shape {tuple(tensor.shape)}")
    return _fill(tensor, namespace(tensor).eye(*tensor.shape))


def xavier_uniform_(tensor, gain=1.0):
    """Glorot uniform: U(-a, a) with a = gain·√(6 / (fan_in + fan_out))."""
    if _no_values(tensor):
        return tensor
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    """Glorot normal: N(0, std²) with std = gain·√(2 / (fan_in + fan_out))."""
    if _no_values(tensor):
        return tensor
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """He uniform: U(-b, b) with b = gain·√(3 / fan) (gain from `nonlinearity` and slope `a`)."""
    if _no_values(tensor):
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def _default_weight_and_bias_(weight, bias):
    """PyTorch's default initialisation of Linear and the convolutions: kaiming_uniform_(a=√5) for the
    weight, which is U(±1/√fan_in), and the same U(±1/√fan_in) for the bias (when there is one)."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """He normal: N(0, std²) with std = gain / √fan."""
    if _no_values(tensor):
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def orthogonal_(tensor, gain=1.0):
    """Fill with a (semi-)orthogonal matrix (trailing dimensions flattened), scaled by `gain`:
    rows orthonormal when there are fewer rows than columns, else columns."""
    if tensor.ndim < 2:
        raise AvalonError(f"orthogonal_ needs at least 2 dimensions, got shape {tuple(tensor.shape)}")
    xp = namespace(tensor)
    rows = tensor.shape[0]
    cols = int(np.prod(tensor.shape[1:]))
    flat = generator(device_of(tensor)).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = xp.linalg.qr(flat)
    q = q * xp.sign(xp.diagonal(r))  # makes the result uniformly distributed (Haar measure)
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * xp.reshape(q, tensor.shape))
