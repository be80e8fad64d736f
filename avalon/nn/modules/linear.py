"""Affine layers and shape helpers: Linear, Bilinear, Identity, Flatten, Unflatten."""
import math

import numpy as np

from ... import torch_api as ta
from .. import functional as F
from .. import init
from ...arguments import whole
from ..errors import array_input
from ..module import Module, Parameter, shape_error

__all__ = ["Identity", "Linear", "Bilinear", "Flatten", "Unflatten"]


def _empty(shape, dtype):
    return np.empty(shape, dtype=dtype or np.float32)


class Identity(Module):
    """Returns its input unchanged (any constructor arguments are ignored, as PyTorch)."""

    _array_first = False  # anything passes through

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x·Wᵀ + b over the last dimension: (*, in_features) → (*, out_features).

    Initialised as PyTorch: W ~ kaiming_uniform_(a=√5), i.e. U(±1/√in_features), and the same bound for b.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        whole("Linear", "in_features", in_features), whole("Linear", "out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(_empty((out_features, in_features), dtype))
        self.register_parameter("bias", Parameter(_empty((out_features,), dtype)) if bias else None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """Draw new weights (PyTorch's default initialisation)."""
        init._default_weight_and_bias_(self.weight, self.bias)

    def forward(self, input):
        array_input(self.layer_name(), input)
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            raise shape_error(self, f"(*, {self.in_features})", input.shape,
                              "the last dimension must be in_features")
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Bilinear(Module):
    """y_k = x₁ᵀ·A_k·x₂ + b_k: (*, in1_features), (*, in2_features) → (*, out_features)."""

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        self.weight = Parameter(_empty((out_features, in1_features, in2_features), dtype))
        self.register_parameter("bias", Parameter(_empty((out_features,), dtype)) if bias else None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """Draw new weights: U(±1/√in1_features) for weight and bias, as PyTorch."""
        bound = 1 / math.sqrt(self.in1_features)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        if input1.ndim == 0 or input1.shape[-1] != self.in1_features:
            raise shape_error(self, f"(*, {self.in1_features}) for input1", input1.shape)
        if input2.ndim == 0 or input2.shape[-1] != self.in2_features:
            raise shape_error(self, f"(*, {self.in2_features}) for input2", input2.shape)
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class Flatten(Module):
    """Merges dimensions start_dim..end_dim into one (by default all but the batch dimension)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        ndim = max(input.ndim, 1)
        dims = (self.start_dim, self.end_dim)
        if not all(-ndim <= d < ndim for d in dims) or self.start_dim % ndim > self.end_dim % ndim:
            needed = max(d + 1 if d >= 0 else -d for d in dims)
            raise shape_error(self, f"at least {needed} dimensions, start_dim before end_dim", input.shape)
        return ta.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Splits dimension `dim` into `unflattened_size` (one entry may be -1)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input):
        size = self.unflattened_size
        known = int(np.prod([n for n in size if n != -1]))
        if not -input.ndim <= self.dim < input.ndim:
            raise shape_error(self, f"a dimension {self.dim}", input.shape)
        length = input.shape[self.dim]
        fits = length % known == 0 if -1 in size else length == known
        if not fits or known == 0:
            raise shape_error(self, f"dimension {self.dim} of length {known if -1 not in size else f'k·{known}'}",
                              input.shape, f"it is split into {size}")
        return ta.unflatten(input, self.dim, size)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
