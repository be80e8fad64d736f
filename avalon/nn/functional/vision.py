"""Vision helpers with torch.nn.functional's names and signatures: pad, interpolate, pixel_shuffle,
pixel_unshuffle, unfold and fold.

`pad` is slices, flips and concatenations (each with a rule); `interpolate` is the separable
`resample` primitive, whose index and weight rules are torch's; `unfold` / `fold` are im2col / col2im.
"""
import math

from ...arguments import ArgumentError
from ...errors import AvalonError
from ...ops import conv as cv
from ...ops import index as ix
from ...ops import shape as sh
from ...ops import vision as vs
from ..errors import input_error
from .conv import ntuple
from .pooling import adaptive_avg_pooling

__all__ = ["pad", "interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "pixel_shuffle",
           "pixel_unshuffle", "unfold", "fold"]


def _slice(x, axis, start, stop):
    return ix.getitem(x, key=(slice(None),) * axis + (slice(start, stop),))


def _pad_axis(who, x, axis, before, after, mode):
    n = x.shape[axis]
    if mode == "reflect":
        if before >= n or after >= n:
            raise input_error(who, f"a dimension {axis} longer than the reflect padding ({before}, {after})",
                              x.shape, "reflect padding must be smaller than the padded dimension")
        left = sh.flip(_slice(x, axis, 1, before + 1), axis=(axis,)) if before else None
        right = sh.flip(_slice(x, axis, n - 1 - after, n - 1), axis=(axis,)) if after else None
    elif mode == "replicate":
        if n == 0:
            raise input_error(who, f"a non-empty dimension {axis}", x.shape, "replicate padding repeats the edge")
        left = sh.repeat(_slice(x, axis, 0, 1), repeats=before, axis=axis) if before else None
        right = sh.repeat(_slice(x, axis, n - 1, n), repeats=after, axis=axis) if after else None
    else:  # circular
        if before > n or after > n:
            raise input_error(who, f"a dimension {axis} at least as long as the circular padding ({before}, {after})",
                              x.shape, "circular padding wraps around once at most")
        left = _slice(x, axis, n - before, n) if before else None
        right = _slice(x, axis, 0, after) if after else None
    parts = [p for p in (left, x, right) if p is not None]
    return sh.concatenate(*parts, axis=axis) if len(parts) > 1 else x


def pad(input, pad, mode="constant", value=None):
    """Pad `input`: `pad` lists (before, after) pairs starting from the LAST dimension, as torch
    (`(1, 1, 2, 0)` pads W by 1 on both sides and H by 2 on top). Modes: 'constant' (negative widths
    crop), 'reflect', 'replicate', 'circular'."""
    return padded("pad", input, pad, mode, value)


def padded(who, input, pad, mode="constant", value=None):
    """`pad`, naming `who` (a layer or function) in errors."""
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim or not all(isinstance(p, int) for p in pad):
        raise ArgumentError(f"{who}: expected an even number of ints, at most two per dimension of the "
                            f"{input.ndim}-d input, got {pad!r}",
                            fix="give (left, right) for the last dimension, then (top, bottom) for the one before …")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ArgumentError(f"{who}: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}",
                            fix="pass one of those modes")
    if mode != "constant" and value not in (None, 0, 0.0):
        raise ArgumentError(f"{who}: value is only used with mode='constant' (got mode={mode!r}, value={value!r})",
                            fix="leave value out, or use mode='constant'")
    pairs = {input.ndim - 1 - i: (pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)}
    if mode == "constant":
        crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) if a in pairs and (lo < 0 or hi < 0) else slice(None)
                     for a, n in enumerate(input.shape) for lo, hi in [pairs.get(a, (0, 0))])
        x = ix.getitem(input, key=crop) if any(s != slice(None) for s in crop) else input
        widths = tuple((max(lo, 0), max(hi, 0)) for a in range(input.ndim) for lo, hi in [pairs.get(a, (0, 0))])
        if not any(lo or hi for lo, hi in widths):
            return x
        return sh.pad(x, widths=widths, value=0.0 if value is None else value)
    if any(p < 0 for p in pad):
        raise ArgumentError(f"{who}: negative padding {pad!r} only works with mode='constant'",
                            fix="crop with slicing first, then pad with non-negative widths")
    x = input
    for axis in sorted(pairs, reverse=True):
        x = _pad_axis(who, x, axis, *pairs[axis], mode)
    return x


_MODES = {"nearest": None, "nearest-exact": None, "linear": 1, "bilinear": 2, "trilinear": 3, "area": None}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize (N, C, *spatial) to `size`, or by `scale_factor`, as torch's F.interpolate: modes
    'nearest', 'nearest-exact', 'linear' (3-d input), 'bilinear' (4-d), 'trilinear' (5-d), 'area'.

    The default align_corners=False maps output pixel centres to input coordinates
    (i + 0.5) / scale - 0.5; align_corners=True maps the corner pixels onto each other.
    """
    return resize("interpolate", input, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias)


def resize(who, input, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None,
           antialias=False):
    """`interpolate`, naming `who` (a layer or function) in errors."""
    if mode not in _MODES:
        raise ArgumentError(f"{who}: mode {mode!r} is not supported", fix=f"use one of {', '.join(_MODES)}")
    d = input.ndim - 2
    if d < 1:
        raise input_error(who, "(N, C, *spatial) with at least one spatial dimension", input.shape)
    if _MODES[mode] is not None and _MODES[mode] != d:
        raise input_error(who, f"a {_MODES[mode] + 2}-d input for mode={mode!r}", input.shape)
    linear = mode in ("linear", "bilinear", "trilinear")
    if align_corners is not None and not linear:
        raise ArgumentError(f"{who}: align_corners can only be set with the interpolating modes "
                            "linear | bilinear | trilinear", fix="leave align_corners out for this mode")
    if antialias:
        raise AvalonError(f"{who}: antialias=True is not supported")
    spatial = tuple(input.shape[2:])
    if (size is None) == (scale_factor is None):
        raise ArgumentError(f"{who}: give exactly one of size and scale_factor",
                            fix="pass size=(H, W) or scale_factor=2, not both and not neither")
    if size is not None:
        sizes = ntuple(size, d, "size", who)
        scales = (None,) * d
    else:
        factors = (float(scale_factor),) * d if isinstance(scale_factor, (int, float)) else \
            tuple(float(s) for s in scale_factor)
        if len(factors) != d:
            raise ArgumentError(f"{who}: scale_factor must be a number or {d} numbers, got {scale_factor!r}",
                                fix=f"pass one factor, or {d} (one per spatial dimension)")
        sizes = tuple(int(math.floor(n * s)) for n, s in zip(spatial, factors))
        scales = (None,) * d if recompute_scale_factor else factors
    if any(o <= 0 for o in sizes):
        raise ArgumentError(f"{who}: the output size {sizes} must be positive",
                            fix="use a larger size or scale_factor")
    if mode == "area":
        return adaptive_avg_pooling(d, who, input, sizes)
    if linear:
        maps = tuple(("linear", n, o, bool(align_corners), s) for n, o, s in zip(spatial, sizes, scales))
    else:
        maps = tuple(("nearest", n, o, s, mode == "nearest-exact") for n, o, s in zip(spatial, sizes, scales))
    return vs.resample(input, maps=maps)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated torch name of `interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """Deprecated torch name: `interpolate(..., mode='nearest')`."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """Deprecated torch name: `interpolate(..., mode='bilinear', align_corners=True)`."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def pixel_shuffle(input, upscale_factor):
    """(*, C·r², H, W) → (*, C, H·r, W·r): sub-pixel rearrangement (r = upscale_factor)."""
    return shuffle("pixel_shuffle", input, upscale_factor)


def shuffle(who, input, upscale_factor):
    """`pixel_shuffle`, naming `who` in errors."""
    r = upscale_factor
    if input.ndim < 3 or input.shape[-3] % (r * r):
        raise input_error(who, f"(*, C·{r * r}, H, W)", input.shape,
                          f"the channel dimension must be divisible by upscale_factor² = {r * r}")
    lead, (c, h, w) = tuple(input.shape[:-3]), input.shape[-3:]
    k = len(lead)
    x = sh.reshape(input, shape=lead + (c // (r * r), r, r, h, w))
    x = sh.transpose(x, axes=tuple(range(k)) + tuple(k + a for a in (0, 3, 1, 4, 2)))
    return sh.reshape(x, shape=lead + (c // (r * r), h * r, w * r))


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H·r, W·r) → (*, C·r², H, W): the inverse of `pixel_shuffle`."""
    return unshuffle("pixel_unshuffle", input, downscale_factor)


def unshuffle(who, input, downscale_factor):
    """`pixel_unshuffle`, naming `who` in errors."""
    r = downscale_factor
    if input.ndim < 3 or input.shape[-1] % r or input.shape[-2] % r:
        raise input_error(who, f"(*, C, H·{r}, W·{r})", input.shape,
                          f"height and width must be divisible by downscale_factor = {r}")
    lead, (c, h, w) = tuple(input.shape[:-3]), input.shape[-3:]
    k = len(lead)
    x = sh.reshape(input, shape=lead + (c, h // r, r, w // r, r))
    x = sh.transpose(x, axes=tuple(range(k)) + tuple(k + a for a in (0, 2, 4, 1, 3)))
    return sh.reshape(x, shape=lead + (c * r * r, h // r, w // r))


def _window_args(who, kernel_size, dilation, padding, stride):
    return (ntuple(kernel_size, 2, "kernel_size", who), ntuple(stride, 2, "stride", who),
            tuple((p, p) for p in ntuple(padding, 2, "padding", who)), ntuple(dilation, 2, "dilation", who))


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: the sliding windows of (N, C, H, W) as columns (N, C·kH·kW, L) (unbatched (C, H, W) too)."""
    return unfolding("unfold", input, kernel_size, dilation, padding, stride)


def unfolding(who, input, kernel_size, dilation=1, padding=0, stride=1):
    """`unfold`, naming `who` in errors."""
    if input.ndim not in (3, 4):
        raise input_error(who, "(N, C, H, W) or (C, H, W)", input.shape)
    kernel, stride, pads, dilation = _window_args(who, kernel_size, dilation, padding, stride)
    x = input if input.ndim == 4 else sh.reshape(input, shape=(1,) + tuple(input.shape))
    out = [cv.out_size(n, k, s, p, dl) for n, k, s, p, dl in zip(x.shape[2:], kernel, stride, pads, dilation)]
    if any(o <= 0 for o in out):
        raise input_error(who, "(N, C, H, W) at least as large as the dilated kernel", input.shape)
    y = cv.unfold(x, kernel=kernel, stride=stride, padding=pads, dilation=dilation)
    return y if input.ndim == 4 else sh.reshape(y, shape=tuple(y.shape[1:]))


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im: columns (N, C·kH·kW, L) summed back into (N, C, *output_size), overlaps adding up."""
    return folding("fold", input, output_size, kernel_size, dilation, padding, stride)


def folding(who, input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """`fold`, naming `who` in errors."""
    kernel, stride, pads, dilation = _window_args(who, kernel_size, dilation, padding, stride)
    shape = ntuple(output_size, 2, "output_size", who)
    blocks = math.prod(cv.out_size(n, k, s, p, dl) for n, k, s, p, dl in zip(shape, kernel, stride, pads, dilation))
    k = math.prod(kernel)
    if input.ndim not in (2, 3) or input.shape[-2] % k or input.shape[-1] != blocks:
        raise input_error(who, f"(N, C·{k}, {blocks}) or (C·{k}, {blocks})", input.shape,
                          f"kernel {kernel} over output {shape} gives {blocks} blocks of {k} values per channel")
    x = input if input.ndim == 3 else sh.reshape(input, shape=(1,) + tuple(input.shape))
    y = cv.fold(x, shape=shape, kernel=kernel, stride=stride, padding=pads, dilation=dilation)
    return y if input.ndim == 3 else sh.reshape(y, shape=tuple(y.shape[1:]))
