"""Convolutions with torch.nn.functional's names and signatures: conv1d/2d/3d, conv_transpose1d/2d/3d.

Each is one `conv` (or `conv_transpose`) primitive plus a broadcast bias add; the primitives' rules
give input and weight gradients (and gradients of those). Inputs are (N, C, *spatial) or, as in torch,
unbatched (C, *spatial).

>>> y = F.conv2d(x, w, b, stride=2, padding="same")   # torch: 'same' needs stride 1
"""
from ...arguments import ArgumentError, whole
from ...errors import AvalonError, ShapeError
from ...ops import conv as cv
from ...ops import shape as sh
from ..errors import array_input, input_error

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]


# the least value of each geometry argument (a stride or kernel of 0 would divide by zero later)
_MINIMUM = {"kernel_size": 1, "stride": 1, "dilation": 1, "padding": 0, "output_padding": 0, "size": 0,
            "output_size": 0}


def ntuple(value, n, name, who):
    """An int or a sequence of n ints as a tuple of n ints (torch's `_pair`, `_triple`), each checked
    against its least value."""
    if isinstance(value, int):
        value = (value,) * n
    elif not isinstance(value, (tuple, list)) or len(value) != n or not all(isinstance(v, int) for v in value):
        raise ArgumentError(f"{who}: {name} must be an int or {n} ints, got {value!r}",
                            fix=f"pass {name} as one int or a tuple of {n} ints")
    return tuple(whole(who, name, tuple(value), _MINIMUM.get(name, 0)))


def spatial_pattern(d):
    return ", ".join(("D", "H", "W")[3 - d:]) if d <= 3 else ", ".join(f"S{i}" for i in range(d))


def check_channels(who, input, d, channels):
    """(N, channels, *d spatial) or unbatched (channels, *d spatial); `channels` None accepts any."""
    array_input(who, input)
    c = "C" if channels is None else str(channels)
    expected = f"(N, {c}, {spatial_pattern(d)}) or ({c}, {spatial_pattern(d)})"
    if input.ndim not in (d + 1, d + 2):
        raise input_error(who, expected, input.shape, f"a {d}-d layer takes a {d + 2}-d batch or a {d + 1}-d sample")
    if channels is not None and input.shape[-d - 1] != channels:
        raise input_error(who, expected, input.shape, f"the channel dimension must be {channels}")


def batched(input, d):
    """(input as a batch, whether it was unbatched)."""
    if input.ndim == d + 1:
        return sh.reshape(input, shape=(1,) + tuple(input.shape)), True
    return input, False


def unbatched(y, was_unbatched):
    return sh.reshape(y, shape=tuple(y.shape[1:])) if was_unbatched else y


def conv_padding(padding, kernel, stride, dilation, who):
    """torch's padding argument (int, tuple, 'valid', 'same') as (before, after) pairs per axis."""
    d = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * d
        if padding == "same":
            if any(s != 1 for s in stride):
                raise AvalonError(f"{who}: padding='same' is not supported for strided convolutions "
                                  f"(stride={stride}); pad explicitly, or use stride 1")
            # torch puts the odd element of an even total on the right
            totals = [dl * (k - 1) for k, dl in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise AvalonError(f"{who}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    return tuple((p, p) for p in ntuple(padding, d, "padding", who))


def bias_add(y, bias, d):
    return y if bias is None else y + sh.reshape(bias, shape=(1, -1) + (1,) * d)


def check_weight(who, weight, d, groups, in_channels, transposed):
    if weight.ndim != d + 2:
        raise ShapeError(f"{who}: weight must be {d + 2}-d, got shape {tuple(weight.shape)}")
    if groups < 1 or in_channels % groups or (not transposed and weight.shape[0] % groups):
        raise AvalonError(f"{who}: groups={groups} must divide the input channels ({in_channels})"
                          + ("" if transposed else f" and the output channels ({weight.shape[0]})"))


def check_size(who, input, out, expected):
    if any(o <= 0 for o in out):
        raise input_error(who, expected, input.shape,
                          f"the output would be {tuple(out)}: the input is smaller than the (dilated) kernel "
                          "plus padding")


def convolution(d, who, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The N-d convolution behind conv1d/2d/3d (`who` names the caller in errors)."""
    check_weight(who, weight, d, groups, weight.shape[1] * groups, False)
    check_channels(who, input, d, weight.shape[1] * groups)
    x, was_unbatched = batched(input, d)
    stride = ntuple(stride, d, "stride", who)
    dilation = ntuple(dilation, d, "dilation", who)
    kernel = tuple(weight.shape[2:])
    pads = conv_padding(padding, kernel, stride, dilation, who)
    out = [cv.out_size(n, k, s, p, dl) for n, k, s, p, dl in zip(x.shape[2:], kernel, stride, pads, dilation)]
    check_size(who, input, out, f"(N, {weight.shape[1] * groups}, {spatial_pattern(d)})")
    y = cv.conv(x, weight, stride=stride, padding=pads, dilation=dilation, groups=groups)
    return unbatched(bias_add(y, bias, d), was_unbatched)


def transposed_convolution(d, who, input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                           dilation=1):
    """The N-d transposed convolution behind conv_transpose1d/2d/3d (the adjoint of `convolution`)."""
    check_weight(who, weight, d, groups, weight.shape[0], True)
    check_channels(who, input, d, weight.shape[0])
    x, was_unbatched = batched(input, d)
    if isinstance(padding, str):
        raise AvalonError(f"{who}: padding must be an int or a tuple for transposed convolutions, got {padding!r}")
    stride = ntuple(stride, d, "stride", who)
    dilation = ntuple(dilation, d, "dilation", who)
    padding = ntuple(padding, d, "padding", who)
    output_padding = ntuple(output_padding, d, "output_padding", who)
    kernel = tuple(weight.shape[2:])
    for op, s, dl in zip(output_padding, stride, dilation):
        if op >= max(s, dl):
            raise AvalonError(f"{who}: output_padding {output_padding} must be smaller than either the stride "
                              f"{stride} or the dilation {dilation}")
    shape = tuple((n - 1) * s - 2 * p + dl * (k - 1) + op + 1
                  for n, s, p, dl, k, op in zip(x.shape[2:], stride, padding, dilation, kernel, output_padding))
    check_size(who, input, shape, f"(N, {weight.shape[0]}, {spatial_pattern(d)})")
    y = cv.conv_transpose(x, weight, shape=shape, stride=stride, padding=tuple((p, p) for p in padding),
                          dilation=dilation, groups=groups)
    return unbatched(bias_add(y, bias, d), was_unbatched)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d convolution (cross-correlation) of (N, C_in, L) with weight (C_out, C_in/groups, k)."""
    return convolution(1, "conv1d", input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d convolution of (N, C_in, H, W) with weight (C_out, C_in/groups, kH, kW); `padding` is an
    int, a pair, 'valid' or 'same'."""
    return convolution(2, "conv2d", input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-d convolution of (N, C_in, D, H, W) with weight (C_out, C_in/groups, kD, kH, kW)."""
    return convolution(3, "conv3d", input, weight, bias, stride, padding, dilation, groups)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-d transposed convolution of (N, C_in, L) with weight (C_in, C_out/groups, k)."""
    return transposed_convolution(1, "conv_transpose1d", input, weight, bias, stride, padding, output_padding,
                                  groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-d transposed convolution (the adjoint of conv2d) of (N, C_in, H, W) with weight
    (C_in, C_out/groups, kH, kW): output size (H - 1)·stride - 2·padding + dilation·(k - 1) + output_padding + 1."""
    return transposed_convolution(2, "conv_transpose2d", input, weight, bias, stride, padding, output_padding,
                                  groups, dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """3-d transposed convolution of (N, C_in, D, H, W) with weight (C_in, C_out/groups, kD, kH, kW)."""
    return transposed_convolution(3, "conv_transpose3d", input, weight, bias, stride, padding, output_padding,
                                  groups, dilation)

