"""Activation layers: each a Module around the function of the same name in `nn.functional`, with
PyTorch's constructor arguments, defaults and repr."""
import numpy as np

from .. import functional as F
from ..errors import array_input
from ..module import Module, Parameter

__all__ = ["ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh",
           "Hardtanh", "Hardsigmoid", "Hardswish", "Softplus", "Softsign", "Softmax", "Softmin", "LogSoftmax",
           "LogSigmoid", "PReLU", "Threshold", "GLU", "Hardshrink", "Softshrink", "Tanhshrink"]


# Every class below is a direct subclass of Module (ReLU6 of Hardtanh), as in PyTorch, so
# `isinstance(layer, nn.ReLU)` picks out exactly the ReLUs; layers with the same options share their
# methods through these functions rather than through a common base class.

def _applying(function, *options):
    """The `forward` of a layer that is `function(input, *options)`, each option read from the layer."""

    def forward(self, input):
        array_input(self.layer_name(), input, floating=False)
        return function(input, *(getattr(self, name) for name in options))

    return forward


def _inplace_only(self, inplace=False):
    """`__init__` of a layer whose only option is PyTorch's `inplace` (accepted and shown in the repr;
    the result is always a new array)."""
    Module.__init__(self)
    self.inplace = inplace


def _inplace(module):
    return "inplace=True" if module.inplace else ""


def _alpha_and_inplace(self, alpha=1.0, inplace=False):
    """`__init__` of ELU and CELU."""
    Module.__init__(self)
    self.alpha, self.inplace = alpha, inplace


def _alpha_repr(module):
    return f"alpha={module.alpha}" + (", inplace=True" if module.inplace else "")


def _lambd(self, lambd=0.5):
    """`__init__` of Hardshrink and Softshrink."""
    Module.__init__(self)
    self.lambd = lambd


def _dim(self, dim=None):
    """`__init__` of Softmax, Softmin and LogSoftmax."""
    Module.__init__(self)
    self.dim = dim


def _dim_repr(module):
    return f"dim={module.dim}"


class ReLU(Module):
    """max(x, 0)."""

    __init__, extra_repr = _inplace_only, _inplace
    forward = _applying(F.relu)


class Hardtanh(Module):
    """x clipped to [min_val, max_val]."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class ReLU6(Hardtanh):
    """min(max(x, 0), 6)."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    extra_repr = _inplace


class LeakyReLU(Module):
    """x for x > 0, negative_slope·x otherwise."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """x for x > 0, alpha·(exp(x) - 1) otherwise."""

    __init__, extra_repr = _alpha_and_inplace, _alpha_repr
    forward = _applying(F.elu, "alpha")


class CELU(Module):
    """x for x > 0, alpha·(exp(x / alpha) - 1) otherwise."""

    __init__, extra_repr = _alpha_and_inplace, _alpha_repr
    forward = _applying(F.celu, "alpha")


class SELU(Module):
    """Scaled ELU with the self-normalising constants."""

    __init__, extra_repr = _inplace_only, _inplace
    forward = _applying(F.selu)


class GELU(Module):
    """x·Φ(x); `approximate='tanh'` uses the tanh approximation."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x·sigmoid(x)."""

    __init__, extra_repr = _inplace_only, _inplace
    forward = _applying(F.silu)


class Mish(Module):
    """x·tanh(softplus(x))."""

    __init__, extra_repr = _inplace_only, _inplace
    forward = _applying(F.mish)


class Hardsigmoid(Module):
    """relu6(x + 3) / 6."""

    __init__, extra_repr = _inplace_only, _inplace
    forward = _applying(F.hardsigmoid)


class Hardswish(Module):
    """x·relu6(x + 3) / 6."""

    __init__, extra_repr = _inplace_only, _inplace
    forward = _applying(F.hardswish)


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    forward = _applying(F.sigmoid)


class Tanh(Module):
    """Hyperbolic tangent."""

    forward = _applying(F.tanh)


class Softsign(Module):
    """x / (1 + |x|)."""

    forward = _applying(F.softsign)


class LogSigmoid(Module):
    """log(sigmoid(x))."""

    forward = _applying(F.logsigmoid)


class Tanhshrink(Module):
    """x - tanh(x)."""

    forward = _applying(F.tanhshrink)


class Threshold(Module):
    """x where x > threshold, else `value`."""

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):
        return F.threshold(input, self.threshold, self.value)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}" + (", inplace=True" if self.inplace else "")


class GLU(Module):
    """a·sigmoid(b) for the two halves a, b of the input along `dim`."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.glu(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Hardshrink(Module):
    """x where |x| > lambd, else 0."""

    __init__ = _lambd
    forward = _applying(F.hardshrink, "lambd")

    def extra_repr(self):
        return f"{self.lambd}"


class Softshrink(Module):
    """x shrunk towards 0 by lambd (0 within ±lambd)."""

    __init__, extra_repr = _lambd, Hardshrink.extra_repr
    forward = _applying(F.softshrink, "lambd")


class Softplus(Module):
    """log(1 + exp(beta·x)) / beta (x itself above `threshold`)."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    """exp(x) / sum(exp(x)) along `dim`."""

    __init__, extra_repr = _dim, _dim_repr
    forward = _applying(F.softmax, "dim")


class Softmin(Module):
    """softmax(-x) along `dim`."""

    __init__, extra_repr = _dim, _dim_repr
    forward = _applying(F.softmin, "dim")


class LogSoftmax(Module):
    """log(softmax(x)) along `dim`, computed stably."""

    __init__, extra_repr = _dim, _dim_repr
    forward = _applying(F.log_softmax, "dim")


class PReLU(Module):
    """x for x > 0, a·x otherwise, with a learned slope `a` (one, or one per channel), started at `init`."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(np.full((num_parameters,), init, dtype=dtype or np.float32))
        if device is not None:
            self.to(device)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"
