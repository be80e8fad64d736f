"""Pooling with torch.nn.functional's names and signatures: max_pool1d/2d/3d, avg_pool1d/2d/3d,
adaptive_avg_pool1d/2d/3d, adaptive_max_pool1d/2d.

Pooling acts on the trailing spatial axes, so (N, C, *spatial) and unbatched (C, *spatial) inputs
both work. Gradients of max pooling go to each window's maximum (the first one, in row-major order,
as torch); `return_indices` is not supported.
"""
from ...arguments import ArgumentError
from ...errors import AvalonError
from ...ops import index as ix
from ...ops import pool as pl
from ...ops import vision as vs
from ...ops.index import Slot
from ..errors import array_input, input_error
from .conv import ntuple, spatial_pattern

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
           "adaptive_max_pool1d", "adaptive_max_pool2d"]


def check_pool_input(who, input, d):
    """(N, C, *d spatial) or (C, *d spatial)."""
    array_input(who, input)
    if input.ndim not in (d + 1, d + 2):
        s = spatial_pattern(d)
        raise input_error(who, f"(N, C, {s}) or (C, {s})", input.shape,
                          f"a {d}-d pooling takes a {d + 2}-d batch or a {d + 1}-d sample")


def _no_indices(who, return_indices):
    if return_indices:
        raise AvalonError(f"{who}: return_indices=True is not supported; gradients already flow to each "
                          "window's maximum, so the indices are only needed for max_unpool, which avalon lacks")


def _geometry(who, input, d, kernel_size, stride, padding, dilation, ceil_mode):
    kernel = ntuple(kernel_size, d, "kernel_size", who)
    stride = kernel if stride is None or stride == () or stride == [] else ntuple(stride, d, "stride", who)
    padding = ntuple(padding, d, "padding", who)
    dilation = ntuple(dilation, d, "dilation", who)
    for p, k, dl in zip(padding, kernel, dilation):
        if p > (dl * (k - 1) + 1) // 2:
            raise ArgumentError(f"{who}: padding should be at most half of the effective kernel size, but got "
                                f"padding={padding}, kernel_size={kernel} and dilation={dilation}",
                                fix="use padding <= kernel_size // 2 (or a larger kernel)")
    outs, pads = zip(*(pl.pool_geometry(n, k, s, p, dl, ceil_mode)
                       for n, k, s, p, dl in zip(input.shape[-d:], kernel, stride, padding, dilation)))
    if any(o <= 0 for o in outs):
        raise input_error(who, f"(N, C, {spatial_pattern(d)}) at least as large as the kernel", input.shape,
                          f"the output would be {tuple(outs)}")
    return kernel, stride, tuple(pads), dilation


def max_pooling(d, who, input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                return_indices=False):
    """The N-d max pooling behind max_pool1d/2d/3d."""
    _no_indices(who, return_indices)
    check_pool_input(who, input, d)
    kernel, stride, pads, dilation = _geometry(who, input, d, kernel_size, stride, padding, dilation, ceil_mode)
    return pl.max_pool(input, kernel=kernel, stride=stride, padding=pads, dilation=dilation)


def avg_pooling(d, who, input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                divisor_override=None):
    """The N-d average pooling behind avg_pool1d/2d/3d."""
    check_pool_input(who, input, d)
    if divisor_override is not None and divisor_override <= 0:
        raise AvalonError(f"{who}: divisor_override must be positive, got {divisor_override}")
    kernel, stride, pads, _ = _geometry(who, input, d, kernel_size, stride, padding, 1, ceil_mode)
    return pl.avg_pool(input, kernel=kernel, stride=stride, padding=pads, count_include_pad=bool(count_include_pad),
                       divisor_override=divisor_override)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Maximum over sliding windows of (N, C, L); stride defaults to kernel_size."""
    return max_pooling(1, "max_pool1d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Maximum over sliding windows of (N, C, H, W); stride defaults to kernel_size; padding counts as -inf."""
    return max_pooling(2, "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Maximum over sliding windows of (N, C, D, H, W)."""
    return max_pooling(3, "max_pool3d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over sliding windows of (N, C, L); zero padding counts in the mean unless count_include_pad=False."""
    return avg_pooling(1, "avg_pool1d", input, kernel_size, stride, padding, ceil_mode, count_include_pad)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over sliding windows of (N, C, H, W) (sum / divisor_override when given)."""
    return avg_pooling(2, "avg_pool2d", input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over sliding windows of (N, C, D, H, W)."""
    return avg_pooling(3, "avg_pool3d", input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override)


def adaptive_sizes(who, input, d, output_size):
    """torch's output_size (an int, or a tuple whose None entries keep the input's size) as d ints."""
    check_pool_input(who, input, d)
    sizes = (output_size,) * d if isinstance(output_size, int) or output_size is None else tuple(output_size)
    if len(sizes) != d:
        raise AvalonError(f"{who}: output_size must be an int or {d} sizes, got {output_size!r}")
    sizes = tuple(n if o is None else o for o, n in zip(sizes, input.shape[-d:]))
    if any(not isinstance(o, int) or o <= 0 for o in sizes):
        raise AvalonError(f"{who}: output sizes must be positive ints, got {output_size!r}")
    if any(n == 0 for n in input.shape[-d:]):
        raise input_error(who, f"(N, C, {spatial_pattern(d)}) with non-empty spatial dimensions", input.shape)
    return sizes


def adaptive_avg_pooling(d, who, input, output_size):
    """Mean over the windows that split each axis into `output_size` nearly equal (overlapping) parts."""
    sizes = adaptive_sizes(who, input, d, output_size)
    maps = tuple(("area", n, o) for n, o in zip(input.shape[-d:], sizes))
    return vs.resample(input, maps=maps)


def adaptive_max_pooling(d, who, input, output_size, return_indices=False):
    """Maximum over the adaptive windows. A maximum over a box is a maximum over each axis in turn, so
    each axis whose windows are uneven is gathered into equal windows and max-pooled; the last axis
    goes first, which routes gradients to the row-major first maximum, as torch."""
    _no_indices(who, return_indices)
    sizes = adaptive_sizes(who, input, d, output_size)
    spatial = tuple(input.shape[-d:])
    if all(n % o == 0 for n, o in zip(spatial, sizes)):
        kernel = tuple(n // o for n, o in zip(spatial, sizes))
        return pl.max_pool(input, kernel=kernel, stride=kernel, padding=((0, 0),) * d, dilation=(1,) * d)
    x = input
    for axis in range(d - 1, -1, -1):
        n, o = spatial[axis], sizes[axis]
        if n == o:
            continue
        position = x.ndim - d + axis
        if n % o == 0:
            width = n // o
        else:
            index, width = pl.adaptive_gather_index(n, o)
            x = ix.getitem(x, index, key=(slice(None),) * position + (Slot(0),))
        kernel = tuple(width if a == axis else 1 for a in range(d))
        x = pl.max_pool(x, kernel=kernel, stride=kernel, padding=((0, 0),) * d, dilation=(1,) * d)
    return x


def adaptive_avg_pool1d(input, output_size):
    """Adaptive mean pooling of (N, C, L) to length `output_size`."""
    return adaptive_avg_pooling(1, "adaptive_avg_pool1d", input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """Adaptive mean pooling of (N, C, H, W) to `output_size` (an int, or (h, w) with None keeping a size)."""
    return adaptive_avg_pooling(2, "adaptive_avg_pool2d", input, output_size)


def adaptive_avg_pool3d(input, output_size):
    """Adaptive mean pooling of (N, C, D, H, W) to `output_size`."""
    return adaptive_avg_pooling(3, "adaptive_avg_pool3d", input, output_size)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Adaptive max pooling of (N, C, L) to length `output_size`."""
    return adaptive_max_pooling(1, "adaptive_max_pool1d", input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive max pooling of (N, C, H, W) to `output_size` (an int, or (h, w) with None keeping a size)."""
    return adaptive_max_pooling(2, "adaptive_max_pool2d", input, output_size, return_indices)
