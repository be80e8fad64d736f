"""Activation layers: each a Module around the function of the same name in `nn.functional`, with
PyTorch's constructor arguments, defaults and repr."""
import numpy as np

from .. import functional as F
from ..module import Module, Parameter

__all__ = ["ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh",
           "Hardtanh", "Hardsigmoid", "Hardswish", "Softplus", "Softsign", "Softmax", "Softmin", "LogSoftmax",
           "LogSigmoid", "PReLU", "Threshold", "GLU", "Hardshrink", "Softshrink", "Tanhshrink"]


def _inplace(module):
    return "inplace=True" if module.inplace else ""


class _Parameterless(Module):
    """An activation without options: `forward` applies the class's `function`."""

    function = None

    def forward(self, input):
        return type(self).function(input)


class _InplaceOnly(_Parameterless):
    """An activation whose only option is PyTorch's `inplace` (accepted and shown in the repr; the result
    is always a new array)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    extra_repr = _inplace


class ReLU(_InplaceOnly):
    """max(x, 0)."""

    function = staticmethod(F.relu)


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

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return F.elu(input, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(ELU):
    """x for x > 0, alpha·(exp(x / alpha) - 1) otherwise."""

    def forward(self, input):
        return F.celu(input, self.alpha)


class SELU(_InplaceOnly):
    """Scaled ELU with the self-normalising constants."""

    function = staticmethod(F.selu)


class GELU(Module):
    """x·Φ(x); `approximate='tanh'` uses the tanh approximation."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(ReLU):
    """x·sigmoid(x)."""

    function = staticmethod(F.silu)


class Mish(ReLU):
    """x·tanh(softplus(x))."""

    function = staticmethod(F.mish)


class Hardsigmoid(ReLU):
    """relu6(x + 3) / 6."""

    function = staticmethod(F.hardsigmoid)


class Hardswish(ReLU):
    """x·relu6(x + 3) / 6."""

    function = staticmethod(F.hardswish)


class Sigmoid(_Parameterless):
    """1 / (1 + exp(-x))."""

    function = staticmethod(F.sigmoid)


class Tanh(_Parameterless):
    """Hyperbolic tangent."""

    function = staticmethod(F.tanh)


class Softsign(_Parameterless):
    """x / (1 + |x|)."""

    function = staticmethod(F.softsign)


class LogSigmoid(_Parameterless):
    """log(sigmoid(x))."""

    function = staticmethod(F.logsigmoid)


class Tanhshrink(_Parameterless):
    """x - tanh(x)."""

    function = staticmethod(F.tanhshrink)


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

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):
        return F.hardshrink(input, self.lambd)

    def extra_repr(self):
        return f"{self.lambd}"


class Softshrink(Hardshrink):
    """x shrunk towards 0 by lambd (0 within ±lambd)."""

    def forward(self, input):
        return F.softshrink(input, self.lambd)


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

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmin(Softmax):
    """softmax(-x) along `dim`."""

    def forward(self, input):
        return F.softmin(input, self.dim)


class LogSoftmax(Softmax):
    """log(softmax(x)) along `dim`, computed stably."""

    def forward(self, input):
        return F.log_softmax(input, self.dim)


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
