"""Convolution layers with PyTorch's constructors, defaults, initialisation and state_dict keys:
Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d."""
import numpy as np

from ...arguments import ArgumentError, whole
from ...errors import AvalonError
from .. import init
from ..functional import conv as Fc
from ..functional.vision import pad
from ..module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """What convolutions and transposed convolutions share: arguments, weight, bias, initialisation."""

    dims = 2
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, output_padding, groups,
                 bias, padding_mode, device, dtype):
        super().__init__()
        name, d = type(self).__name__, self.dims
        whole(name, "in_channels", in_channels), whole(name, "out_channels", out_channels)
        whole(name, "groups", groups, 1)
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ArgumentError(f"{name}: groups={groups} must be a positive divisor of in_channels={in_channels} "
                                f"and out_channels={out_channels}", fix="pick groups dividing both channel counts")
        if padding_mode not in _PADDING_MODES:
            raise ArgumentError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}",
                                fix=f"pass one of {_PADDING_MODES}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = Fc.ntuple(kernel_size, d, "kernel_size", name)
        self.stride = Fc.ntuple(stride, d, "stride", name)
        self.dilation = Fc.ntuple(dilation, d, "dilation", name)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ArgumentError(f"{name}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}",
                                    fix="pass padding=1 (an int), a tuple of ints, 'valid' or 'same'")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ArgumentError(f"{name}: padding='same' is not supported for strided convolutions "
                                    f"(stride={self.stride})", fix="give the padding as numbers, or use stride=1")
            self.padding = padding
        else:
            self.padding = Fc.ntuple(padding, d, "padding", name)
        self.output_padding = Fc.ntuple(output_padding, d, "output_padding", name)
        self.groups = groups
        self.padding_mode = padding_mode
        pairs = Fc.conv_padding(self.padding, self.kernel_size, self.stride, self.dilation, name)
        # F.pad's argument for the non-zero padding modes: last dimension first
        self._reversed_padding_repeated_twice = tuple(v for pair in reversed(pairs) for v in pair)
        shape = (in_channels, out_channels // groups) if self.transposed else (out_channels, in_channels // groups)
        dtype = np.dtype(dtype or np.float32)
        self.weight = Parameter(np.empty(shape + self.kernel_size, dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty((out_channels,), dtype=dtype)) if bias else None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """PyTorch's default initialisation: kaiming_uniform_(a=√5) for the weight, U(±1/√fan_in) for the bias."""
        init._default_weight_and_bias_(self.weight, self.bias)

    def extra_repr(self):
        d = self.dims
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * d:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * d:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * d:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 0, groups, bias,
                         padding_mode, device, dtype)

    def forward(self, input):
        d = self.dims
        Fc.check_channels(self.layer_name(), input, d, self.in_channels)
        padding = self.padding
        if self.padding_mode != "zeros":
            input, padding = pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode), 0
        return Fc.convolution(d, self.layer_name(), input, self.weight, self.bias, self.stride, padding,
                              self.dilation, self.groups)


class Conv1d(_Conv):
    """1-d convolution over (N, C_in, L) → (N, C_out, L_out); weight (C_out, C_in/groups, k)."""

    dims = 1


class Conv2d(_Conv):
    """2-d convolution over (N, C_in, H, W) → (N, C_out, H_out, W_out); weight (C_out, C_in/groups, kH, kW).

    >>> conv = nn.Conv2d(3, 16, kernel_size=3, padding="same")
    """

    dims = 2


class Conv3d(_Conv):
    """3-d convolution over (N, C_in, D, H, W); weight (C_out, C_in/groups, kD, kH, kW)."""

    dims = 3


class _ConvTranspose(_ConvNd):
    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise AvalonError(f"{type(self).__name__}: only padding_mode='zeros' is supported, as torch")
        if isinstance(padding, str):
            raise AvalonError(f"{type(self).__name__}: padding must be an int or a tuple, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, output_padding, groups,
                         bias, padding_mode, device, dtype)

    def _output_padding(self, input, output_size):
        """torch's output_padding for a requested `output_size` (the trailing sizes are used)."""
        d = self.dims
        wanted = tuple(output_size)[-d:]
        if len(wanted) != d:
            raise AvalonError(f"{self.layer_name()}: output_size must have at least {d} entries, got {output_size!r}")
        result = []
        for a in range(d):
            smallest = (input.shape[input.ndim - d + a] - 1) * self.stride[a] - 2 * self.padding[a] \
                + self.dilation[a] * (self.kernel_size[a] - 1) + 1
            if not smallest <= wanted[a] < smallest + self.stride[a]:
                raise AvalonError(f"{self.layer_name()}: requested an output size of {wanted}, but valid sizes "
                                  f"range from {smallest} to {smallest + self.stride[a] - 1} along spatial axis {a}")
            result.append(wanted[a] - smallest)
        return tuple(result)

    def forward(self, input, output_size=None):
        d = self.dims
        Fc.check_channels(self.layer_name(), input, d, self.in_channels)
        output_padding = self.output_padding if output_size is None else self._output_padding(input, output_size)
        return Fc.transposed_convolution(d, self.layer_name(), input, self.weight, self.bias, self.stride,
                                         self.padding, output_padding, self.groups, self.dilation)


class ConvTranspose1d(_ConvTranspose):
    """1-d transposed convolution (N, C_in, L) → (N, C_out, L_out); weight (C_in, C_out/groups, k)."""

    dims = 1


class ConvTranspose2d(_ConvTranspose):
    """2-d transposed convolution, the adjoint of Conv2d: (N, C_in, H, W) → (N, C_out, H_out, W_out) with
    H_out = (H - 1)·stride - 2·padding + dilation·(k - 1) + output_padding + 1; weight (C_in, C_out/groups, kH, kW)."""

    dims = 2


class ConvTranspose3d(_ConvTranspose):
    """3-d transposed convolution; weight (C_in, C_out/groups, kD, kH, kW)."""

    dims = 3
