"""Pooling layers with PyTorch's constructors and reprs: MaxPool1d/2d/3d, AvgPool1d/2d/3d,
AdaptiveAvgPool1d/2d/3d, AdaptiveMaxPool1d/2d."""
from ..functional import pooling as P
from ..module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d"]


class _MaxPoolNd(Module):
    dims = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input):
        P.check_pool_input(self.layer_name(), input, self.dims)
        return P.max_pooling(self.dims, self.layer_name(), input, self.kernel_size, self.stride, self.padding,
                             self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Maximum over sliding windows of (N, C, L); stride defaults to kernel_size."""

    dims = 1


class MaxPool2d(_MaxPoolNd):
    """Maximum over sliding windows of (N, C, H, W); stride defaults to kernel_size.

    >>> pool = nn.MaxPool2d(2)          # halves H and W
    """

    dims = 2


class MaxPool3d(_MaxPoolNd):
    """Maximum over sliding windows of (N, C, D, H, W)."""

    dims = 3


class _AvgPoolNd(Module):
    dims = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input):
        P.check_pool_input(self.layer_name(), input, self.dims)
        return P.avg_pooling(self.dims, self.layer_name(), input, self.kernel_size, self.stride, self.padding,
                             self.ceil_mode, self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """Mean over sliding windows of (N, C, L) (arguments stored as 1-tuples, as torch)."""

    dims = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        def single(v):
            return v if isinstance(v, tuple) else (v,)

        super().__init__(single(kernel_size), single(stride if stride is not None else kernel_size), single(padding),
                         ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """Mean over sliding windows of (N, C, H, W); zero padding counts unless count_include_pad=False."""

    dims = 2


class AvgPool3d(_AvgPoolNd):
    """Mean over sliding windows of (N, C, D, H, W)."""

    dims = 3


class _AdaptivePool(Module):
    dims = 2

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def extra_repr(self):
        return f"output_size={self.output_size}"


class _AdaptiveAvgPool(_AdaptivePool):
    def forward(self, input):
        P.check_pool_input(self.layer_name(), input, self.dims)
        return P.adaptive_avg_pooling(self.dims, self.layer_name(), input, self.output_size)


class AdaptiveAvgPool1d(_AdaptiveAvgPool):
    """Mean pooling of (N, C, L) to a fixed length, whatever L is."""

    dims = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPool):
    """Mean pooling of (N, C, H, W) to a fixed (h, w), whatever H and W are (None keeps a size).

    >>> gap = nn.AdaptiveAvgPool2d(1)   # global average pooling
    """

    dims = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPool):
    """Mean pooling of (N, C, D, H, W) to a fixed size."""

    dims = 3


class _AdaptiveMaxPool(_AdaptivePool):
    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input):
        P.check_pool_input(self.layer_name(), input, self.dims)
        return P.adaptive_max_pooling(self.dims, self.layer_name(), input, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """Max pooling of (N, C, L) to a fixed length."""

    dims = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """Max pooling of (N, C, H, W) to a fixed (h, w)."""

    dims = 2
